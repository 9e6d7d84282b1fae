"""In-place balanced truncation of every registered SSM layer of a model: :func:`reduce_`.

The reduction is *atomic*: every new parameter value, and every optimizer change, is
computed before the first one is applied. If anything unexpected fails, the model and
the optimizers are left exactly as they were and the error propagates. Decisions are a
pure function of the parameters (and, for ``select='random'``, of an explicit
``torch.Generator``), with no global state, so that one rank of a distributed job can
decide and the others can replay the decision with ``order={name: new_n, ...}``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lti_reduce import DiagonalStateSpace, StateSpace, InvalidParameterError, OrderAdjustedWarning
from ._registry import get_adapter, is_supported, registered_layer_types, ReductionRefusedError
from .optim import _plan_rebind
from .toolkit import new_parameter_like

__all__ = ["reduce_", "ReductionReport", "LayerReduction", "reducible_layers", "state_sizes"]

_SELECT = ("balanced", "smallest", "random")


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerReduction:
    """What happened to one layer.

    Attributes
    ----------
    name : str
        Qualified module name (as in ``model.named_modules()``).
    old_n, new_n : int
        State dimension before and after (equal unless ``status == 'reduced'``).
    hsv : list of float, or list of list of float
        Hankel singular values of the layer before the reduction, descending; one list
        per channel (row-major) for layers with independent channels (batched ``to_lti``).
    error_bound : float or None
        A-priori bound on the H-infinity norm of the change of the layer's LTI system:
        ``2 * sum of the truncated HSVs`` for balanced truncation (max over channels for
        channel-batched layers, whose transfer matrix is block diagonal); for the modal
        ablations the triangle-inequality bound ``sum ||b_i|| ||c_i|| / (1 - |lambda_i|)``
        over the dropped modes; 0 for unchanged layers; None for finite-horizon balanced
        truncation (no a-priori bound holds).
    seconds : float
        Wall-clock time spent on this layer (its share of the batched HSV and truncation
        computations of its group plus its own rebuild).
    status : {'reduced', 'unchanged', 'refused'}
    reason : str
        Why the layer is unchanged or refused, or notes on a reduction (empty otherwise).
    """

    name: str
    old_n: int
    new_n: int
    hsv: list
    error_bound: float | None
    seconds: float
    status: str
    reason: str = ""

    def to_dict(self):
        """Plain-dict form (JSON-ready)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ReductionReport:
    """Outcome of :func:`reduce_` (and of a :class:`~lti_reduce_torch.schedule.Compressor` event).

    Attributes
    ----------
    layers : tuple of LayerReduction
        One entry per considered layer, in model order.
    seconds : float
        Wall-clock time of the whole call (HSVs, truncation, rebuild, swap).
    criterion : str
        The order criterion, e.g. ``'energy=0.1'``.
    select : str
        ``'balanced'``, ``'smallest'`` or ``'random'``.
    step : int or None
        Training step, when produced by a Compressor.
    """

    layers: tuple
    seconds: float
    criterion: str
    select: str = "balanced"
    step: int | None = None

    @property
    def changed(self):
        """True if at least one layer was reduced."""
        return any(layer.status == "reduced" for layer in self.layers)

    @property
    def sizes(self):
        """``{name: new_n}`` for every considered layer."""
        return {layer.name: layer.new_n for layer in self.layers}

    def __getitem__(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r} in this report; layers: {[x.name for x in self.layers]}")

    def to_dict(self):
        """Plain-dict form (JSON-ready)."""
        return {"step": self.step, "criterion": self.criterion, "select": self.select,
                "seconds": self.seconds, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self):
        """One JSON line (no newline inside; strict JSON, no NaN)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def __str__(self):
        head = f"ReductionReport({self.criterion}, select={self.select}"
        head += f", step={self.step}" if self.step is not None else ""
        head += f", {self.seconds:.3f} s)"
        width = max([5] + [len(layer.name) for layer in self.layers])
        lines = [head, f"{'layer':<{width}}  {'n_old':>6}  {'n_new':>6}  {'status':<9}  {'bound':>9}  "
                        f"{'time[s]':>8}  reason"]
        for x in self.layers:
            bound = "-" if x.error_bound is None else f"{x.error_bound:.3g}"
            lines.append(f"{x.name or '<model>':<{width}}  {x.old_n:>6}  {x.new_n:>6}  {x.status:<9}  "
                         f"{bound:>9}  {x.seconds:>8.3f}  {x.reason}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------------------
def reducible_layers(model, layers=None):
    """``[(qualified name, module)]`` of the submodules that have a registered adapter.

    Parameters
    ----------
    model : torch.nn.Module
    layers : iterable of str, optional
        Restrict to these qualified names (each must have an adapter).

    Returns
    -------
    list of (str, torch.nn.Module), in ``model.named_modules()`` order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if layers is None:
        return [(name, m) for name, m in model.named_modules() if is_supported(m)]
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Iterable):
        raise TypeError(f"layers must be None or an iterable of qualified module names, "
                        f"got {type(layers).__name__}")
    wanted = list(layers)
    for name in wanted:
        if not isinstance(name, str):
            raise TypeError(f"layers must hold qualified module names (str), got {name!r}")
    modules = dict(model.named_modules())
    for name in wanted:
        if name not in modules:
            candidates = [n for n, m in modules.items() if is_supported(m)]
            raise InvalidParameterError(f"layers: the model has no submodule named {name!r}; "
                                        f"reducible layers: {candidates}")
        get_adapter(modules[name])  # UnsupportedLayerError (a TypeError) names the class
    wanted = set(wanted)
    return [(name, m) for name, m in modules.items() if name in wanted]


