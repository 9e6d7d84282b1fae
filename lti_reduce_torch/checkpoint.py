"""Checkpoints of reduced models that load into freshly built full-size models.

A reduced layer's parameters are smaller than those of the model the training script
builds. :func:`load_reduced_state_dict_` resizes each registered layer to the stored
state dimension (through the adapter's ``resize_``) and then loads strictly.
:func:`save_checkpoint` / :func:`load_checkpoint` wrap model, optimizer(s), a
:class:`~lti_reduce_torch.schedule.Compressor` and user extras in one file that
contains only tensors and plain containers and is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import itertools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from lti_reduce import ShapeError, InvalidParameterError
from ._registry import get_adapter
from .optim import rebind_optimizer_
from ._arguments import as_optimizers
from ._discovery import reducible_layers

__all__ = ["load_reduced_state_dict_", "ReducedLoadResult", "save_checkpoint", "load_checkpoint"]

_FORMAT = "lti_reduce_torch.checkpoint"
_VERSION = 1
_PER_ELEMENT = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad,
                torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam)


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
        The model is left unchanged.

    Notes
    -----
    For each registered layer the stored n is inferred from its stored parameters and
    buffers: in every dimension where a stored shape differs from the model's, the model's
    size must be the layer's current n (``adapter.state_size``) and all stored sizes there
    must agree. The layer is resized with ``adapter.resize_`` (checked first on a copy of
    the layer), the new parameters get the old ones' ``requires_grad`` and ``__dict__``
    attributes, and then ``model.load_state_dict(state_dict, strict=strict)`` runs; if it
    fails the resized layers are restored. Parameters of resized layers are new objects:
    build the optimizer afterwards, or rebind an existing one with
    ``rebind_optimizer_(optimizer, result.replacements)``.
    """
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

    saved = []          # (module, kind, attr, object) for undo
    replacements = {}
    resized = {}
    try:
        for name, module, adapter, n_old, n in plan:
            for sub in module.modules():
                for attr, p in sub._parameters.items():
                    saved.append((sub, "_parameters", attr, p))
                for attr, b in sub._buffers.items():
                    saved.append((sub, "_buffers", attr, b))
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
        result = model.load_state_dict(state_dict, strict=strict)
    except BaseException:
        for sub, kind, attr, obj in reversed(saved):
            getattr(sub, kind)[attr] = obj
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
    """
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise InvalidParameterError(f"{os.fspath(path)!r} is not an lti_reduce_torch checkpoint")
    if payload.get("version") != _VERSION:
        raise InvalidParameterError(f"checkpoint version {payload.get('version')!r} is not supported "
                                    f"(expected {_VERSION})")
    result = load_reduced_state_dict_(model, payload["model"], strict=strict)
    if optimizer is not None:
        if "optimizer" not in payload:
            raise InvalidParameterError("optimizer given but the checkpoint holds no optimizer state")
        opts = as_optimizers(optimizer)
        states = payload["optimizer"]
        states = [states] if isinstance(states, dict) else list(states)
        if len(states) != len(opts):
            raise InvalidParameterError(f"the checkpoint holds {len(states)} optimizer state(s), "
                                        f"{len(opts)} optimizer(s) given")
        for opt, state in zip(opts, states):
            rebind_optimizer_(opt, result.replacements)
            opt.load_state_dict(state)
            _check_optimizer_shapes(opt)
    if compressor is not None:
        if "compressor" not in payload:
            raise InvalidParameterError("compressor given but the checkpoint holds no compressor state")
        compressor.load_state_dict(payload["compressor"])
    return payload.get("extra")
