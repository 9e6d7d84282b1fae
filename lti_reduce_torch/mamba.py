"""Selective SSMs (experimental): reduce ``d_state`` of ``mambapy`` Mamba blocks through an LTI proxy.

A Mamba block (``mambapy.mamba.MambaBlock``) is not LTI: its step ``delta``, input matrix
``B`` and output matrix ``C`` depend on the input at every step. Per channel ``d`` of
``d_inner`` and state index ``i`` of ``d_state`` it runs (``A = -exp(A_log)``, all real)::

    h[t, d, i] = exp(delta[t, d] A[d, i]) h[t-1, d, i] + delta[t, d] B[t, i] x[t, d]
    y[t, d]    = sum_i C[t, i] h[t, d, i] + D[d] x[t, d]

with ``[delta_raw | B | C] = x_proj(x)`` and ``delta = softplus(dt_proj(delta_raw))``. The
state indices ``i`` are shared by all channels (B and C do not depend on d).

The LTI proxy
-------------
Run the model on a calibration batch and, per block, average over batch and time:
``delta_bar[d] = mean delta[t, d]`` and ``b[i] = mean B[t, i]``, ``c[i] = mean C[t, i]``
(``statistic='mean'``, the proxy of the issue) or their root mean squares
(``statistic='rms'``: ``sqrt(mean B[t, i]^2)``, which does not let inputs of opposite sign
cancel). That gives one diagonal, stable, discrete-time SISO system per channel,

    lambda[d, i] = exp(delta_bar[d] A[d, i]),   b[d, i] = delta_bar[d] b[i],   c[d, i] = c[i],

solved by the core (:func:`lti_reduce.gramian`: controllability Gramian ``P_d`` and
observability Gramian ``Q_d``, closed forms for diagonal systems). The *Hankel energy* of
state index ``i`` in channel ``d`` is ``sqrt(P_d[i, i] Q_d[i, i])`` (the Hankel singular
value of that state when the Gramians are diagonal), and the score of index ``i`` is its
sum over channels. Because the index is shared by all channels, one index set is kept per
block: the ``r`` highest scores. The block is then truncated: columns of ``A_log`` and
the rows of ``x_proj`` that produce B and C; ``dt_proj``, ``D``, the convolution and the
projections are unchanged.

No error bound is claimed (the proxy is not the block). The report gives the measured
relative change of the model's output on the calibration batch and, if given, on a
held-out batch.

Configuration objects: all blocks of a ``mambapy`` model share one ``MambaConfig``
(its ``d_state`` is read by ``forward``). Each reduced block gets its own shallow copy with
the new ``d_state``; the shared object, and the model-level ``config``, keep the size the
model was built with (the size a freshly built model has). :func:`mamba_state_sizes`
reads the per-block sizes and :func:`load_reduced_mamba_state_dict_` restores a reduced
checkpoint into a freshly built full-size model.

Refused (typed errors, nothing changed): blocks with ``inner_layernorms=True`` (an RMS
norm over the ``d_state`` entries of B and C, so truncation changes the kept entries too),
modules that hold an ``A_log`` but are not plain ``MambaBlock`` (Mamba-2, the bidirectional
Vision-Mamba block, subclasses that override the scan), blocks whose parameter shapes
disagree with their config, and a calibration batch of the wrong shape or that never
reaches a block.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import time
from dataclasses import dataclass

import torch
from torch import nn

from lti_reduce import DiagonalStateSpace, ShapeError, InvalidParameterError, gramian, select_order
from ._arguments import as_optimizers
from .optim import plan_rebind
from .toolkit import new_parameter_like

__all__ = ["reduce_mamba_", "MambaReductionReport", "MambaBlockReduction", "mamba_blocks", "proxy_systems",
           "state_energy", "mamba_state_sizes", "load_reduced_mamba_state_dict_", "CalibrationError",
           "UnsupportedMambaError"]

_SELECT = ("hankel", "magnitude", "random")
_STATISTICS = ("mean", "rms")
_SCAN_METHODS = ("forward", "ssm", "selective_scan", "selective_scan_seq", "_apply_layernorms", "step", "ssm_step")


class CalibrationError(ShapeError):
    """A calibration (or held-out) batch of the wrong type or shape, or one that reaches no block."""


class UnsupportedMambaError(ValueError):
    """A Mamba variant the LTI proxy does not understand (the message says why)."""


@dataclass(frozen=True)
class MambaBlockReduction:
    """What happened to one Mamba block.

    Attributes
    ----------
    name : str
        Qualified module name of the ``MambaBlock``.
    old_d_state, new_d_state : int
    kept : tuple of int
        Kept state indices, in the old numbering, ascending (their new order).
    scores : tuple of float
        Score of every old state index (Hankel energy summed over channels for
        ``select='hankel'``; the weight magnitude for ``'magnitude'``; empty for ``'random'``).
    kept_fraction : float
        Share of the total score that the kept indices carry (nan for ``'random'``).
    calibration_change : float
        ``||z_after - z_before||_F / ||z_before||_F`` of this block's output ``z`` on the
        calibration batch, inside the model (so it includes the change of its input caused
        by reduced blocks before it); nan until measured.
    """

    name: str
    old_d_state: int
    new_d_state: int
    kept: tuple
    scores: tuple
    kept_fraction: float
    calibration_change: float = math.nan


@dataclass(frozen=True)
class MambaReductionReport:
    """Outcome of :func:`reduce_mamba_`.

    Attributes
    ----------
    blocks : tuple of MambaBlockReduction
    calibration_change : float
        ``||y_after - y_before||_F / ||y_before||_F`` of the model's output on the
        calibration batch (measured, not bounded).
    held_out_change : float or None
        The same on the held-out batch, if one was given.
    select : str
    statistic : str
    seconds : float
    """

    blocks: tuple
    calibration_change: float
    held_out_change: float | None
    select: str
    statistic: str
    seconds: float

    @property
    def sizes(self):
        """``{block name: new d_state}``."""
        return {b.name: b.new_d_state for b in self.blocks}

    def to_dict(self):
        """Plain-dict form (JSON-ready)."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- discovery