def state_sizes(model, layers=None):
    """``{qualified name: state dimension n}`` of the model's registered layers."""
    return {name: int(get_adapter(m).state_size(m)) for name, m in reducible_layers(model, layers)}


# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------
def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_criterion(order, energy, tol):
    given = [k for k, v in (("order", order), ("energy", energy), ("tol", tol)) if v is not None]
    if len(given) != 1:
        raise InvalidParameterError(
            "reduce_ needs exactly one of order (int in [1, n], or a mapping {layer name: int}), "
            f"energy (tau in (0, 1)) or tol (error budget > 0); got {given or 'none'}")
    if energy is not None:
        if isinstance(energy, bool) or not isinstance(energy, numbers.Real) or not 0 < float(energy) < 1:
            raise InvalidParameterError(f"energy must be a fraction tau in the open interval (0, 1), "
                                        f"got {energy!r}")
        return "energy", float(energy)
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not math.isfinite(float(tol)) \
                or float(tol) <= 0:
            raise InvalidParameterError(f"tol must be a finite number > 0, got {tol!r}")
        return "tol", float(tol)
    if isinstance(order, Mapping):
        for key, value in order.items():
            if not isinstance(key, str):
                raise TypeError(f"order: mapping keys must be qualified layer names (str), got {key!r}")
            if not _is_int(value):
                raise TypeError(f"order[{key!r}] must be an int, got {value!r}")
        return "order", dict(order)
    if not _is_int(order):
        raise TypeError(f"order must be an int or a mapping {{layer name: int}}, got {order!r}")
    return "order", int(order)


def _check_options(select, generator, min_ratio, horizon):
    if select not in _SELECT:
        raise InvalidParameterError(f"select must be one of {_SELECT}, got {select!r}")
    if select == "random" and not isinstance(generator, torch.Generator):
        raise TypeError("select='random' needs generator=torch.Generator (seeded) so that the choice "
                        f"is reproducible, got {generator!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")
    if min_ratio is not None:
        if isinstance(min_ratio, bool) or not isinstance(min_ratio, numbers.Real) \
                or not 0 < float(min_ratio) <= 1:
            raise InvalidParameterError(f"min_ratio must be None or a number in (0, 1], got {min_ratio!r}")
        min_ratio = float(min_ratio)
    if horizon is not None:
        if isinstance(horizon, bool) or not isinstance(horizon, numbers.Real) \
                or not math.isfinite(float(horizon)) or float(horizon) <= 0:
            raise InvalidParameterError(f"horizon must be None (infinite) or a positive number, got {horizon!r}")
    return min_ratio


def _as_optimizers(optimizers):
    if optimizers is None:
        return []
    if isinstance(optimizers, torch.optim.Optimizer):
        return [optimizers]
    if not isinstance(optimizers, Iterable):
        raise TypeError(f"optimizers must be a torch.optim.Optimizer or an iterable of them, "
                        f"got {type(optimizers).__name__}")
    out = list(optimizers)
    for opt in out:
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"optimizers must hold torch.optim.Optimizer objects, got {type(opt).__name__}")
    return out


