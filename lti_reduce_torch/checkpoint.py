"""Checkpoints of reduced models that load into freshly built full-size models.

A reduced layer's parameters are smaller than those of the model the training script
builds. :func:`load_reduced_state_dict_` resizes each registered layer to the stored
state dimension (through the adapter's ``resize_``) and then loads strictly.
:func:`save_checkpoint` / :func:`load_checkpoint` wrap model, optimizer(s), a
:class:`~lti_reduce_torch.schedule.Compressor` and user extras in one file that
contains only tensors and plain containers and is read with
``torch.load(weights_only=True)``.

*Integrity.* :func:`save_checkpoint` (format version 2) adds an ``"integrity"``
entry: the SHA-256 of every tensor's bytes (with its dtype and shape) and one SHA-256
over the whole content (every key, number, string and the tensor digests, in order). :func:`load_checkpoint`
recomputes both before touching the model and raises :class:`CheckpointError` naming
the file and the first tensor (or the non-tensor data) that differs. A file that cannot
be read at all (truncated, a corrupt zip, a broken pickle) raises :class:`CheckpointError`
as well. Version-1 files (written before integrity data existed) still load, with a
:class:`CheckpointWarning` saying they cannot be verified.

*Atomicity.* Both loaders are all-or-nothing: on any error (a corrupt file, unexpected
keys, another architecture, optimizer groups that do not match) model, optimizers and compressor are
left bit-identical to before. This costs one in-memory copy of the model's parameters
and buffers during the load.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from lti_reduce import ShapeError, InvalidParameterError
from ._registry import get_adapter
from ._backup import ModuleBackup, OptimizerBackup
from ._modes import refuse_inference_mode
from .optim import rebind_optimizer_
from ._arguments import as_optimizers
from ._discovery import reducible_layers

__all__ = ["load_reduced_state_dict_", "ReducedLoadResult", "save_checkpoint", "load_checkpoint",
           "CheckpointError", "CheckpointWarning"]

_FORMAT = "lti_reduce_torch.checkpoint"
_VERSION = 2
_UNVERIFIED_VERSIONS = (1,)     # written before integrity data existed
_HASH = "sha256"
_PER_ELEMENT = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad,
                torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam)


class CheckpointError(InvalidParameterError):
    """A checkpoint file is unreadable, truncated, corrupt or of an unknown format.

    A ``ValueError`` (through :class:`lti_reduce.InvalidParameterError`); the message
    names the file and what is wrong. Raised before the model is touched.
    """


class CheckpointWarning(UserWarning):
    """A checkpoint was loaded without integrity verification (a version-1 file)."""


@dataclass(frozen=True)
class ReducedLoadResult:
    """Outcome of :func:`load_reduced_state_dict_`.

    Attributes
    ----------
    resized : dict of str to (int, int)
        ``{layer name: (n before, n after)}`` for every layer that was resized.
    replacements : dict of torch.nn.Parameter to torch.nn.Parameter
        Old parameter -> new parameter, for
        :func:`~lti_reduce_torch.optim.rebind_optimizer_` on an optimizer built before
        loading.
    missing_keys, unexpected_keys : list of str
        As returned by ``Module.load_state_dict`` (empty with ``strict=True``).
    """

    resized: dict
    replacements: dict
    missing_keys: list
    unexpected_keys: list


def _tensors_of(module):
    return itertools.chain(module.named_parameters(), module.named_buffers())


def _infer_n(name, module, adapter, state_dict):
    """State dimension stored in ``state_dict`` for the layer ``name`` (None: unchanged)."""
    prefix = f"{name}." if name else ""
    n_now = int(adapter.state_size(module))
    candidates, other = set(), []
    for key, tensor in _tensors_of(module):
        full = prefix + key
        if full not in state_dict:
            continue
        stored = tuple(state_dict[full].shape)
        current = tuple(tensor.shape)
        if stored == current:
            continue
        if len(stored) != len(current):
            raise ShapeError(f"{full}: stored shape {stored} and the model's {current} differ in rank")
        for a, b in zip(current, stored):
            if a != b:
                (candidates.add(b) if a == n_now else other.append(full))
    if not candidates:
        if other:
            raise ShapeError(f"layer {name!r}: stored shapes of {sorted(set(other))} differ from the model's in "
                             f"dimensions other than the state dimension n={n_now}")
        return None
    if len(candidates) > 1:
        raise ShapeError(f"layer {name!r}: the stored tensors disagree on the state dimension "
                         f"(candidates {sorted(candidates)} where the model has n={n_now})")
    return candidates.pop()


def _check_resized(name, module, state_dict):
    prefix = f"{name}." if name else ""
    for key, tensor in _tensors_of(module):
        full = prefix + key
        if full in state_dict and tuple(state_dict[full].shape) != tuple(tensor.shape):
            raise ShapeError(f"layer {name!r}: after resizing, {full} has shape {tuple(tensor.shape)} but the "
                             f"stored tensor has {tuple(state_dict[full].shape)}")


def load_reduced_state_dict_(model, state_dict, strict=True) -> ReducedLoadResult:
    """Load a (possibly reduced) state dict into a model built at another state size.

    Parameters
    ----------
    model : torch.nn.Module
        Typically freshly constructed at full size.
    state_dict : mapping of str to torch.Tensor
        ``model.state_dict()`` of a reduced model.
    strict : bool
        Passed to ``model.load_state_dict``.

    Returns
    -------
    ReducedLoadResult

    Raises
    ------
    ShapeError (ValueError)
        The stored shapes do not correspond to a state dimension of a registered layer.
    RuntimeError
        From ``model.load_state_dict`` (missing or unexpected keys with ``strict``, ...).
    InferenceModeError (RuntimeError)
        Inside ``torch.inference_mode()``.

    On any error the model is left bit-identical (parameter and buffer objects, shapes
    and values).

    Notes
    -----
    For each registered layer the stored n is inferred from its stored parameters and
    buffers: in every dimension where a stored shape differs from the model's, the model's
    size must be the layer's current n (``adapter.state_size``) and all stored sizes there
    must agree. The layer is resized with ``adapter.resize_`` (checked first on a copy of
    the layer), the new parameters get the old ones' ``requires_grad`` and ``__dict__``
    attributes, and then ``model.load_state_dict(state_dict, strict=strict)`` runs; if it
    fails, every parameter and buffer is restored from a copy taken before. Parameters of resized layers are new objects:
    build the optimizer afterwards, or rebind an existing one with
    ``rebind_optimizer_(optimizer, result.replacements)``.
    """
    refuse_inference_mode("load_reduced_state_dict_")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")
    plan = []
    for name, module in reducible_layers(model):
        adapter = get_adapter(module)
        n = _infer_n(name, module, adapter, state_dict)
        if n is None:
            continue
        probe = copy.deepcopy(module)
        adapter.resize_(probe, n)
        _check_resized(name, probe, state_dict)
        plan.append((name, module, adapter, int(adapter.state_size(module)), n))

    backup = ModuleBackup(model)
    replacements = {}
    resized = {}
    try:
        for name, module, adapter, n_old, n in plan:
            before = dict(module.named_parameters())
            adapter.resize_(module, n)
            after = dict(module.named_parameters())
            for key, old in before.items():
                new = after.get(key)
                if new is None or new is old:
                    continue
                new.requires_grad_(old.requires_grad)
                for attr, value in old.__dict__.items():
                    if attr not in new.__dict__:
                        setattr(new, attr, copy.copy(value))
                replacements[old] = new
            resized[name] = (n_old, n)
        # copies every matching tensor before it reports unexpected or missing keys: the
        # backup undoes those copies too
        result = model.load_state_dict(state_dict, strict=strict)
    except BaseException:
        backup.restore()
        raise
    return ReducedLoadResult(resized=resized, replacements=replacements,
                             missing_keys=list(result.missing_keys), unexpected_keys=list(result.unexpected_keys))


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, torch.dtype, torch.Size, torch.device)


def _check_plain(obj, path="extra"):
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            _check_plain(item, f"{path}[{i}]")
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise TypeError(f"{path} has a key of type {type(key).__name__}; only str/int/float/bool keys "
                                "can be loaded with weights_only=True")
            _check_plain(value, f"{path}[{key!r}]")
        return
    raise TypeError(f"{path} is a {type(obj).__module__}.{type(obj).__qualname__}; a checkpoint holds only "
                    "tensors and plain containers (dict, list, tuple, str, numbers, None) so that it loads with "
                    "torch.load(weights_only=True)")


def tensor_bytes(tensor):
    """The tensor's elements in row-major order, as raw bytes (any dtype; conjugate and
    negative views resolved first; on the host)."""
    t = tensor.detach().resolve_conj().resolve_neg().to("cpu").contiguous().reshape(-1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _digests(payload):
    """``(SHA-256 of everything, [(path, SHA-256) of each tensor, in order])`` of ``payload``.

    The overall digest covers every container, key and value in order, each tagged with
    its type and length-prefixed (so no two different payloads feed the same bytes), and
    each tensor as its dtype, shape and own digest.
    """
    whole = hashlib.sha256()
    tensors = []

    def feed(tag, data):
        whole.update(tag + str(len(data)).encode() + b":" + data)

    def walk(obj, path):
        if isinstance(obj, torch.Tensor):
            digest = hashlib.sha256(tensor_bytes(obj)).hexdigest()
            tensors.append((path, digest))
            feed(b"x", f"{obj.dtype}|{tuple(obj.shape)}|{digest}".encode())
        elif obj is None:
            feed(b"N", b"")
        elif isinstance(obj, bool):
            feed(b"B", b"1" if obj else b"0")
        elif isinstance(obj, int):
            feed(b"i", str(obj).encode())
        elif isinstance(obj, float):
            feed(b"f", obj.hex().encode())
        elif isinstance(obj, complex):
            feed(b"c", f"{obj.real.hex()},{obj.imag.hex()}".encode())
        elif isinstance(obj, str):
            feed(b"s", obj.encode("utf-8", "surrogatepass"))
        elif isinstance(obj, bytes):
            feed(b"b", obj)
        elif isinstance(obj, (torch.dtype, torch.device)):
            feed(b"d" if isinstance(obj, torch.dtype) else b"v", str(obj).encode())
        elif isinstance(obj, dict):
            feed(b"D", str(len(obj)).encode())
            for key, value in obj.items():
                walk(key, f"{path}[key]")
                walk(value, f"{path}[{key!r}]")
        elif isinstance(obj, (list, tuple)):   # torch.Size is a tuple
            feed({list: b"L", torch.Size: b"S"}.get(type(obj), b"T"), str(len(obj)).encode())
            for i, item in enumerate(obj):
                walk(item, f"{path}[{i}]")
        else:
            raise TypeError(f"{path} is a {type(obj).__name__}, which a checkpoint cannot hold")

    walk(payload, "checkpoint")
    return whole.hexdigest(), tensors


def _integrity(body):
    # tensor digests as a list in walk order: their paths are recomputed at load time,
    # which keeps the record (and its unpickling) small
    whole, tensors = _digests(body)
    return {"algorithm": _HASH, "payload": whole, "tensors": [digest for _, digest in tensors]}


def _verify(name, payload):
    """Raise CheckpointError unless ``payload`` matches its recorded digests."""
    record = payload.get("integrity")
    if not (isinstance(record, dict) and record.get("algorithm") == _HASH and isinstance(record.get("payload"), str)
            and isinstance(record.get("tensors"), list)):
        raise CheckpointError(f"{name}: the integrity record is missing or malformed (expected "
                              f"{{'algorithm': {_HASH!r}, 'payload': hex, 'tensors': [hex, ...]}}); the file is corrupt")
    body = {key: value for key, value in payload.items() if key != "integrity"}
    try:
        whole, tensors = _digests(body)
    except TypeError as exc:
        raise CheckpointError(f"{name}: the file holds data a checkpoint never holds ({exc}); it is corrupt") from exc
    if whole == record["payload"]:
        return
    if len(tensors) == len(record["tensors"]):
        for (path, computed), stored in zip(tensors, record["tensors"]):
            if computed != stored:
                raise CheckpointError(f"{name}: tensor {path} has SHA-256 {computed}, but {stored!r} was recorded "
                                      "at save time; the file is corrupt")
    raise CheckpointError(f"{name}: the non-tensor data (keys, numbers, strings, shapes, dtypes) does not match "
                          "the SHA-256 recorded at save time; the file is corrupt")


def _read(path, map_location):
    """The verified payload of a checkpoint file."""
    name = repr(os.fspath(path))
    with open(path, "rb") as f:      # a missing or unreadable path: the OSError as is
        try:
            payload = torch.load(f, map_location=map_location, weights_only=True)
        except Exception as exc:      # truncated, corrupt zip, broken or foreign pickle
            raise CheckpointError(f"{name} cannot be read as a checkpoint: it is truncated, corrupt or not "
                                  f"written by torch.save ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointError(f"{name} is not an lti_reduce_torch checkpoint (no format tag {_FORMAT!r})")
    version = payload.get("version")
    if version in _UNVERIFIED_VERSIONS:
        warnings.warn(f"{name} is a version-{version} checkpoint, written without integrity data: it is loaded "
                      "unverified. Save it again to add SHA-256 digests", CheckpointWarning, stacklevel=3)
    elif version == _VERSION:
        _verify(name, payload)
    else:
        raise CheckpointError(f"{name}: checkpoint version {version!r} is not supported (expected {_VERSION}, or "
                              f"{', '.join(map(str, _UNVERIFIED_VERSIONS))} without integrity data)")
    for key, kind in (("model", dict), ("sizes", dict)):
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{name}: entry {key!r} is missing or not a {kind.__name__}; the file is corrupt")
    return payload


def save_checkpoint(path, model, optimizer=None, compressor=None, extra=None):
    """Write model (reduced or not), optimizer(s), compressor state and extras to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Written atomically (temporary file in the same directory, then renamed).
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer or sequence of them, optional
    compressor : Compressor, optional
    extra : plain data, optional
        Tensors, numbers, strings, None and dict/list/tuple of those (e.g. an LR
        scheduler's ``state_dict()``, the step count).

    Raises
    ------
    TypeError
        If ``extra`` (or a state dict) holds other objects.

    Notes
    -----
    The file (format version 2) records the SHA-256 of every tensor and of the whole
    content, which :func:`load_checkpoint` verifies (see the module notes). Hashing reads
    every byte once more: about the time of writing the file.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    payload = {"format": _FORMAT, "version": _VERSION, "model": model.state_dict(),
               "sizes": {name: int(get_adapter(m).state_size(m)) for name, m in reducible_layers(model)}}
    if optimizer is not None:
        opts = as_optimizers(optimizer)
        payload["optimizer"] = ([o.state_dict() for o in opts]
                                if not isinstance(optimizer, torch.optim.Optimizer) else opts[0].state_dict())
    if compressor is not None:
        payload["compressor"] = compressor.state_dict()
    if extra is not None:
        _check_plain(extra)
        payload["extra"] = extra
    _check_plain(payload, "checkpoint")
    payload["integrity"] = _integrity(payload)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_optimizer_shapes(opt):
    if not isinstance(opt, _PER_ELEMENT):
        return
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ShapeError(f"optimizer state {key!r} has shape {tuple(value.shape)} but its parameter "
                                     f"has {tuple(p.shape)}: the optimizer's parameter order differs from the one "
                                     "it was saved with")


def load_checkpoint(path, model, optimizer=None, compressor=None, map_location=None, strict=True):
    """Load :func:`save_checkpoint` output into a freshly built (full-size) model.

    Parameters
    ----------
    path : str or os.PathLike
    model : torch.nn.Module
        Resized and loaded with :func:`load_reduced_state_dict_`.
    optimizer : torch.optim.Optimizer or sequence of them, optional
        Built on ``model`` before loading (same group structure as when saved): rebound
        to the resized parameters, then ``load_state_dict``-ed. Alternatively build the
        optimizer after this call and load ``torch.load(path)['optimizer']`` yourself.
    compressor : Compressor, optional
    map_location : optional
        As for ``torch.load``.
    strict : bool

    Returns
    -------
    extra
        The ``extra`` object that was saved (None if none).

    Raises
    ------
    CheckpointError (ValueError)
        The file is truncated, corrupt (an integrity digest differs), not a checkpoint,
        or of an unknown version. Raised before anything is changed.
    InvalidParameterError (ValueError)
        The file lacks the optimizer or compressor state asked for, or holds another
        number of optimizer states.
    OSError
        The path cannot be opened.
    ShapeError, RuntimeError, ValueError
        The model or optimizers do not fit the stored state (unexpected keys, another
        architecture, other optimizer groups).

    On any error, model, optimizers and compressor are left bit-identical to before
    (parameter and buffer objects and values; optimizer groups, hyper-parameters and
    state).

    Warns
    -----
    CheckpointWarning
        For a version-1 file, loaded without verification.
    """
    refuse_inference_mode("load_checkpoint")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    opts = [] if optimizer is None else as_optimizers(optimizer)
    payload = _read(path, map_location)
    # what the caller passed against what the file holds: checked before anything changes
    states = []
    if optimizer is not None:
        if "optimizer" not in payload:
            raise InvalidParameterError("optimizer given but the checkpoint holds no optimizer state")
        states = payload["optimizer"]
        states = [states] if isinstance(states, dict) else list(states)
        if len(states) != len(opts):
            raise InvalidParameterError(f"the checkpoint holds {len(states)} optimizer state(s), "
                                        f"{len(opts)} optimizer(s) given")
    if compressor is not None and "compressor" not in payload:
        raise InvalidParameterError("compressor given but the checkpoint holds no compressor state")
    model_backup = ModuleBackup(model)
    optimizer_backups = [OptimizerBackup(opt) for opt in opts]
    try:
        result = load_reduced_state_dict_(model, payload["model"], strict=strict)
        for opt, state in zip(opts, states):
            rebind_optimizer_(opt, result.replacements)
            opt.load_state_dict(state)
            _check_optimizer_shapes(opt)
        if compressor is not None:
            compressor.load_state_dict(payload["compressor"])   # last: it is atomic itself
    except BaseException:
        for backup in optimizer_backups:
            backup.restore()
        model_backup.restore()
        raise
    return payload.get("extra")
