"""CompreSSM under ``torch.distributed``: :class:`DistributedCompressor` for DDP training.

A reduction replaces parameters by smaller ones, which invalidates a
``DistributedDataParallel`` wrapper (its gradient buckets and autograd hooks belong to
the old parameters). :class:`DistributedCompressor` runs a
:class:`~lti_reduce_torch.schedule.Compressor` on every rank and turns each event into a
small agreement protocol on a dedicated ``gloo`` control group with a bounded timeout:

1. **agree** (before anything changes): every rank sends its step, its metric and two
   hashes, one of the parameter/buffer/optimizer-state *layout* (names, shapes, dtypes,
   state sizes) and one of their *values*. Ranks that disagree on the step or the layout,
   or whose replicas differ, make every rank raise :class:`RankMismatchError`. Rank 0's
   metric is the one used by every rank (pragmatic mode).
2. **compute**: every rank runs the event on its own replica (a pure function of the
   parameters, hence the same result), after taking an undo record.
3. **vote**: every rank sends ok/failed (with the error text) and the hashes of its new
   state. If any rank failed, or the new layouts differ, every rank undoes its event and
   raises the same :class:`DistributedReductionError`; if only the values differ (a
   non-deterministic LAPACK build), rank 0's values are broadcast and the hashes are
   checked again, so the ranks are bit-identical *by proof*, not by assumption.
4. **commit**: the wrapper is rebuilt for the new shapes with the original DDP keyword
   arguments and handed to ``on_reduced(new_wrapper, report)``; :attr:`model` always
   holds the current wrapper.

A rank that never reaches a collective (crash, hang, a different step) makes the others
raise :class:`DistributedTimeoutError` after ``timeout`` seconds, with their own event
undone; after a timeout the process group may be unusable and the job should stop.

Not supported (refused with :class:`UnsupportedWrapperError`, before anything changes):
``ZeroRedundancyOptimizer`` (it shards optimizer state by parameter and cannot be
rebound) and FSDP (parameters are flattened/sharded). Reduce with DDP and a plain
optimizer, or reduce the unwrapped model between runs
(:func:`~lti_reduce_torch.checkpoint.load_checkpoint` resizes a fresh model).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import random

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lti_reduce import LTIReduceError, InvalidParameterError
from ._wrappers import UnsupportedWrapperError
from ._arguments import as_optimizers, check_log
from ._backup import ModuleBackup, OptimizerBackup
from .checkpoint import tensor_bytes
from .reduce import state_sizes
from .schedule import Compressor, append_to_log

__all__ = ["DistributedCompressor", "DistributedReductionError", "DistributedTimeoutError", "RankMismatchError",
           "UnsupportedWrapperError", "ProcessGroupNotInitializedError", "state_digest"]

#: Bytes of each rank's error text carried by the vote (longer texts are cut).
_MESSAGE_BYTES = 384


class DistributedReductionError(LTIReduceError, RuntimeError):
    """An event failed on at least one rank; every rank raised this and undid the event.

    Attributes
    ----------
    step : int
    failed_ranks : tuple of int
    messages : dict of int to str
        ``{rank: 'ExceptionType: text'}`` of the ranks that failed.
    """

    def __init__(self, message, step=None, failed_ranks=(), messages=None):
        super().__init__(message)
        self.step, self.failed_ranks, self.messages = step, tuple(failed_ranks), dict(messages or {})


class DistributedTimeoutError(LTIReduceError, TimeoutError):
    """A collective of an event did not complete within ``timeout`` on this rank (its event was undone)."""


class RankMismatchError(LTIReduceError, ValueError):
    """Ranks disagree before an event (step, layer shapes or parameter values); nothing was changed."""


class ProcessGroupNotInitializedError(LTIReduceError, RuntimeError):
    """``torch.distributed`` has no initialised default process group."""


# --------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------
def _refuse_sharding(model, optimizers):
    from torch.distributed.optim import ZeroRedundancyOptimizer
    for opt in optimizers:
        if isinstance(opt, ZeroRedundancyOptimizer):
            raise UnsupportedWrapperError(
                "optimizers: ZeroRedundancyOptimizer shards optimizer state by parameter and cannot be rebound "
                "to reduced parameters; use a plain torch.optim optimizer (e.g. AdamW) with DDP, or save a "
                "checkpoint, reduce offline and restart with ZeRO")
    sharded = []
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
        sharded.append(FullyShardedDataParallel)
    except ImportError:  # pragma: no cover - every supported torch has FSDP
        pass
    try:
        from torch.distributed.fsdp import FSDPModule
        sharded.append(FSDPModule)
    except ImportError:  # pragma: no cover - torch < 2.6
        pass
    for name, module in model.named_modules():
        if sharded and isinstance(module, tuple(sharded)):
            raise UnsupportedWrapperError(
                f"model: submodule {name or '<root>'!r} is {type(module).__name__} (FSDP); its parameters are "
                "flattened and sharded and cannot be reduced in place. Train with DistributedDataParallel, or "
                "reduce the unwrapped model between runs (lti_reduce_torch.load_checkpoint resizes a fresh model)")


def _check_process_group():
    if not (dist.is_available() and dist.is_initialized()):
        raise ProcessGroupNotInitializedError(
            "torch.distributed is not initialised: call torch.distributed.init_process_group(...) on every rank "
            "before building a DistributedCompressor (for one process use lti_reduce_torch.Compressor)")


def _ddp_kwargs_of(wrapper):
    """Constructor arguments of a DDP wrapper that can be read back from it reliably."""
    return {"device_ids": wrapper.device_ids, "output_device": wrapper.output_device, "dim": wrapper.dim,
            "process_group": wrapper.process_group, "find_unused_parameters": wrapper.find_unused_parameters,
            "gradient_as_bucket_view": wrapper.gradient_as_bucket_view, "static_graph": wrapper.static_graph}


# --------------------------------------------------------------------------------------
# hashes
# --------------------------------------------------------------------------------------
def _named_state(module, optimizers):
    """Every tensor a replica consists of, with a stable name: parameters, buffers, optimizer state."""
    out = list(module.state_dict(keep_vars=True).items())
    index = {id(p): name for name, p in module.named_parameters()}
    for k, opt in enumerate(optimizers):
        for g, group in enumerate(opt.param_groups):
            for i, p in enumerate(group["params"]):
                for key, value in sorted(opt.state.get(p, {}).items()):
                    if isinstance(value, torch.Tensor):
                        out.append((f"optim{k}.group{g}.{index.get(id(p), i)}.{key}", value))
    return out


def state_digest(module, optimizers=()):
    """``(layout, values)``: 63-bit hashes of a replica's tensors' names/shapes/dtypes and of their bytes.

    Parameters
    ----------
    module : torch.nn.Module
    optimizers : torch.optim.Optimizer or iterable of them

    Returns
    -------
    (int, int)
        Equal on two processes iff (up to hash collisions) their parameters, buffers and
        optimizer state tensors have the same names, shapes and dtypes, and the same bits.
    """
    layout, values = hashlib.blake2b(digest_size=8), hashlib.blake2b(digest_size=8)
    for name, tensor in _named_state(module, as_optimizers(optimizers)):
        layout.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        values.update(tensor_bytes(tensor))
    top = (1 << 63) - 1
    return (int.from_bytes(layout.digest(), "little") & top, int.from_bytes(values.digest(), "little") & top)


# --------------------------------------------------------------------------------------
# undo record
# --------------------------------------------------------------------------------------
class _Undo:
    """Everything an event may change on this rank, to put back bit for bit.

    The module tree (parameter/buffer objects and values: a rollback writes into old
    parameters in place) through :class:`ModuleBackup`, the gradients, the optimizers
    through :class:`OptimizerBackup`, the schedule's attributes (copied two levels deep,
    so a consumed rollback snapshot is kept too) and the CPU random streams (torch,
    numpy, python), which a pragmatic rollback rewinds.
    """

    def __init__(self, module, optimizers, compressor):
        self.module = ModuleBackup(module)
        self.grads = [(p, p.grad) for p in module.parameters()]
        self.optimizers = [OptimizerBackup(opt) for opt in optimizers]
        self.compressor = compressor
        self.schedule = {key: _copy2(value) for key, value in vars(compressor).items()
                         if key not in ("model", "optimizers", "generator")}
        self.generator = compressor.generator.get_state()
        self.random = (torch.get_rng_state(), np.random.get_state(), random.getstate())

    def restore(self):
        self.module.restore()
        for p, grad in self.grads:
            p.grad = grad
        for backup in self.optimizers:
            backup.restore()
        vars(self.compressor).update(self.schedule)
        self.compressor.generator.set_state(self.generator)
        torch.set_rng_state(self.random[0])
        np.random.set_state(self.random[1])
        random.setstate(self.random[2])


def _copy2(value):
    if isinstance(value, dict):
        return {k: copy.copy(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return copy.copy(value)
    return value


# --------------------------------------------------------------------------------------
# the compressor
# --------------------------------------------------------------------------------------
class DistributedCompressor:
    """A :class:`~lti_reduce_torch.schedule.Compressor` for ``DistributedDataParallel`` training.

    Build one on every rank, in the same order, after ``init_process_group``.

    Parameters
    ----------
    model : torch.nn.Module or DistributedDataParallel
        A plain module (wrapped here with ``DistributedDataParallel(model, **ddp_kwargs)``),
        or an existing DDP wrapper, or, with ``rewrap``, the module to reduce.
    optimizers : torch.optim.Optimizer or iterable of them
        Rebound in place at each event on every rank.
    ddp_kwargs : dict, optional
        Keyword arguments of ``DistributedDataParallel`` used for every (re)wrap. For an
        existing wrapper, by default ``device_ids, output_device, dim, process_group,
        find_unused_parameters, gradient_as_bucket_view, static_graph`` are read back from
        it; pass ``ddp_kwargs`` when you used others (e.g. ``bucket_cap_mb``).
    on_reduced : callable, optional
        ``on_reduced(wrapper, report)`` after every event that changed parameters
        (``report`` is None for a pragmatic rollback), on every rank.
    timeout : float
        Seconds a rank waits for the others at each collective of an event (> 0).
    rewrap : callable, optional
        ``rewrap(module) -> wrapper`` replaces the DDP construction (used by
        :mod:`lti_reduce_torch.lightning`); then ``model`` is the module to reduce.
    log : str, os.PathLike or file object, optional
        JSON lines of the committed events, written by rank 0 only.
    **schedule
        Every other :class:`~lti_reduce_torch.schedule.Compressor` argument (``mode``,
        ``energy``, ``fraction``, ``events``, ``window``, ``interval``, ``count``, ...).

    Attributes
    ----------
    model : torch.nn.Module
        The current wrapper: use it for the forward pass after every :meth:`step`.
    module : torch.nn.Module
        The reduced module (the same object throughout).
    compressor : Compressor
        The schedule run on this rank.

    Raises
    ------
    ProcessGroupNotInitializedError (RuntimeError)
    UnsupportedWrapperError (TypeError)
        FSDP, ZeroRedundancyOptimizer, DataParallel or another wrapper.

    Notes
    -----
    Call :meth:`step` on every rank with the same global step after
    ``optimizer.step()``. Collectives run only at steps where an event is due (and, in
    pragmatic mode, at every call with a ``metric``, which must then be passed on every
    rank at the same steps: rank 0's value decides). Between events the training step
    pays nothing. At the end, :meth:`close` (or a ``with`` block) releases the compressor's
    gloo control group on every rank, before ``destroy_process_group()``.

    Examples
    --------
    >>> dc = DistributedCompressor(net, opt, energy=0.1, events=[100, 200])  # doctest: +SKIP
    >>> for step, (x, y) in enumerate(loader, 1):                            # doctest: +SKIP
    ...     loss = loss_fn(dc.model(x), y); opt.zero_grad(); loss.backward(); opt.step()
    ...     dc.step(step)        # dc.model is a new DDP wrapper after an event
    """

    def __init__(self, model, optimizers=(), *, ddp_kwargs=None, on_reduced=None, timeout=60.0, rewrap=None,
                 log=None, **schedule):
        _check_process_group()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module or DistributedDataParallel, got {type(model).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidParameterError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if on_reduced is not None and not callable(on_reduced):
            raise TypeError(f"on_reduced must be callable(wrapper, report), got {type(on_reduced).__name__}")
        if rewrap is not None and not callable(rewrap):
            raise TypeError(f"rewrap must be callable(module) -> wrapper, got {type(rewrap).__name__}")
        if ddp_kwargs is not None and not isinstance(ddp_kwargs, dict):
            raise TypeError(f"ddp_kwargs must be a dict of DistributedDataParallel arguments, "
                            f"got {type(ddp_kwargs).__name__}")
        check_log(log)
        opts = as_optimizers(optimizers)
        _refuse_sharding(model, opts)
        if isinstance(model, nn.DataParallel):
            raise UnsupportedWrapperError("model: torch.nn.DataParallel is single-process; use "
                                          "DistributedDataParallel (or Compressor on the plain module)")
        if hasattr(model, "_orig_mod"):
            raise UnsupportedWrapperError("model: a torch.compile'd module cannot be re-wrapped after a reduction; "
                                          "pass the uncompiled module (compile the forward inside it if needed)")
        wrapper = None
        if rewrap is not None:
            if isinstance(model, DistributedDataParallel):
                raise UnsupportedWrapperError("with rewrap=, pass the module to reduce, not its DDP wrapper")
            module, self._ddp_kwargs = model, None
        elif isinstance(model, DistributedDataParallel):
            wrapper, module = model, model.module
            self._ddp_kwargs = dict(ddp_kwargs) if ddp_kwargs is not None else _ddp_kwargs_of(model)
        else:
            module, self._ddp_kwargs = model, dict(ddp_kwargs or {})
        self.compressor = Compressor(module, opts, **schedule)
        pg = (self._ddp_kwargs or {}).get("process_group") or dist.group.WORLD
        self.rank = dist.get_rank(pg)
        self.world_size = dist.get_world_size(pg)
        self._control = dist.new_group(ranks=dist.get_process_group_ranks(pg), backend="gloo",
                                       timeout=datetime.timedelta(seconds=float(timeout)))
        self.timeout = float(timeout)
        self.module = module
        self.optimizers = opts
        self.on_reduced = on_reduced
        self.log = log
        self._rewrap = rewrap if rewrap is not None else self._wrap_ddp
        # before wrapping (DDP itself would only say "expects the same model"): name the problem
        layout = torch.tensor([state_digest(module)[0]], dtype=torch.int64)
        table = self._gather(layout, "construction").view(-1).tolist()
        bad = [r for r, h in enumerate(table) if h != table[0]]
        if bad:
            self.close()       # the caller never gets this object: release its group here
            raise RankMismatchError(f"model: ranks {bad} hold parameters or buffers whose names, shapes or dtypes "
                                    f"differ from rank 0's ({state_sizes(module)} on rank {self.rank}); build the "
                                    "same model on every rank (after a reduced checkpoint: load it on every rank)")
        self.model = wrapper if wrapper is not None else (module if rewrap is not None else self._wrap_ddp(module))

    def close(self):
        """Release the gloo control group this compressor created; idempotent.

        Call it on every rank before ``torch.distributed.destroy_process_group()`` (or use the
        compressor as a context manager): gloo objects left to interpreter exit can abort the
        process ("terminate called without an active exception"). The module, the optimizers
        and the current wrapper ``model`` stay usable; :meth:`step` raises afterwards.
        """
        group, self._control = self._control, None
        if group is not None and dist.is_initialized():
            dist.destroy_process_group(group)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _wrap_ddp(self, module):
        return DistributedDataParallel(module, **self._ddp_kwargs)

    # ----------------------------------------------------------------------------------
    def _gather(self, tensor, what):
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        try:
            dist.all_gather(out, tensor, group=self._control)
        except RuntimeError as exc:
            raise DistributedTimeoutError(
                f"rank {self.rank}: the {what} collective did not complete within timeout={self.timeout} s "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); another rank crashed, "
                "hangs or called step() with another step; the process group may be unusable, stop the job") \
                from exc
        return torch.stack(out)

    def _due(self, step):
        return any(e <= step and e not in self.compressor.fired for e in self.compressor.events)

    def step(self, step, metric=None):
        """Advance the schedule on this rank; at an event, reduce every replica identically.

        Parameters
        ----------
        step : int
            Global step just completed (the same on every rank).
        metric : float, optional
            Validation metric (pragmatic mode); rank 0's value is used on every rank.

        Returns
        -------
        ReductionReport or None

        Raises
        ------
        RankMismatchError (ValueError)
            Ranks disagree on the step, on whether a metric is given, on parameter shapes
            or values; raised on every rank, nothing changed.
        DistributedReductionError (RuntimeError)
            The event failed on some rank; raised on every rank, the event undone.
        DistributedTimeoutError (TimeoutError)
            A collective timed out; this rank's event undone.
        RuntimeError
            After :meth:`close`.
        """
        if self._control is None:
            raise RuntimeError("this DistributedCompressor was closed (close() released its control group); "
                               "build a new one to go on reducing")
        comp = self.compressor
        talk = self._due(step) or (comp.mode == "pragmatic" and metric is not None)
        if not talk:
            return comp.step(step, metric=metric)
        metric = self._agree(step, metric)
        undo = _Undo(self.module, self.optimizers, comp)
        before = [id(p) for p in self.module.parameters()]
        history = len(comp.history)
        error, report = None, None
        try:
            report = comp.step(step, metric=metric)
        except Exception as exc:  # every failure is voted on, then re-raised typed on every rank
            error = exc
        try:
            self._vote(step, error)
        except BaseException:
            undo.restore()
            raise
        if [id(p) for p in self.module.parameters()] != before:
            try:
                self.model = self._rewrap(self.module)
            except BaseException:
                undo.restore()
                raise
            if self.on_reduced is not None:
                self.on_reduced(self.model, report)
        if self.rank == 0:
            for record in comp.history[history:]:
                self._write(record)
        return report

    def _agree(self, step, metric):
        layout, values = state_digest(self.module, self.optimizers)
        has = metric is not None
        bits = torch.tensor([float(metric) if has else 0.0], dtype=torch.float64).view(torch.int64)
        mine = torch.tensor([int(step), int(has), int(bits), layout, values], dtype=torch.int64)
        table = self._gather(mine, "pre-event agreement").tolist()
        steps = [row[0] for row in table]
        if len(set(steps)) > 1:
            raise RankMismatchError(f"step: ranks called step() with different steps {dict(enumerate(steps))}; "
                                    "pass the global step (the same on every rank)")
        if self.compressor.mode == "pragmatic" and len({row[1] for row in table}) > 1:
            given = [r for r, row in enumerate(table) if row[1]]
            raise RankMismatchError(f"metric: at step {step} only ranks {given} passed a metric; in pragmatic mode "
                                    "pass it on every rank at the same steps (rank 0's value is used)")
        bad = [r for r, row in enumerate(table) if row[3] != table[0][3]]
        if bad:
            raise RankMismatchError(f"ranks {bad} disagree with rank 0 on layer shapes before the event at step "
                                    f"{step} (names, shapes or dtypes of parameters, buffers or optimizer state "
                                    "differ); every rank must hold the same reduced model")
        bad = [r for r, row in enumerate(table) if row[4] != table[0][4]]
        if bad:
            raise RankMismatchError(f"ranks {bad} hold parameter, buffer or optimizer-state values that differ from "
                                    f"rank 0's before the event at step {step}; replicas must be identical "
                                    "(gradients synchronised by DDP, same initialisation)")
        if not table[0][1]:
            return None
        return float(torch.tensor([table[0][2]], dtype=torch.int64).view(torch.float64))

    def _vote(self, step, error):
        text = b"" if error is None else f"{type(error).__name__}: {error}".encode("utf-8", "replace")
        text = text[:_MESSAGE_BYTES]
        layout, values = state_digest(self.module, self.optimizers)
        head = torch.tensor([int(error is None), layout, values, len(text)], dtype=torch.int64)
        body = torch.zeros(_MESSAGE_BYTES, dtype=torch.int64)
        if text:
            body[:len(text)] = torch.tensor(list(text), dtype=torch.int64)
        table = self._gather(torch.cat([head, body]), "post-event vote")
        failed = [r for r in range(self.world_size) if not table[r, 0]]
        if failed:
            messages = {r: bytes(table[r, 4:4 + int(table[r, 3])].tolist()).decode("utf-8", "replace")
                        for r in failed}
            detail = "; ".join(f"rank {r}: {m}" for r, m in messages.items())
            raise DistributedReductionError(f"the CompreSSM event at step {step} failed on rank(s) {failed} "
                                            f"({detail}); it was undone on every rank", step, failed,
                                            messages) from error
        if bool((table[:, 1] != table[0, 1]).any()):
            sizes = self.compressor.sizes
            raise DistributedReductionError(f"the CompreSSM event at step {step} gave different layer shapes on "
                                            f"different ranks (this rank: {sizes}); it was undone on every rank "
                                            "(reduce with a deterministic criterion, e.g. order=)", step)
        if bool((table[:, 2] != table[0, 2]).any()):
            self._broadcast_from_rank0()
            again = self._gather(torch.tensor(state_digest(self.module, self.optimizers), dtype=torch.int64),
                                 "post-broadcast check")
            if bool((again != again[0]).any()):  # pragma: no cover - a broadcast that does not copy
                raise DistributedReductionError(f"replicas still differ after broadcasting rank 0's state at step "
                                                f"{step}", step)

    @torch.no_grad()
    def _broadcast_from_rank0(self):
        src = dist.get_global_rank(self._control, 0)
        for _, tensor in _named_state(self.module, self.optimizers):
            buf = tensor.detach().cpu().clone().contiguous()
            if buf.numel():   # raw bytes: any dtype (complex, bool) travels exactly
                dist.broadcast(buf.reshape(-1).view(torch.uint8), src=src, group=self._control)
            tensor.copy_(buf.to(tensor.device))

    def _write(self, record):
        if self.log is None:
            return
        append_to_log(self.log, json.dumps(record, separators=(",", ":"), allow_nan=False, default=str) + "\n")

    # ----------------------------------------------------------------------------------
    @property
    def sizes(self):
        """``{layer name: n}`` of the reduced module (identical on every rank)."""
        return self.compressor.sizes

    def state_dict(self):
        """The schedule's state (identical on every rank); see :meth:`Compressor.state_dict`."""
        return self.compressor.state_dict()

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output (on every rank)."""
        self.compressor.load_state_dict(state)