# --------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------
class _Layer:
    """Mutable planning record of one layer (never leaves this module)."""

    def __init__(self, name, module, adapter):
        self.name, self.module, self.adapter = name, module, adapter
        self.n = int(adapter.state_size(module))
        self.system = None
        self.hsv = None              # numpy, batch_shape + (n,)
        self.new_n = self.n
        self.elem_orders = None      # per batch element (row-major) balanced orders
        self.status = "unchanged"
        self.reason = []
        self.bound = 0.0
        self.seconds = 0.0
        self.reduced = None          # StateSpace or tuple, for rebuild
        self.keep = None             # LongTensor, for select_states
        self.new_values = None       # {param name: tensor}
        self.state_maps = {}         # {param name: callable}
        self.factors = None          # HankelFactors of this layer (diagonal path), reused

    @property
    def batch_shape(self):
        return tuple(self.system.batch_shape) if isinstance(self.system, DiagonalStateSpace) else ()


def _check_system(layer):
    system = layer.system
    owner = f"{type(layer.adapter).__name__}.to_lti for layer {layer.name!r}"
    if not isinstance(system, (DiagonalStateSpace, StateSpace)):
        raise TypeError(f"{owner} must return a lti_reduce DiagonalStateSpace or StateSpace, "
                        f"got {type(system).__name__}")
    if not isinstance(system.B, torch.Tensor):
        raise TypeError(f"{owner} must return torch tensors, got {type(system.B).__name__}")
    if system.n != layer.n:
        raise ValueError(f"{owner} returned a system with n={system.n} but state_size says {layer.n}")


def _group_key(layer):
    s = layer.system
    if isinstance(s, DiagonalStateSpace):
        return ("diagonal", s.n, s.m, s.p, tuple(s.batch_shape), str(s.B.device), s.B.dtype,
                s.eigenvalues.dtype, s.dt)
    return ("dense", id(layer))


def _stack(systems):
    if len(systems) == 1:
        s = systems[0]
        return DiagonalStateSpace(s.eigenvalues[None], s.B[None], s.C[None], s.D[None], dt=s.dt)
    return DiagonalStateSpace(torch.stack([s.eigenvalues for s in systems]),
                              torch.stack([s.B for s in systems]),
                              torch.stack([s.C for s in systems]),
                              torch.stack([s.D for s in systems]), dt=systems[0].dt)


def _factors(system, horizon):
    """Gramian factors and the SVD of Lo^H Lc: computed once, reused by the truncation."""
    from lti_reduce import hankel_factors
    return hankel_factors(system, horizon=horizon)


def _stack_factors(layers):
    from lti_reduce import HankelFactors
    return HankelFactors(*(torch.stack([getattr(layer.factors, name) for layer in layers])
                           for name in ("Lc", "Lo", "U", "hsv", "Vh")))


def _choose_order(layer, kind, value, min_ratio):
    """Per-layer order from the HSVs (max over channels), per-element orders, status."""
    from lti_reduce import select_order
    n = layer.n
    flat = np.asarray(layer.hsv, dtype=np.float64).reshape(-1, n)
    ranks = [int(np.count_nonzero(s)) for s in flat]
    if kind == "order":
        target = value[layer.name] if isinstance(value, dict) else value
        if not 1 <= target <= n:
            raise InvalidParameterError(f"order for layer {layer.name!r} must be in [1, n={n}], got {target}")
        choices = [min(target, k) for k in ranks]
        if layer.batch_shape == () and choices[0] < target:
            layer.reason.append(f"order {target} clipped to the numerical rank {choices[0]} of the Hankel operator")
    else:
        choices = [select_order(s, **{kind: value}) for s in flat]
    r = max(1, max(choices))
    layer.elem_orders = [min(r, k) for k in ranks]
    if r >= n:
        layer.reason.append(f"criterion keeps all {n} states")
        return
    if min_ratio is not None and not r < min_ratio * n:
        layer.reason.append(f"new order {r} is not below min_ratio * n = {min_ratio:g} * {n} = {min_ratio * n:g}")
        return
    layer.new_n = r
    layer.status = "reduced"


