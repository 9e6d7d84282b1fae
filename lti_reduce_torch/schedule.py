"""CompreSSM schedules: :class:`Compressor`, called once per training step.

Modes (the published ones):

``tolerance``
    At each event, reduce every layer by the energy criterion tau (``energy=``) applied
    to its *current* (already reduced) system; a layer changes only if the new state
    dimension is below ``min_ratio * n`` (0.95 by default, as published).
``fixed``
    At each event, cut a fixed fraction of every layer's current state dimension.
``pragmatic``
    As ``tolerance`` (with ``energy=``) or ``fixed`` (with ``fraction=``), but each
    reduction is checked: model, buffers, optimizer and random streams are snapshotted
    before it; on the next call that supplies ``metric``, if the metric dropped by more
    than ``rollback_tolerance`` compared to the pre-reduction metric, everything is rolled
    back bit for bit and reduction stops for the rest of training.

Events are explicit steps (``events=``) or a window with an interval or a count; each
fires exactly once, at the first call with ``step >= event``: no two cadences have to
coincide (the published code needed the evaluation and the reduction interval to hit
the same step, so its sCIFAR configuration reduced once instead of four times).
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import random
import time
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from lti_reduce import InvalidParameterError, check_criterion
from ._arguments import as_optimizers, check_horizon, check_log, check_min_ratio
from .reduce import reduce_, reducible_layers, state_sizes
from ._real_output import check_output
from .selection import as_selection
from ._backup import ModuleBackup
from .optim import check_rebindable, forget_cached_sizes
from ._wrappers import refuse_data_parallel   # i9: DDP wrappers go through DistributedCompressor

__all__ = ["Compressor", "CompressorWarning", "CompressorLogWarning"]

_MODES = ("tolerance", "fixed", "pragmatic")
_STATE_VERSION = 1


class CompressorWarning(UserWarning):
    """A schedule event was merged, skipped or could not be checked as configured."""


class CompressorLogWarning(CompressorWarning):
    """An event record could not be written to the JSON-lines log (it is kept and retried)."""


class _RandomStates:
    """The random number streams a training loop draws from, captured for a rollback.

    torch's CPU generator, every CUDA device's generator when CUDA is initialised, numpy's
    global ``RandomState``, python's ``random`` and the compressor's own generator.
    """

    def __init__(self, generator):
        self.generator = generator
        self.generator_state = generator.get_state()
        self.torch_cpu = torch.get_rng_state()
        self.torch_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.numpy = np.random.get_state()
        self.python = random.getstate()

    def restore(self):
        self.generator.set_state(self.generator_state)
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda is not None:
            torch.cuda.set_rng_state_all(self.torch_cuda)
        np.random.set_state(self.numpy)
        random.setstate(self.python)


def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_real(name, x, low=None, high=None, low_open=True, high_open=True):
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
        raise InvalidParameterError(f"{name} must be a finite number, got {x!r}")
    x = float(x)
    if low is not None and (x <= low if low_open else x < low):
        raise InvalidParameterError(f"{name} must be {'>' if low_open else '>='} {low}, got {x!r}")
    if high is not None and (x >= high if high_open else x > high):
        raise InvalidParameterError(f"{name} must be {'<' if high_open else '<='} {high}, got {x!r}")
    return x


def _resolve_events(events, window, interval, count):
    if events is not None:
        if window is not None or interval is not None or count is not None:
            raise InvalidParameterError("give either events= (explicit steps) or window= with interval= or "
                                        "count=, not both")
        if isinstance(events, (str, bytes)) or not isinstance(events, Iterable):
            raise TypeError(f"events must be a sequence of non-negative int steps, got {type(events).__name__}")
        events = list(events)
        for e in events:
            if not _is_int(e) or e < 0:
                raise InvalidParameterError(f"events must hold non-negative int steps, got {e!r}")
        for a, b in zip(events, events[1:]):
            if not a < b:
                raise InvalidParameterError(f"events must be strictly increasing (sorted, no duplicates), got "
                                            f"{a} before {b}")
        return tuple(int(e) for e in events)
    if window is None:
        raise InvalidParameterError("a Compressor needs events=[steps] or window=(start, stop) with interval= "
                                    "or count=")
    if not isinstance(window, Sequence) or len(window) != 2 or not all(_is_int(w) for w in window):
        raise InvalidParameterError(f"window must be a pair of int steps (start, stop), got {window!r}")
    start, stop = int(window[0]), int(window[1])
    if not 0 <= start < stop:
        raise InvalidParameterError(f"window must satisfy 0 <= start < stop, got {window!r}")
    if (interval is None) == (count is None):
        raise InvalidParameterError("with window= give exactly one of interval= (steps between events) or "
                                    "count= (number of events)")
    if interval is not None:
        if not _is_int(interval) or interval < 1:
            raise InvalidParameterError(f"interval must be a positive int, got {interval!r}")
        return tuple(range(start + interval, stop + 1, interval))
    if not _is_int(count) or not 1 <= count <= stop - start:
        raise InvalidParameterError(f"count must be an int in [1, stop - start = {stop - start}], got {count!r}")
    span = stop - start
    return tuple(start + ((i + 1) * span) // count for i in range(count))


class _Snapshot:
    """Bit-exact copy of a model's parameters and buffers, optimizers' membership and state,
    and the random streams.

    Parameter and buffer *objects* are remembered (a reduction replaces parameters by new
    objects; the old ones are put back), their values are cloned (untouched parameters
    keep training after the snapshot), and so are optimizer state tensors (updated in
    place by training steps).
    """

    def __init__(self, model, optimizers, generator):
        self.random = _RandomStates(generator)
        self.model = ModuleBackup(model)
        self.optim = []
        for opt in optimizers:
            groups = [list(group["params"]) for group in opt.param_groups]
            state = {p: {k: (v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v))
                         for k, v in st.items()} for p, st in opt.state.items()}
            self.optim.append((opt, groups, state))

    def restore(self):
        self.model.restore(clear_grads=True)
        for opt, groups, state in self.optim:
            for group, params in zip(opt.param_groups, groups):
                group["params"][:] = params
            opt.state.clear()
            for p, st in state.items():
                opt.state[p] = st
            forget_cached_sizes(opt)
        self.random.restore()
        self.model = self.optim = self.random = None


class Compressor:
    """Schedule of in-training reductions, driven by a plain training loop.

    Parameters
    ----------
    model : torch.nn.Module
    optimizers : torch.optim.Optimizer or iterable of them
        Rebound in place at each reduction (and restored on rollback). An optimizer
        without a rebind policy (see :mod:`lti_reduce_torch.optim`) that holds parameters
        of a layer to compress raises :class:`~lti_reduce_torch.optim.UnsupportedOptimizerError`
        here.
    mode : {'tolerance', 'fixed', 'pragmatic'}
    energy : float, optional
        tau in (0, 1) for ``tolerance`` (required) and ``pragmatic``.
    fraction : float, optional
        Fraction in (0, 1) of the current n cut per event for ``fixed`` (required) and
        ``pragmatic``: ``new_n = max(1, n - max(1, floor(fraction * n + 1/2)))`` (halves round up).
    events : sequence of int, optional
        Steps at which to reduce: non-negative, strictly increasing.
    window : (int, int), optional
        ``(start, stop)``; with ``interval`` events are ``start + interval, start +
        2 interval, ... <= stop``; with ``count`` they end ``count`` equal parts of the
        window, the last one at ``stop`` (e.g. ``window=(0, 18000), count=4`` gives 4500,
        9000, 13500, 18000).
    interval, count : int, optional
    select : {'balanced', 'smallest', 'random'} or SelectionMethod
        See :func:`~lti_reduce_torch.reduce.reduce_` and :mod:`lti_reduce_torch.selection`.
    min_ratio : float or None
        Energy-based reductions only change a layer when ``new_n < min_ratio * n``
        (published: 0.95). Not applied to ``fraction`` cuts.
    rollback_tolerance : float
        Allowed metric drop before a rollback (pragmatic mode). Absolute by default, as
        published (0.02 = two points of accuracy); relative to ``|pre-reduction metric|``
        with ``rollback_relative=True`` (absolute when that metric is exactly 0).
    rollback_relative : bool
    metric_mode : {'max', 'min'}
        Whether a larger metric is better (accuracy, default) or a smaller one (loss).
    horizon : int, optional
        Finite-horizon Gramians (e.g. the training sequence length).
    layers : iterable of str, optional
        Restrict to these qualified layer names.
    log : str, os.PathLike or file object, optional
        Where each event is written as one JSON line (``{"event": "reduce" | "rollback" |
        "accept" | "skip", "step": ..., ...}``); a path is opened in append mode for each
        write. A failed write (permissions, full disk) does not undo or repeat the event:
        it is reported by a :class:`CompressorLogWarning` and retried at the next write.
    seed : int
        Seed of the ``torch.Generator`` used by ``select='random'``.
    output : {'complex', 'real'}
        See :func:`~lti_reduce_torch.reduce.reduce_`: 'real' reduces the real system
        ``u -> Re(C x + D u)`` a complex diagonal layer computes (needs ``select='balanced'``).

    Notes
    -----
    Call :meth:`step` after ``optimizer.step()`` (and before the next backward pass).
    The pre-reduction metric of the pragmatic mode is the metric supplied with the event
    call, or else the latest metric supplied before it; the rollback check happens at the
    next call supplying a metric. A snapshot costs one copy of the parameters, buffers
    and optimizer state (only in pragmatic mode, only between an event and its check).
    Rollback restores parameters (objects, shapes, values), buffers, optimizer group
    membership and state, and the random streams as they were at the event: torch's CPU
    generator (and CUDA's, when initialised), numpy's global ``RandomState``, python's
    ``random`` and :attr:`generator`. A run continues after a rollback exactly as a run
    that never reduced continued after the event step (same dropout masks, same batches
    drawn from those streams); what the loop holds itself (a data-loader iterator, the
    step counter) is not rewound. Group hyper-parameters (``lr``, ...) are left alone so
    LR schedulers stay in step with the loop, and gradients are cleared.

    Each event happens exactly once: it is marked as fired in the same call that applies
    it, before the log line is written (see ``log``); if the reduction itself raises,
    nothing has changed and the event stays due.

    The compressor holds no global state and decides from the parameters alone, so in
    data-parallel training every rank can run it on identical replicas (or rank 0 can
    decide and broadcast ``report.sizes`` to ``reduce_(order=sizes)`` on the others).
    """

    def __init__(self, model, optimizers=(), *, mode="tolerance", energy=None, fraction=None, events=None,
                 window=None, interval=None, count=None, select="balanced", min_ratio=0.95,
                 rollback_tolerance=0.02, rollback_relative=False, metric_mode="max", horizon=None,
                 layers=None, log=None, seed=0, output="complex"):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        refuse_data_parallel(model, "Compressor")
        if mode not in _MODES:
            raise InvalidParameterError(f"mode must be one of {_MODES}, got {mode!r}")
        if energy is not None:
            energy = check_criterion(energy=energy).value     # the core's rule, as in reduce_
        if fraction is not None:
            fraction = _check_real("fraction", fraction, 0.0, 1.0)
        if mode == "tolerance" and (energy is None or fraction is not None):
            raise InvalidParameterError("mode='tolerance' needs energy=tau in (0, 1) and no fraction")
        if mode == "fixed" and (fraction is None or energy is not None):
            raise InvalidParameterError("mode='fixed' needs fraction in (0, 1) and no energy")
        if mode == "pragmatic" and (energy is None) == (fraction is None):
            raise InvalidParameterError("mode='pragmatic' needs exactly one of energy (tolerance-style cuts) "
                                        "or fraction (fixed-style cuts)")
        as_selection(select)
        min_ratio = check_min_ratio(min_ratio)
        check_horizon(horizon)
        rollback_tolerance = _check_real("rollback_tolerance", rollback_tolerance, 0.0, low_open=False)
        if not isinstance(rollback_relative, bool):
            raise TypeError(f"rollback_relative must be a bool, got {rollback_relative!r}")
        if metric_mode not in ("max", "min"):
            raise InvalidParameterError(f"metric_mode must be 'max' (higher is better) or 'min', got {metric_mode!r}")
        check_log(log)
        if not _is_int(seed):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.model = model
        self.optimizers = as_optimizers(optimizers)
        self.mode, self.energy, self.fraction = mode, energy, fraction
        self.events = _resolve_events(events, window, interval, count)
        self.select, self.min_ratio, self.horizon = select, min_ratio, horizon
        self.rollback_tolerance, self.rollback_relative = rollback_tolerance, rollback_relative
        self.metric_mode = metric_mode
        self.layers = None if layers is None else ([layers] if isinstance(layers, str) else list(layers))
        self.log = log
        self.seed = int(seed)
        self.output = check_output(output, as_selection(select))
        if not reducible_layers(model, self.layers):
            raise InvalidParameterError("model has no submodule with a registered adapter to compress")
        # refused now rather than at every due event
        check_rebindable(self.optimizers, (p for _, layer in reducible_layers(model, self.layers)
                                           for p in layer.parameters()))
        self.generator = torch.Generator().manual_seed(self.seed)
        self.fired = set()
        self.stopped = False
        self.last_metric = None
        self.history = []
        self._pending = None   # {"step", "metric", "snapshot"}
        self._unwritten = []   # log lines whose write failed, retried first at the next write

    # ----------------------------------------------------------------------------------
    @property
    def sizes(self):
        """Current ``{layer name: n}``."""
        return state_sizes(self.model, self.layers)

    @property
    def pending(self):
        """True while a pragmatic reduction waits for its metric check."""
        return self._pending is not None

    def _write(self, record, stacklevel):
        """Append ``record`` (and any earlier records that failed) to the log; never raises.

        The event a record describes has already happened and been marked as fired, so a
        failing log (permissions, full disk, closed file) must not make the caller retry
        it: the failure is a :class:`CompressorLogWarning` and the lines wait in a backlog
        that the next write retries first, so the log stays complete and in order.
        ``stacklevel`` points the warning at the user's call of :meth:`step`.
        """
        if self.log is None:
            return
        self._unwritten.append(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        text = "".join(self._unwritten)
        try:
            append_to_log(self.log, text)
        except (OSError, ValueError) as exc:   # ValueError: a closed file object
            where = self.log if isinstance(self.log, (str, os.PathLike)) else type(self.log).__name__
            warnings.warn(f"Compressor: could not write the {record['event']!r} record of step {record['step']} "
                          f"to the log {os.fspath(where) if isinstance(where, os.PathLike) else where!r} "
                          f"({type(exc).__name__}: {exc}). The event itself happened once and is in "
                          f"Compressor.history; {len(self._unwritten)} unwritten record(s) are retried at the "
                          "next write", CompressorLogWarning, stacklevel=stacklevel)
            return
        self._unwritten.clear()

    def _criterion(self):
        if self.energy is not None:
            return {"energy": self.energy, "min_ratio": self.min_ratio}
        order = {}
        for name, n in self.sizes.items():
            cut = max(1, int(math.floor(self.fraction * n + 0.5)))
            order[name] = max(1, n - cut)
        return {"order": order}

    def _drop(self, pre, post):
        drop = pre - post if self.metric_mode == "max" else post - pre
        if self.rollback_relative and pre != 0:
            drop /= abs(pre)
        return drop

    def _check(self, step, metric):
        pending = self._pending
        drop = self._drop(pending["metric"], metric)
        record = {"step": step, "reduced_at": pending["step"], "metric_before": pending["metric"],
                  "metric_after": metric, "drop": drop, "tolerance": self.rollback_tolerance,
                  "relative": self.rollback_relative}
        if drop > self.rollback_tolerance:
            sizes_before = self.sizes
            pending["snapshot"].restore()
            self.stopped = True
            record.update(event="rollback", sizes_before=sizes_before, sizes_after=self.sizes)
        else:
            record.update(event="accept")
        self._pending = None
        self.history.append(record)
        self._write(record, stacklevel=4)

    def step(self, step, metric=None):
        """Advance the schedule; reduce when an event is due.

        Parameters
        ----------
        step : int
            The training step just completed (non-negative).
        metric : float, optional
            Validation metric of the current model (pragmatic mode).

        Returns
        -------
        ReductionReport or None
            The report of the reduction made at this call, if any.
        """
        if not _is_int(step) or step < 0:
            raise InvalidParameterError(f"step must be a non-negative int, got {step!r}")
        if metric is not None:
            metric = _check_real("metric", metric)
        if self._pending is not None and metric is not None:
            self._check(step, metric)
        due = [e for e in self.events if e <= step and e not in self.fired]
        report = None
        if due:
            if len(due) > 1:
                warnings.warn(f"Compressor: events {due} were all due at step {step} (step() was not called at "
                              f"each of them); they are merged into one reduction", CompressorWarning, stacklevel=2)
            if self.stopped:
                record = {"event": "skip", "step": step, "scheduled": due, "reason": "stopped after a rollback"}
                self.history.append(record)
            else:
                # marked as fired only once done: if reduce_ raises, nothing changed and the
                # events stay due
                report, record = self._reduce(step, due, metric)
            # applied and marked together, before the log write, which cannot undo either
            self.fired.update(due)
            self._write(record, stacklevel=3)
        if metric is not None:
            self.last_metric = metric
        return report

    def _reduce(self, step, due, metric):
        snapshot = None
        if self.mode == "pragmatic":
            pre = metric if metric is not None else self.last_metric
            if pre is None:
                raise InvalidParameterError("mode='pragmatic' needs the pre-reduction metric: pass metric= at the "
                                            "event step or at an earlier call")
            if self._pending is None:
                snapshot = _Snapshot(self.model, self.optimizers, self.generator)
            else:
                warnings.warn(f"Compressor: the reduction at step {self._pending['step']} has not been checked "
                              f"yet (no metric since); a rollback will return to the state before it",
                              CompressorWarning, stacklevel=3)
        t0 = time.perf_counter()
        report = reduce_(self.model, optimizers=self.optimizers, horizon=self.horizon, select=self.select,
                         generator=self.generator, layers=self.layers, output=self.output, **self._criterion())
        report = _replace_step(report, step)
        if snapshot is not None and report.changed:
            self._pending = {"step": step, "metric": pre, "snapshot": snapshot}
        record = {"event": "reduce", "step": step, "scheduled": due, "mode": self.mode,
                  "wall_seconds": time.perf_counter() - t0, **report.to_dict()}
        self.history.append({k: v for k, v in record.items() if k != "layers"}
                            | {"sizes": report.sizes})
        return report, record

    # ----------------------------------------------------------------------------------
    def state_dict(self):
        """Plain-container state (loadable with ``torch.load(weights_only=True)``).

        A pending pragmatic check is recorded (step and metric) but not its snapshot.
        """
        return {"version": _STATE_VERSION, "mode": self.mode, "events": list(self.events),
                "fired": sorted(self.fired), "stopped": self.stopped, "last_metric": self.last_metric,
                "pending": None if self._pending is None else {"step": self._pending["step"],
                                                               "metric": self._pending["metric"]},
                "generator": self.generator.get_state(), "history": copy.deepcopy(self.history)}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output (the mode must match).

        Atomic: every entry is checked and converted before the first attribute changes,
        so a bad ``state`` raises and leaves the compressor as it was.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise InvalidParameterError(f"state is not a Compressor state_dict of version {_STATE_VERSION}")
        if state["mode"] != self.mode:
            raise InvalidParameterError(f"state was saved by a Compressor in mode {state['mode']!r}, this one "
                                        f"is in mode {self.mode!r}")
        try:
            fired = {int(e) for e in state["fired"]}
            stopped = bool(state["stopped"])
            last_metric = state["last_metric"]
            generator = torch.Generator().manual_seed(0)
            generator.set_state(state["generator"])
            history = copy.deepcopy(list(state["history"]))
            pending = state["pending"]
            pending_step = None if pending is None else pending["step"]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InvalidParameterError(f"state is not a valid Compressor state_dict: {type(exc).__name__}: "
                                        f"{exc}") from exc
        self.fired, self.stopped, self.last_metric = fired, stopped, last_metric
        self.generator.set_state(generator.get_state())
        self.history = history
        self._pending = None
        if pending is not None:
            warnings.warn(f"Compressor.load_state_dict: the reduction at step {pending_step} was not "
                          "checked before saving and its snapshot is not saved; it is accepted as is",
                          CompressorWarning, stacklevel=2)


def append_to_log(log, text):
    """Append ``text`` to ``log``: a file object with ``write()`` (flushed if it can be), or a path.

    On a path, a write that fails part-way is cut back to where it started, so that a retry
    leaves no broken line; the error is raised either way.
    """
    if hasattr(log, "write"):
        log.write(text)
        if hasattr(log, "flush"):
            log.flush()
        return
    with open(log, "a", encoding="utf-8") as f:
        start = f.tell()
        try:
            f.write(text)
            f.flush()
        except OSError:
            try:
                f.truncate(start)
            except OSError:
                pass
            raise


def _replace_step(report, step):
    import dataclasses
    return dataclasses.replace(report, step=step)
