"""Planning a reduction: one :class:`LayerPlan` per layer, grouping, HSVs, orders, dead-state padding.

Layers whose reduction systems share (kind, n, m, p, batch shape, device, dtype, dt) form
a group: their diagonal systems are stacked into one batched DiagonalStateSpace and the
core runs once per group, on the parameters' device, in complex128/float64.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import torch

from lti_reduce import DiagonalStateSpace, HankelFactors, StateSpace, check_order, choose_order, hankel_factors
from ._registry import get_adapter

__all__ = ["LayerPlan", "plan_layers", "group_layers", "compute_hsvs", "stack_diagonal", "stack_layer_systems",
           "stack_factors", "pad_dead_states"]

_FACTOR_FIELDS = ("Lc", "Lo", "U", "hsv", "Vh")


class LayerPlan:
    """Mutable planning record of one layer during :func:`~lti_reduce_torch.reduce_`.

    A :class:`~lti_reduce_torch.selection.SelectionMethod` reads ``name``, ``module``,
    ``adapter``, ``n``, ``new_n`` (the chosen order r), ``elem_orders``, ``system``,
    ``batch_shape`` and ``factors``, and sets ``reduced`` (what ``adapter.rebuild``
    receives) or ``keep`` (what ``adapter.select_states`` receives), ``bound`` and, to
    refuse, ``status = 'refused'`` with a ``reason`` entry.

    Attributes
    ----------
    name : str
        Qualified module name.
    module : torch.nn.Module
    adapter : SSMAdapter
    n : int
        State size before.
    system : DiagonalStateSpace or StateSpace
        ``adapter.reduction_system(module)``.
    hsv : numpy.ndarray, shape batch_shape + (n,)
    new_n : int
        Chosen order (``n`` unless ``status == 'reduced'``).
    elem_orders : list of int
        Per batch element (row-major): ``min(new_n, numerical rank)``.
    status : {'unchanged', 'reduced', 'refused'}
    reason : list of str
    bound : float or None
    seconds : float
    reduced, keep, new_values, state_maps, factors
        Outputs of the later stages.
    """

    def __init__(self, name, module, adapter):
        self.name, self.module, self.adapter = name, module, adapter
        self.n = int(adapter.state_size(module))
        self.system = None
        self.hsv = None
        self.new_n = self.n
        self.elem_orders = None
        self.status = "unchanged"
        self.reason = []
        self.bound = 0.0
        self.seconds = 0.0
        self.reduced = None
        self.keep = None
        self.new_values = None
        self.state_maps = {}
        self.factors = None
        self.group_factors = None

    @property
    def batch_shape(self):
        """Batch shape of ``system`` (``()`` for a dense or unbatched system)."""
        return tuple(self.system.batch_shape) if isinstance(self.system, DiagonalStateSpace) else ()

    def note(self, text):
        """Append ``text`` to the reasons unless already there."""
        if text not in self.reason:
            self.reason.append(text)


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


def plan_layers(found, method, horizon):
    """One :class:`LayerPlan` per ``(name, module)``, with its system; unstable ones refused.

    Raises
    ------
    TypeError
        A modal ``method`` and a layer whose system is not diagonal; a bad ``to_lti``.
    """
    plan = []
    for name, module in found:
        layer = LayerPlan(name, module, get_adapter(module))
        layer.system = layer.adapter.reduction_system(layer.module)
        _check_system(layer)
        if method.modal and not isinstance(layer.system, DiagonalStateSpace):
            raise TypeError(f"select={method.name!r} keeps modal states and needs layers whose to_lti is a "
                            f"DiagonalStateSpace; layer {layer.name!r} is dense")
        plan.append(layer)
    if horizon is None:
        for layer, stable in zip(plan, _stability(plan)):
            if not stable:
                layer.status = "refused"
                layer.reason.append("the layer's LTI system is unstable: infinite-horizon balanced truncation "
                                    "needs a stable system (pass horizon=)")
    return plan


def _stability(plan):
    """Whether each layer's system is stable: the diagonal ones in one host read per device
    (each read is a synchronisation on a GPU), the dense ones by their poles."""
    flags, diagonal = {}, defaultdict(list)
    for i, layer in enumerate(plan):
        s = layer.system
        if isinstance(s, DiagonalStateSpace):
            lam = s.eigenvalues
            inside = lam.abs() < 1 if s.is_discrete else (lam.real if lam.is_complex() else lam) < 0
            diagonal[str(lam.device)].append((i, inside.all()))
        else:
            flags[i] = s.is_stable()
    for entries in diagonal.values():
        values = torch.stack([flag for _, flag in entries]).tolist()
        flags.update((i, value) for (i, _), value in zip(entries, values))
    return [flags[i] for i in range(len(plan))]


def group_layers(plan):
    """``[[LayerPlan, ...], ...]``: the layers not refused, grouped by compatible systems."""
    groups = defaultdict(list)
    for layer in plan:
        if layer.status == "refused":
            continue
        s = layer.system
        if isinstance(s, DiagonalStateSpace):
            key = ("diagonal", s.n, s.m, s.p, tuple(s.batch_shape), str(s.B.device), s.B.dtype,
                   s.eigenvalues.dtype, s.dt)
        else:
            key = ("dense", id(layer))
        groups[key].append(layer)
    return list(groups.values())


def stack_diagonal(systems):
    """Stack DiagonalStateSpace systems of one shape along a new leading batch dimension."""
    return DiagonalStateSpace(torch.stack([s.eigenvalues for s in systems]),
                              torch.stack([s.B for s in systems]),
                              torch.stack([s.C for s in systems]),
                              torch.stack([s.D for s in systems]), dt=systems[0].dt,
                              check_finite=False)      # each system checked its arrays when built


def _whole_group(layers):
    """The group record ``(factors, stacked system)`` when ``layers`` are exactly the rows of one
    group of :func:`compute_hsvs`, in order and unchanged since; else None."""
    records = [layer.group_factors for layer in layers]
    if any(r is None or r[2] is not layer.factors for r, layer in zip(records, layers)):
        return None
    if len({id(r[0]) for r in records}) != 1 or [r[1] for r in records] != list(range(records[0][0].hsv.shape[0])):
        return None
    if any(layer.system is not r[4] for r, layer in zip(records, layers)):
        return None
    return records[0][0], records[0][3]


def stack_layer_systems(layers):
    """:func:`stack_diagonal` of the layers' systems, reusing the stack of their group if it is one."""
    whole = _whole_group(layers)
    return whole[1] if whole is not None else stack_diagonal([layer.system for layer in layers])