def _modal_weights(system, horizon):
    """Per-mode ``||b_i|| ||c_i||`` and the impulse-response l1 factor of each mode (torch, float64)."""
    lam = system.eigenvalues
    b = torch.linalg.vector_norm(system.B, dim=-1).to(torch.float64)
    c = torch.linalg.vector_norm(system.C, dim=-2).to(torch.float64)
    if system.is_discrete:
        mod = lam.abs().to(torch.float64)
        if horizon is None:
            gain = 1.0 / (1.0 - mod)
        else:
            L = int(horizon)
            one = (1.0 - mod).abs() < 1e-15
            gain = torch.where(one, torch.full_like(mod, float(L)),
                               (1.0 - mod ** L) / torch.where(one, torch.ones_like(mod), 1.0 - mod))
    else:
        re = lam.real.to(torch.float64) if lam.is_complex() else lam.to(torch.float64)
        if horizon is None:
            gain = 1.0 / (-re)
        else:
            T = float(horizon)
            zero = re == 0
            gain = torch.where(zero, torch.full_like(re, T),
                               torch.expm1(re * T) / torch.where(zero, torch.ones_like(re), re))
    return b * c, gain


def _pad(system, count, lam_pad):
    """Append ``count`` dead states (zero B rows and C columns) with eigenvalues ``lam_pad``."""
    if count == 0:
        return system
    A, B, C = system.A, system.B, system.C
    dtype = torch.promote_types(A.dtype, lam_pad.dtype)
    A = torch.block_diag(A.to(dtype), torch.diag(lam_pad.to(dtype)))
    B = torch.cat([B.to(dtype), B.new_zeros((count, B.shape[1]), dtype=dtype)], dim=0)
    C = torch.cat([C.to(dtype), C.new_zeros((C.shape[0], count), dtype=dtype)], dim=1)
    return StateSpace(A, B, C, system.D.to(dtype), dt=system.dt)


def _balanced_group(layers, horizon):
    """Balanced truncation of the reducing layers of one group, one core call."""
    from lti_reduce import balanced_truncation
    diagonal = isinstance(layers[0].system, DiagonalStateSpace)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if diagonal:
            stacked = _stack([layer.system for layer in layers])
            orders = [k for layer in layers for k in layer.elem_orders]
            results = balanced_truncation(stacked, order=orders, horizon=horizon,
                                          factors=_stack_factors(layers))
        else:
            results = tuple(balanced_truncation(layer.system, order=layer.elem_orders[0], horizon=horizon)
                            for layer in layers)
    for w in caught:
        if issubclass(w.category, OrderAdjustedWarning):
            # e.g. a cut between two numerically equal HSVs: any such cut is a valid
            # truncation; recorded in the report instead of interrupting training
            for layer in layers:
                note = f"core: {w.message}"
                if note not in layer.reason:
                    layer.reason.append(note)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    start = 0
    for layer in layers:
        count = math.prod(layer.batch_shape) if diagonal else 1
        mine = results[start:start + count]
        start += count
        r = max(1, max(res.order for res in mine))
        bounds = [res.error_bound for res in mine]
        layer.bound = None if any(b is None for b in bounds) else float(max(bounds))
        if not diagonal and mine[0].order < 1:
            layer.status = "refused"
            layer.reason.append("the layer's Hankel operator is zero to working precision: no state to keep")
            continue
        if any(res.order < r for res in mine):
            lam = layer.system.eigenvalues.reshape(count, layer.n)
            weight, gain = _modal_weights(layer.system, horizon)
            score = (weight * gain).reshape(count, layer.n)
        padded = []
        for i, res in enumerate(mine):
            missing = r - res.order
            if missing:
                # numerical rank below r: dead states (zero input and output weights) keep
                # every channel at the same order; exact, as they are neither reachable
                # nor observable
                order = torch.argsort(score[i], descending=True, stable=True)[:missing]
                padded.append(_pad(res.system, missing, lam[i, order]))
            else:
                padded.append(res.system)
        short = sum(res.order < r for res in mine)
        if short:
            layer.reason.append(f"{short} channel(s) of numerical rank below {r} padded with dead states")
        layer.reduced = padded[0] if layer.batch_shape == () else tuple(padded)
        layer.new_n = r