def _mamba_block_type():
    try:
        from mambapy.mamba import MambaBlock
    except ImportError as exc:   # pragma: no cover - exercised only without the package
        raise ImportError("lti_reduce_torch.mamba needs the mambapy package (pip install mambapy)") from exc
    return MambaBlock


def _why_unsupported(module, block_type):
    """Reason string if ``module`` looks like a selective SSM the proxy does not understand."""
    if isinstance(module, block_type):
        overridden = [m for m in _SCAN_METHODS if getattr(type(module), m) is not getattr(block_type, m)]
        if overridden:
            return (f"{type(module).__qualname__} subclasses MambaBlock but overrides {overridden}; the proxy "
                    "only understands mambapy's own scan")
        cfg = module.config
        if cfg.inner_layernorms:
            return ("inner_layernorms=True: B and C pass through an RMS norm over their d_state entries, so "
                    "truncating d_state changes the kept entries too")
        n, d_inner = module.A_log.shape[1], module.A_log.shape[0]
        rows = module.x_proj.weight.shape[0]
        if (d_inner, n) != (cfg.d_inner, cfg.d_state) or rows != cfg.dt_rank + 2 * cfg.d_state:
            return (f"parameter shapes disagree with its config: A_log {tuple(module.A_log.shape)}, x_proj "
                    f"{rows} rows; config d_inner={cfg.d_inner}, d_state={cfg.d_state}, dt_rank={cfg.dt_rank}")
        return None
    if isinstance(getattr(module, "A_log", None), nn.Parameter):
        return (f"{type(module).__module__}.{type(module).__qualname__} holds an A_log but is not "
                "mambapy.mamba.MambaBlock (e.g. Mamba-2 with scalar A per head, or the bidirectional "
                "Vision-Mamba block): the proxy does not understand it")
    return None