def stack_factors(layers):
    """The layers' HankelFactors stacked along a new leading dimension.

    Layers whose factors are rows of one group's batched factors (:func:`compute_hsvs`)
    take them from there: the whole batch as it is, or one gather, not a copy per layer."""
    sources = {id(layer.group_factors[0]) if layer.group_factors and layer.group_factors[2] is layer.factors
               else None for layer in layers}
    if len(sources) == 1 and None not in sources:
        factors = layers[0].group_factors[0]
        rows = [layer.group_factors[1] for layer in layers]
        if rows == list(range(factors.hsv.shape[0])):
            return factors
        index = torch.tensor(rows, device=factors.hsv.device)
        return HankelFactors(*(getattr(factors, name).index_select(0, index) for name in _FACTOR_FIELDS))
    return HankelFactors(*(torch.stack([getattr(layer.factors, name) for layer in layers])
                           for name in _FACTOR_FIELDS))


def compute_hsvs(groups, horizon, criterion, min_ratio):
    """HSVs (one core call per group, factors kept for the truncation), then each layer's order."""
    for members in groups:
        t0 = time.perf_counter()
        if isinstance(members[0].system, DiagonalStateSpace):
            stacked = stack_diagonal([layer.system for layer in members])
            factors = hankel_factors(stacked, horizon=horizon)
            hsv = factors.hsv.cpu().numpy()
            for i, layer in enumerate(members):
                layer.hsv = hsv[i]
                layer.factors = HankelFactors(*(getattr(factors, name)[i] for name in _FACTOR_FIELDS))
                layer.group_factors = (factors, i, layer.factors, stacked, layer.system)
        else:
            members[0].hsv = hankel_factors(members[0].system, horizon=horizon).hsv.cpu().numpy()
        share = (time.perf_counter() - t0) / len(members)
        for layer in members:
            layer.seconds += share
            choose_layer_order(layer, criterion, min_ratio)


def choose_layer_order(layer, criterion, min_ratio):
    """Per-layer order r (max over channels of the core's choice) and per-element orders.

    Every order decision, clipping to the numerical rank included, is the core's
    :func:`lti_reduce.choose_order`; its notes go to the layer's reasons.
    """
    n = layer.n
    flat = np.asarray(layer.hsv, dtype=np.float64).reshape(-1, n)
    if criterion.kind == "order":
        value = criterion.value
        target = value[layer.name] if isinstance(value, dict) else value
        keywords = {"order": check_order(target, n, name=f"order for layer {layer.name!r}")}
    else:
        keywords = criterion.keywords()
    choices = [choose_order(s, **keywords) for s in flat]
    r = max(choice.order for choice in choices)
    if criterion.kind != "order":
        r = max(1, r)          # a criterion never empties a layer; order=0 asks for it explicitly
    if layer.batch_shape == ():
        for text in choices[0].notes:
            layer.note(text)
    elif criterion.kind == "order" and r < keywords["order"]:
        layer.note(f"order {keywords['order']} exceeds the numerical rank of every channel; using {r}")
    # channels of numerical rank below r are truncated at their rank (the core's clip) and
    # padded later with dead states
    layer.elem_orders = [choose_order(s, order=r).order for s in flat] if r < n else [n] * len(flat)
    if keeps_too_many(layer, r, min_ratio):
        return
    layer.new_n = r
    layer.status = "reduced"


def keeps_too_many(layer, r, min_ratio, criterion="criterion"):
    """True (with a note on the layer) when order ``r`` removes no state, or fewer than ``min_ratio`` asks."""
    n = layer.n
    if r >= n:
        layer.note(f"{criterion} keeps all {n} states")
        return True
    if min_ratio is not None and not r < min_ratio * n:
        layer.note(f"new order {r} is not below min_ratio * n = {min_ratio:g} * {n} = {min_ratio * n:g}")
        return True
    return False


def pad_dead_states(system, count, eigenvalues):
    """Append ``count`` dead states (zero B rows and C columns) with the given eigenvalues.

    Neither reachable nor observable, they leave the transfer function exact; they keep
    every channel of a channel-batched layer at one order.
    """
    if count == 0:
        return system
    A, B, C = system.A, system.B, system.C
    dtype = torch.promote_types(A.dtype, eigenvalues.dtype)
    A = torch.block_diag(A.to(dtype), torch.diag(eigenvalues.to(dtype)))
    B = torch.cat([B.to(dtype), B.new_zeros((count, B.shape[1]), dtype=dtype)], dim=0)
    C = torch.cat([C.to(dtype), C.new_zeros((C.shape[0], count), dtype=dtype)], dim=1)
    return StateSpace(A, B, C, system.D.to(dtype), dt=system.dt)