def _modal_selection(layer, select, generator, horizon):
    """Keep indices (batch_shape + (r,)) and the modal error bound for the ablations."""
    system = layer.system
    n, r = layer.n, layer.new_n
    weight, gain = _modal_weights(system, horizon)
    if select == "smallest":
        score = (weight * gain).cpu()
        order = torch.argsort(score, dim=-1, stable=True)
    else:
        noise = torch.rand(layer.batch_shape + (n,), generator=generator, dtype=torch.float64,
                           device=generator.device)
        order = torch.argsort(noise, dim=-1, stable=True).cpu()
    keep = torch.sort(order[..., :r], dim=-1).values
    dropped = torch.ones(layer.batch_shape + (n,), dtype=torch.bool)
    dropped.scatter_(-1, keep, False)
    per_mode = (weight * gain).cpu()
    bound = torch.where(dropped, per_mode, torch.zeros_like(per_mode)).sum(-1)
    layer.keep = keep.to(system.B.device)
    layer.bound = float(bound.max())


def _selection_map(old, new, keep):
    """The exact map old -> new that ``select_states(keep)`` applied to a parameter, or None."""
    old = old.detach()
    if old.shape == new.shape:
        return None
    if old.dim() != new.dim():
        return None
    axes = [a for a in range(old.dim()) if old.shape[a] != new.shape[a]]
    if len(axes) != 1 or new.shape[axes[0]] != keep.shape[-1]:
        return None
    a = axes[0]
    if keep.dim() == 1:
        def fmap(t, a=a, keep=keep):
            return t.index_select(a, keep.to(t.device))
    else:
        bs = tuple(keep.shape[:-1])
        if tuple(old.shape[:len(bs)]) != bs or a < len(bs):
            return None
        shape = bs + (1,) * (a - len(bs)) + (keep.shape[-1],) + (1,) * (old.dim() - a - 1)
        index = keep.reshape(shape).expand(new.shape)

        def fmap(t, a=a, index=index):
            return torch.gather(t, a, index.to(t.device))
    try:
        ok = torch.equal(fmap(old), new.detach())
    except RuntimeError:
        return None
    return fmap if ok else None


def _check_new_values(layer, values):
    owner = f"{type(layer.adapter).__name__} for layer {layer.name!r}"
    if not isinstance(values, Mapping):
        raise TypeError(f"{owner} must return a dict {{parameter name: tensor}}, got {type(values).__name__}")
    params = dict(layer.module.named_parameters())
    out = {}
    for pname, value in values.items():
        if pname not in params:
            raise ValueError(f"{owner} returned a value for {pname!r}, which is not a parameter of the "
                             f"layer; parameters: {sorted(params)}")
        old = params[pname]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{owner}: the new value of {pname!r} must be a tensor, got {type(value).__name__}")
        if value.dtype != old.dtype or value.device != old.device:
            raise TypeError(f"{owner}: the new value of {pname!r} has dtype {value.dtype} on {value.device}; "
                            f"the parameter has dtype {old.dtype} on {old.device}")
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{owner}: the new value of {pname!r} contains NaN or infinity")
        value = value.detach()
        if value.shape == old.shape and torch.equal(value, old.detach()):
            continue  # unchanged: keep the parameter object and its optimizer state
        out[pname] = value
    return out


# --------------------------------------------------------------------------------------
# commit
# --------------------------------------------------------------------------------------
def _parameter_locations(model):
    locations = defaultdict(list)
    for module in model.modules():
        for attr, p in module._parameters.items():
            if p is not None:
                locations[id(p)].append((module, attr))
    return locations


def _commit(model, layers, optimizers):
    locations = _parameter_locations(model)
    replacements, state_maps, swaps = {}, {}, []
    for layer in layers:
        params = dict(layer.module.named_parameters())
        for pname, value in layer.new_values.items():
            old = params[pname]
            if old in replacements:
                raise ValueError(f"parameter {pname!r} of layer {layer.name!r} is shared with another "
                                 "reduced layer; shared state-space parameters cannot be reduced")
            new = new_parameter_like(old, value)
            replacements[old] = new
            if layer.state_maps.get(pname) is not None:
                state_maps[old] = layer.state_maps[pname]
            for module, attr in locations[id(old)]:
                swaps.append((module, attr, old, new))
    plans = [_plan_rebind(opt, replacements, state_maps) for opt in optimizers]
    done, started = [], []
    try:
        for module, attr, old, new in swaps:
            setattr(module, attr, new)
            done.append((module, attr, old))
        for plan in plans:
            started.append(plan)
            plan.commit()
        for layer in layers:
            n = int(layer.adapter.state_size(layer.module))
            if n != layer.new_n:
                raise RuntimeError(f"{type(layer.adapter).__name__} for layer {layer.name!r}: after swapping the "
                                   f"rebuilt parameters state_size is {n}, expected {layer.new_n}; "
                                   "the reduction was undone")
    except BaseException:
        for plan in reversed(started):
            plan.revert()
        for module, attr, old in reversed(done):
            setattr(module, attr, old)
        raise
    return replacements