def mamba_blocks(model):
    """``[(qualified name, MambaBlock)]`` of the model, refusing variants the proxy does not understand.

    Raises
    ------
    UnsupportedMambaError
        A module holds an ``A_log`` but is not a plain ``mambapy`` MambaBlock, or a block's
        configuration is one the proxy cannot reduce.
    TypeError
        ``model`` is not a module, or it has no MambaBlock.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    block_type = _mamba_block_type()
    found = []
    for name, module in model.named_modules():
        why = _why_unsupported(module, block_type)
        if why is not None:
            raise UnsupportedMambaError(f"module {name or '<model>'!r}: {why}")
        if isinstance(module, block_type):
            found.append((name, module))
    if not found:
        raise TypeError(f"model ({type(model).__name__}) has no mambapy.mamba.MambaBlock")
    return found


def mamba_state_sizes(model):
    """``{block name: d_state}`` (from each block's ``A_log``)."""
    return {name: int(block.A_log.shape[1]) for name, block in mamba_blocks(model)}


# --------------------------------------------------------------------------- calibration
def _takes_embeddings(model):
    """True for the mambapy modules whose input is (batch, L, d_model) float."""
    from mambapy.mamba import Mamba, ResidualBlock, MambaBlock
    return isinstance(model, (Mamba, ResidualBlock, MambaBlock))


def _check_batch(model, batch, what, blocks):
    if not isinstance(batch, torch.Tensor):
        raise CalibrationError(f"{what} must be a torch.Tensor (the model's input), got {type(batch).__name__}")
    if batch.ndim < 2 or batch.shape[0] == 0 or batch.shape[1] == 0:
        raise CalibrationError(f"{what} must have shape (batch, L, ...) with batch, L >= 1 (the model's input), "
                               f"got {tuple(batch.shape)}")
    if batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
        raise CalibrationError(f"{what} contains NaN or infinity")
    if _takes_embeddings(model):
        d_model = blocks[0][1].config.d_model
        if not batch.is_floating_point() or batch.ndim != 3 or batch.shape[-1] != d_model:
            raise CalibrationError(f"{what} must have shape (batch, L, d_model={d_model}) (float) for "
                                   f"{type(model).__name__}, "
                                   f"got {tuple(batch.shape)}")


def _run(model, batch, what):
    try:
        with torch.no_grad():
            out = model(batch)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise CalibrationError(f"{what} of shape {tuple(batch.shape)} does not run through the model: {exc}") from exc
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model must return a tensor to measure the output change, got {type(out).__name__}")
    return out.detach()


def _capture(model, blocks, batch, what):
    """Model output and, per block, the inputs of ``x_proj`` (the selective scan's x,
    flattened to (-1, d_inner)) and the block's outputs (flattened)."""
    seen, outputs = {}, {}
    handles = []
    for name, block in blocks:
        def pre_hook(mod, args, name=name):
            seen.setdefault(name, []).append(args[0].detach())

        def post_hook(mod, args, out, name=name):
            outputs.setdefault(name, []).append(out.detach().reshape(-1))
        handles.append(block.x_proj.register_forward_pre_hook(pre_hook))
        handles.append(block.register_forward_hook(post_hook))
    try:
        out = _run(model, batch, what)
    finally:
        for h in handles:
            h.remove()
    missing = [name for name, _ in blocks if name not in seen]
    if missing:
        raise CalibrationError(f"{what} of shape {tuple(batch.shape)} never reached the Mamba blocks {missing}")
    return (out, {name: torch.cat([x.reshape(-1, x.shape[-1]) for x in xs]) for name, xs in seen.items()},
            {name: torch.cat(zs) for name, zs in outputs.items()})


def proxy_systems(block, x, statistic="mean"):
    """The LTI proxy of one block: a batched diagonal SISO system, one per channel.

    Parameters
    ----------
    block : mambapy.mamba.MambaBlock
    x : torch.Tensor, shape (..., d_inner)
        Inputs of the selective scan (the input of ``block.x_proj``) over the calibration data.
    statistic : {'mean', 'rms'}
        How B and C are averaged over batch and time (delta is always averaged).

    Returns
    -------
    lti_reduce.DiagonalStateSpace
        Batch shape (d_inner,), n = d_state, m = p = 1, discrete time, float64:
        ``lambda[d, i] = exp(delta_bar[d] A[d, i])``, ``B[d, i] = delta_bar[d] b[i]``,
        ``C[d, i] = c[i]``, ``D[d] = block.D[d]``.
    """
    if statistic not in _STATISTICS:
        raise InvalidParameterError(f"statistic must be one of {_STATISTICS}, got {statistic!r}")
    cfg = block.config
    if x.shape[-1] != cfg.d_inner:
        raise CalibrationError(f"x must have last dimension d_inner={cfg.d_inner}, got {tuple(x.shape)}")
    with torch.no_grad():
        x = x.reshape(-1, cfg.d_inner).to(torch.float64)
        W = block.x_proj.weight.detach().to(torch.float64)
        bias = block.x_proj.bias
        proj = x @ W.T + (0 if bias is None else bias.detach().to(torch.float64))
        delta_raw, B, C = torch.split(proj, [cfg.dt_rank, cfg.d_state, cfg.d_state], dim=-1)
        delta = nn.functional.softplus(delta_raw @ block.dt_proj.weight.detach().to(torch.float64).T
                                       + block.dt_proj.bias.detach().to(torch.float64))
        delta_bar = delta.mean(0)                                                     # (d_inner,)
        if statistic == "mean":
            b, c = B.mean(0), C.mean(0)
        else:
            b, c = B.pow(2).mean(0).sqrt(), C.pow(2).mean(0).sqrt()
        A = -torch.exp(block.A_log.detach().to(torch.float64))                        # (d_inner, N)
        lam = torch.exp(delta_bar.unsqueeze(-1) * A)
        Bs = (delta_bar.unsqueeze(-1) * b).unsqueeze(-1)                             # (d_inner, N, 1)
        Cs = c.expand(cfg.d_inner, -1).unsqueeze(-2)                                  # (d_inner, 1, N)
        D = block.D.detach().to(torch.float64).reshape(-1, 1, 1)
    return DiagonalStateSpace(lam, Bs, Cs, D, dt=True)


def state_energy(system):
    """Hankel energy ``sqrt(P_ii Q_ii)`` of every state of a (batched) diagonal system.

    Parameters
    ----------
    system : lti_reduce.DiagonalStateSpace
        Stable, batch shape (k,).

    Returns
    -------
    torch.Tensor, shape (k, n), float64
        ``P`` and ``Q`` are the core's controllability and observability Gramians; for a
        state that is decoupled from the others (diagonal Gramians) this is its Hankel
        singular value.
    """
    P = gramian(system, "c")
    Q = gramian(system, "o")
    # diagonal systems: P_ii = |b_i|^2 / (1 - |lambda_i|^2) >= 0 in floating point too
    return torch.sqrt(torch.diagonal(P, dim1=-2, dim2=-1).real * torch.diagonal(Q, dim1=-2, dim2=-1).real)


def _magnitude_scores(block):
    """Weight magnitude of each state index: ``||W_B[i]|| ||W_C[i]||`` (rows of x_proj)."""
    cfg = block.config
    W = block.x_proj.weight.detach().to(torch.float64)
    WB = W[cfg.dt_rank:cfg.dt_rank + cfg.d_state]
    WC = W[cfg.dt_rank + cfg.d_state:]
    return torch.linalg.vector_norm(WB, dim=1) * torch.linalg.vector_norm(WC, dim=1)


# --------------------------------------------------------------------------- planning
def _check_args(order, energy, select, generator, statistic):
    if (order is None) == (energy is None):
        raise InvalidParameterError("reduce_mamba_ needs exactly one of order (new d_state, int >= 1) or "
                                    f"energy (fraction tau in (0, 1)); got order={order!r}, energy={energy!r}")
    if order is not None and (isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 1):
        raise InvalidParameterError(f"order must be an int >= 1 (the new d_state), got {order!r}")
    if energy is not None and (isinstance(energy, bool) or not isinstance(energy, numbers.Real)
                               or not 0 < float(energy) < 1):
        raise InvalidParameterError(f"energy must be a fraction tau in the open interval (0, 1), got {energy!r}")
    if select not in _SELECT:
        raise InvalidParameterError(f"select must be one of {_SELECT}, got {select!r}")
    if statistic not in _STATISTICS:
        raise InvalidParameterError(f"statistic must be one of {_STATISTICS}, got {statistic!r}")
    if select == "random" and not isinstance(generator, torch.Generator):
        raise TypeError(f"select='random' needs generator=torch.Generator (seeded), got {generator!r}")
    if select == "random" and energy is not None:
        raise InvalidParameterError("select='random' has no scores: give order, not energy")


def _plan_block(name, block, x, order, energy, select, generator, statistic):
    n = int(block.A_log.shape[1])
    if order is not None and order > n:
        raise InvalidParameterError(f"order={order} exceeds d_state={n} of block {name!r}")
    if select == "random":
        scores = None
        perm = torch.randperm(n, generator=generator, device=generator.device).cpu()
        keep = torch.sort(perm[:order]).values
    else:
        if select == "hankel":
            scores = state_energy(proxy_systems(block, x, statistic)).sum(0).cpu()
        else:
            scores = _magnitude_scores(block).cpu()
        ranked = torch.argsort(scores, descending=True, stable=True)
        # the energy criterion is the core's (sum of the kept scores >= (1 - tau) of the total)
        r = order if order is not None else max(1, select_order(scores[ranked].numpy(), energy=float(energy)))
        keep = torch.sort(ranked[:r]).values
    total = float(scores.sum()) if scores is not None else math.nan
    kept_fraction = float(scores[keep].sum()) / total if scores is not None and total > 0 else math.nan
    return MambaBlockReduction(name=name, old_d_state=n, new_d_state=int(keep.numel()),
                               kept=tuple(int(i) for i in keep),
                               scores=() if scores is None else tuple(float(s) for s in scores),
                               kept_fraction=kept_fraction)


def _row_index(cfg, keep):
    """Rows of x_proj kept: all of delta's, then B's and C's kept indices."""
    keep = torch.as_tensor(keep, dtype=torch.long)
    return torch.cat([torch.arange(cfg.dt_rank), cfg.dt_rank + keep, cfg.dt_rank + cfg.d_state + keep])


def _truncation(block, keep):
    """``[(module, attr, old parameter, new parameter, exact state map)]`` and the new config."""
    cfg = block.config
    cols = torch.as_tensor(keep, dtype=torch.long, device=block.A_log.device)
    rows = _row_index(cfg, keep).to(block.x_proj.weight.device)
    changes = [(block, "A_log", block.A_log, lambda t, c=cols: t.index_select(1, c.to(t.device)))]
    changes.append((block.x_proj, "weight", block.x_proj.weight, lambda t, r=rows: t.index_select(0, r.to(t.device))))
    if block.x_proj.bias is not None:
        changes.append((block.x_proj, "bias", block.x_proj.bias, lambda t, r=rows: t.index_select(0, r.to(t.device))))
    new_cfg = copy.copy(cfg)
    new_cfg.d_state = len(keep)
    return [(mod, attr, old, new_parameter_like(old, fmap(old.detach())), fmap) for mod, attr, old, fmap in changes], \
        new_cfg


def _relative_change(before, after):
    den = float(torch.linalg.vector_norm(before.double()))
    num = float(torch.linalg.vector_norm(after.double() - before.double()))
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)