# --------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------
def reduce_(model, *, order=None, energy=None, tol=None, horizon=None, optimizers=(), select="balanced",
            generator=None, min_ratio=None, layers=None) -> ReductionReport:
    """Reduce every registered SSM layer of ``model`` in place (balanced truncation).

    Parameters
    ----------
    model : torch.nn.Module
        Every submodule whose class has a registered adapter is considered.
    order : int or mapping of str to int, optional
        Reduced state dimension, in [1, n] for each layer; or ``{qualified layer name:
        order}``, which also selects the layers (then ``layers`` must be None).
    energy : float, optional
        CompreSSM's tau in (0, 1): per layer, the smallest r with
        ``sum_{i<=r} s_i >= (1 - tau) * sum_i s_i``.
    tol : float, optional
        Error budget > 0: per layer the smallest r with ``2 * sum_{i>r} s_i <= tol``.
        Exactly one of ``order``, ``energy``, ``tol`` is required.
    horizon : int or float, optional
        Finite-horizon Gramians (e.g. the training sequence length), passed to the core.
    optimizers : torch.optim.Optimizer or iterable of them
        Rebound in place (see :func:`~lti_reduce_torch.optim.rebind_optimizer_`): reduced
        parameters take the old ones' places; their state is dropped (balanced: the new
        coordinates are unrelated to the old ones) or, for the modal ablations, indexed
        exactly like the parameter.
    select : {'balanced', 'smallest', 'random'}
        'balanced' is balanced truncation. The ablations keep r *modal* states of a
        diagonal layer (through the adapter's ``select_states``), r chosen by the same
        criterion: 'smallest' keeps the modes with the smallest modal energy
        ``||b_i|| ||c_i|| / (1 - |lambda_i|)``, 'random' keeps r uniformly random modes.
    generator : torch.Generator, optional
        Required for ``select='random'`` (reproducible choice).
    min_ratio : float in (0, 1], optional
        Reduce a layer only if ``new_n < min_ratio * n`` (CompreSSM's tolerance mode uses 0.95).
    layers : iterable of str, optional
        Restrict to these qualified module names.

    Returns
    -------
    ReductionReport

    Raises
    ------
    InvalidParameterError (ValueError)
        Bad criterion or option values (the message names the argument).
    TypeError
        Wrong argument types; a layer without adapter in ``layers``.
    Exception
        Anything unexpected raised while computing (an unstable layer for infinite-horizon
        balanced truncation, an adapter bug, ...): nothing has been changed.

    Notes
    -----
    * Layers whose ``to_lti`` systems share (kind, n, m, p, batch shape, device, dtype, dt)
      are stacked into one batched DiagonalStateSpace: the core runs once per group, on the
      parameters' device, in complex128/float64.
    * Channel-batched layers (``to_lti`` returns a batched system, e.g. S4D's h SISO
      channels) get one order per layer: the maximum over channels of the per-channel
      choice, so every channel meets the criterion. A channel whose Hankel operator has
      numerical rank below that order is truncated at its rank and padded with dead
      states (zero input and output weights), which leaves its transfer function exact.
    * A requested order above a layer's numerical rank is clipped to the rank (the
      dropped HSVs are exactly zero), and a criterion never yields fewer than 1 state.
    * An adapter that raises ``ReductionRefusedError`` leaves its layer untouched (status
      'refused', reason given); the other layers proceed.
    * New parameters are fresh ``nn.Parameter`` objects with the old one's
      ``requires_grad`` and every attribute of its ``__dict__`` (e.g. ``_no_weight_decay``);
      every place in the model holding the old object (tied weights) gets the new one.
      Call this between ``optimizer.step()`` and the next forward pass: the new
      parameters carry no ``.grad``.
    """
    t_start = time.perf_counter()
    kind, value = _check_criterion(order, energy, tol)
    min_ratio = _check_options(select, generator, min_ratio, horizon)
    opts = _as_optimizers(optimizers)
    if kind == "order" and isinstance(value, dict):
        if layers is not None:
            raise InvalidParameterError("order given as a mapping selects the layers itself: pass layers=None")
        layers = list(value)
    found = reducible_layers(model, layers)
    if layers is None and not found:
        names = ", ".join(t.__qualname__ for t in registered_layer_types()) or "none"
        raise InvalidParameterError(f"model has no submodule with a registered adapter (registered layer "
                                    f"types: {names})")
    plan = [_Layer(name, module, get_adapter(module)) for name, module in found]

    # 1. systems, stability, groups
    groups = defaultdict(list)
    for layer in plan:
        layer.system = layer.adapter.reduction_system(layer.module)
        _check_system(layer)
        if select != "balanced" and not isinstance(layer.system, DiagonalStateSpace):
            raise TypeError(f"select={select!r} keeps modal states and needs layers whose to_lti is a "
                            f"DiagonalStateSpace; layer {layer.name!r} is dense")
        if horizon is None and not layer.system.is_stable():
            layer.status = "refused"
            layer.reason.append("the layer's LTI system is unstable: infinite-horizon balanced truncation "
                                "needs a stable system (pass horizon=)")
            continue
        groups[_group_key(layer)].append(layer)

    # 2. HSVs, one core call per group
    for members in groups.values():
        t0 = time.perf_counter()
        if isinstance(members[0].system, DiagonalStateSpace):
            from lti_reduce import HankelFactors
            factors = _factors(_stack([layer.system for layer in members]), horizon)
            hsv = factors.hsv.cpu().numpy()
            for i, layer in enumerate(members):
                layer.hsv = hsv[i]
                layer.factors = HankelFactors(*(getattr(factors, name)[i]
                                                for name in ("Lc", "Lo", "U", "hsv", "Vh")))
        else:
            members[0].hsv = _factors(members[0].system, horizon).hsv.cpu().numpy()
        share = (time.perf_counter() - t0) / len(members)
        for layer in members:
            layer.seconds += share
            _choose_order(layer, kind, value, min_ratio)

    # 3. reduced systems (balanced) or kept modes (ablations)
    for members in groups.values():
        todo = [layer for layer in members if layer.status == "reduced"]
        if not todo:
            continue
        t0 = time.perf_counter()
        if select == "balanced":
            _balanced_group(todo, horizon)
        else:
            for layer in todo:
                _modal_selection(layer, select, generator, horizon)
        share = (time.perf_counter() - t0) / len(todo)
        for layer in todo:
            layer.seconds += share

    # 4. new parameter values (adapters may refuse)
    for layer in plan:
        if layer.status != "reduced":
            continue
        t0 = time.perf_counter()
        try:
            if select == "balanced":
                values = layer.adapter.rebuild(layer.module, layer.reduced)
            else:
                values = layer.adapter.select_states(layer.module, layer.keep)
        except ReductionRefusedError as exc:
            layer.status = "refused"
            layer.reason.append(f"adapter refused order {layer.new_n}: {exc}")
            layer.new_n, layer.bound = layer.n, 0.0
        else:
            layer.new_values = _check_new_values(layer, values)
            if select != "balanced":
                params = dict(layer.module.named_parameters())
                layer.state_maps = {p: _selection_map(params[p], v, layer.keep)
                                    for p, v in layer.new_values.items()}
        layer.seconds += time.perf_counter() - t0
        layer.reduced = None

    # 5. swap parameters and rebind optimizers (all or nothing)
    reducing = [layer for layer in plan if layer.status == "reduced"]
    if reducing:
        _commit(model, reducing, opts)

    entries = []
    for layer in plan:
        if layer.status != "reduced":
            layer.new_n = layer.n
            layer.bound = 0.0
        hsv = [] if layer.hsv is None else np.asarray(layer.hsv, dtype=np.float64).tolist()
        entries.append(LayerReduction(name=layer.name, old_n=layer.n, new_n=layer.new_n, hsv=hsv,
                                      error_bound=layer.bound, seconds=layer.seconds, status=layer.status,
                                      reason="; ".join(layer.reason)))
    criterion = f"{kind}={value}" if not isinstance(value, dict) else "order=" + json.dumps(value, sort_keys=True)
    return ReductionReport(layers=tuple(entries), seconds=time.perf_counter() - t_start, criterion=criterion,
                           select=select)