# --------------------------------------------------------------------------- entry point
def reduce_mamba_(model, calibration, *, order=None, energy=None, held_out=None, select="hankel",
                  statistic="mean", generator=None, optimizers=()) -> MambaReductionReport:
    """Reduce ``d_state`` of every ``mambapy`` Mamba block of ``model`` in place (experimental).

    Parameters
    ----------
    model : torch.nn.Module
        A ``mambapy.mamba.Mamba`` or any module containing ``MambaBlock`` s; ``model(batch)``
        must return a tensor.
    calibration : torch.Tensor
        A batch of model inputs: ``(batch, L, d_model)`` float for ``Mamba``, or whatever the
        wrapping model takes (e.g. token ids ``(batch, L)``).
    order : int, optional
        New ``d_state`` of every block (``1 <= order <= d_state``).
    energy : float in (0, 1), optional
        Per block, the fewest indices whose scores sum to at least ``(1 - energy)`` of the
        total. Exactly one of ``order`` and ``energy``.
    held_out : torch.Tensor, optional
        A second batch (same form) on which the output change is also measured.
    select : {'hankel', 'magnitude', 'random'}
        ``'hankel'``: the LTI proxy's Hankel energy (module notes); ``'magnitude'``: the
        baseline ``||W_B[i]|| ||W_C[i]||`` of x_proj's rows; ``'random'``: uniformly random
        indices (needs ``generator`` and ``order``).
    statistic : {'mean', 'rms'}
        How the proxy averages B and C over the calibration batch.
    generator : torch.Generator, optional
    optimizers : torch.optim.Optimizer or iterable of them
        Rebound in place: the truncated parameters take the old ones' places and keep
        their per-element state indexed the same way (exact for Adam-type moments).

    Returns
    -------
    MambaReductionReport

    Raises
    ------
    CalibrationError (ValueError)
        A batch of the wrong type or shape, or one that does not reach every block.
    UnsupportedMambaError (ValueError)
        A variant the proxy does not understand.
    InvalidParameterError (ValueError), TypeError
        Bad arguments.

    Notes
    -----
    Atomic: every new value is computed first; if anything fails afterwards (including the
    forward pass that measures the change), the blocks, their configs and the optimizers
    are restored exactly. Call between ``optimizer.step()`` and the next forward pass.

    Examples
    --------
    >>> import torch
    >>> from mambapy.mamba import Mamba, MambaConfig
    >>> from lti_reduce_torch.mamba import reduce_mamba_, mamba_state_sizes
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = Mamba(MambaConfig(d_model=8, n_layers=2, d_state=16))
    >>> report = reduce_mamba_(model, torch.randn(4, 12, 8), order=8, held_out=torch.randn(4, 12, 8))
    >>> mamba_state_sizes(model)
    {'layers.0.mixer': 8, 'layers.1.mixer': 8}
    >>> report.calibration_change < 1.0
    True
    """
    t0 = time.perf_counter()
    _check_args(order, energy, select, generator, statistic)
    opts = as_optimizers(optimizers)
    blocks = mamba_blocks(model)
    _check_batch(model, calibration, "calibration", blocks)
    if held_out is not None:
        _check_batch(model, held_out, "held_out", blocks)
    y_cal, xs, z_cal = _capture(model, blocks, calibration, "calibration")
    y_held = _run(model, held_out, "held_out") if held_out is not None else None

    plans = [_plan_block(name, block, xs[name], order, energy, select, generator, statistic)
             for name, block in blocks]
    changes, configs = [], []
    for (name, block), plan in zip(blocks, plans):
        block_changes, new_cfg = _truncation(block, plan.kept)
        changes.extend(block_changes)
        configs.append((block, block.config, new_cfg))

    replacements = {old: new for _, _, old, new, _ in changes}
    state_maps = {old: fmap for _, _, old, _, fmap in changes}
    rebinds = [plan_rebind(opt, replacements, state_maps) for opt in opts]   # validated before any change
    committed = []
    try:
        for mod, attr, _, new, _ in changes:
            setattr(mod, attr, new)
        for block, _, new_cfg in configs:
            block.config = new_cfg
        for rebind in rebinds:
            rebind.commit()
            committed.append(rebind)
        y_after, _, z_after = _capture(model, blocks, calibration, "calibration")
        cal_change = _relative_change(y_cal, y_after)
        held_change = _relative_change(y_held, _run(model, held_out, "held_out")) if held_out is not None else None
    except BaseException:
        for rebind in reversed(committed):
            rebind.revert()
        for block, old_cfg, _ in configs:
            block.config = old_cfg
        for mod, attr, old, _, _ in changes:
            setattr(mod, attr, old)
        raise
    plans = [dataclasses.replace(plan, calibration_change=_relative_change(z_cal[plan.name], z_after[plan.name]))
             for plan in plans]
    return MambaReductionReport(blocks=tuple(plans), calibration_change=cal_change, held_out_change=held_change,
                                select=select, statistic=statistic, seconds=time.perf_counter() - t0)


def load_reduced_mamba_state_dict_(model, state_dict, strict=True):
    """Load a state dict of a reduced Mamba model into a model built at full size.

    Every block whose stored ``A_log`` has fewer columns is truncated to that ``d_state``
    first (keeping its first indices, which the load then overwrites; each such block
    gets its own config copy), then ``model.load_state_dict(state_dict, strict)``.

    Returns
    -------
    dict of str to (int, int)
        ``{block name: (d_state before, d_state after)}`` of the resized blocks.

    Raises
    ------
    lti_reduce.ShapeError
        A stored ``A_log`` that is missing (with ``strict``) or has another ``d_inner`` or a
        larger ``d_state``. Nothing is changed in that case.
    """
    blocks = mamba_blocks(model)
    plan = []
    for name, block in blocks:
        key = f"{name}.A_log" if name else "A_log"
        if key not in state_dict:
            if strict:
                raise ShapeError(f"state_dict has no {key!r}")
            continue
        stored = tuple(state_dict[key].shape)
        d_inner, n = block.A_log.shape
        if len(stored) != 2 or stored[0] != d_inner or stored[1] > n:
            raise ShapeError(f"{key}: stored shape {stored} does not fit the block's (d_inner={d_inner}, "
                             f"d_state<={n})")
        if stored[1] != n:
            plan.append((name, block, n, stored[1]))
    resized = {}
    done = []
    try:
        for name, block, n, r in plan:
            changes, new_cfg = _truncation(block, list(range(r)))
            done.append((block, block.config, changes))
            for mod, attr, _, new, _ in changes:
                setattr(mod, attr, new)
            block.config = new_cfg
            resized[name] = (n, r)
        model.load_state_dict(state_dict, strict=strict)
    except BaseException:
        for block, old_cfg, changes in reversed(done):
            block.config = old_cfg
            for mod, attr, old, _, _ in changes:
                setattr(mod, attr, old)
        raise
    return resized
