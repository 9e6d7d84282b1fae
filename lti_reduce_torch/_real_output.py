"""``output='real'`` of :func:`~lti_reduce_torch.reduce_` and :class:`~lti_reduce_torch.Compressor`.

A complex diagonal layer (LRU, S5, S4D) reads ``Re(C x + D u)`` of its state for a real
input: the map it computes is a real system of ``2n`` states. With ``output='real'`` that
system is reduced (:func:`lti_reduce.real_output_balanced_truncation`) and the result,
already in complex diagonal form, goes to the adapter's ``rebuild`` like any balanced
reduction. Orders count the layer's complex states (a conjugate pair of reduced
eigenvalues is one state, a real eigenvalue one state); the bound ``2 * sum`` of the real
system's truncated HSVs holds for the layer's real output. An adapter whose layer cannot
hold an exactly real positive eigenvalue (LRU: ``theta_log = log(angle)``) says so with
``holds_positive_real_eigenvalues = False``; such orders are then skipped.

For an unbatched layer with ``order`` or ``tol``, the published (complex) reduction is
taken instead when it is better for the real output (a smaller bound at ``order``, fewer
states at ``tol``; its bound holds for the real output too): the real-output family can
fall short, e.g. for an LRU with a mode of nearly zero angle. The layer's reason says so.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from lti_reduce import (DiagonalStateSpace, InvalidParameterError, StateSpace, balanced_truncation, check_order,
                        real_output_balanced_truncation)
from ._planning import keeps_too_many, pad_dead_states
from .selection import BalancedSelection, modal_energy

__all__ = ["OUTPUTS", "check_output", "reduce_real_output"]

#: accepted values of ``output``
OUTPUTS = ("complex", "real")


def check_output(output, method):
    """``output`` as given, after checking it against :data:`OUTPUTS` and the selection method.

    Raises
    ------
    InvalidParameterError
        An unknown value, or ``'real'`` with a selection other than balanced truncation.
    """
    if not isinstance(output, str) or output not in OUTPUTS:
        raise InvalidParameterError(f"output must be 'complex' (reduce the complex system, as published) or "
                                    f"'real' (reduce the real system u -> Re(C x + D u) the layer computes), "
                                    f"got {output!r}")
    if output == "real" and not isinstance(method, BalancedSelection):
        raise InvalidParameterError(f"output='real' is balanced truncation of the layer's real output map and "
                                    f"needs select='balanced', got select={method.name!r}")
    return output


def reduce_real_output(groups, horizon, criterion, min_ratio):
    """Plan every layer with a complex diagonal system: HSVs, order, reduced system, bound.

    Parameters
    ----------
    groups : list of list of LayerPlan
    horizon, criterion, min_ratio
        As checked by :func:`~lti_reduce_torch.reduce_`.

    Returns
    -------
    list of list of LayerPlan
        The groups left for the ordinary path: layers whose system is real (the real
        output map is the system itself).
    """
    rest = []
    for members in groups:
        system = members[0].system
        if not (isinstance(system, DiagonalStateSpace) and system.is_complex):
            rest.append(members)
            continue
        for layer in members:
            t0 = time.perf_counter()
            _plan_layer(layer, horizon, criterion, min_ratio)
            layer.seconds += time.perf_counter() - t0
    return rest


def _elements(system):
    """The unbatched systems of a (possibly batched) DiagonalStateSpace, row-major."""
    batch = tuple(system.batch_shape)
    if not batch:
        return [system]
    count = math.prod(batch)
    flat = DiagonalStateSpace(*(a.reshape((count,) + tuple(a.shape[len(batch):]))
                                for a in (system.eigenvalues, system.B, system.C, system.D)), dt=system.dt)
    return [flat[i] for i in range(count)]


def _keywords(layer, criterion):
    if criterion.kind != "order":
        return criterion.keywords()
    value = criterion.value
    target = value[layer.name] if isinstance(value, dict) else value
    return {"order": check_order(target, layer.n, name=f"order for layer {layer.name!r}")}


def _complex_if_better(layer, real_result, keywords, horizon):
    """The published (complex) reduction of an unbatched layer when it is better for the
    layer's real output, else None: for ``order`` a smaller bound with at most the same
    states, for ``tol`` fewer states. Both bounds hold for the real output (``|Re e| <=
    |e|``); the real-output family can fall short, e.g. for an LRU, whose skipped orders
    (real positive eigenvalues) may leave far fewer states than asked."""
    if layer.batch_shape or horizon is not None or "energy" in keywords:
        return None
    result = balanced_truncation(layer.system, **keywords, warn=False)
    if result.order < 1:
        return None
    if "order" in keywords:
        better = result.error_bound < real_result.error_bound
    else:
        better = result.order < real_result.order
    return result if better else None


def _take_complex(layer, result, real_result, min_ratio):
    k = result.order
    if keeps_too_many(layer, k, min_ratio, criterion="output='real': criterion"):
        return
    layer.note(f"output='real': the complex reduction is better for the real output here ({k} states, bound "
               f"{result.error_bound:.3g}; real-output reduction: {real_result.order} states, bound "
               f"{real_result.error_bound:.3g})")
    for text in result.notes:
        layer.note(f"core: {text}")
    layer.reduced = result.system
    layer.bound = float(result.error_bound)
    layer.new_n = k
    layer.status = "reduced"


def _plan_layer(layer, horizon, criterion, min_ratio):
    n = layer.n
    avoid = not getattr(layer.adapter, "holds_positive_real_eigenvalues", True)
    elements = _elements(layer.system)
    options = {"horizon": horizon, "avoid_positive_real": avoid}
    keywords = _keywords(layer, criterion)
    results = [real_output_balanced_truncation(s, **keywords, **options) for s in elements]
    layer.hsv = np.stack([np.asarray(r.hsv.cpu()) for r in results]).reshape(layer.batch_shape + (2 * n,))
    complex_result = _complex_if_better(layer, results[0], keywords, horizon)
    if complex_result is not None:
        _take_complex(layer, complex_result, results[0], min_ratio)
        return
    k = max(r.order for r in results)
    if criterion.kind != "order":
        k = max(1, k)          # a criterion never empties a layer, as in the complex path
    if keeps_too_many(layer, k, min_ratio, criterion="output='real': criterion"):
        return
    # elements with fewer states take the layer's k: a larger real order, still meeting
    # their criterion, with a bound no larger
    results = [r if r.order == k else real_output_balanced_truncation(s, order=k, **options)
               for r, s in zip(results, elements)]
    if not layer.batch_shape:
        k = results[0].order
        if k == 0:
            layer.note("output='real': no real order with a representable spectrum keeps a state")
            return
    bounds = [r.error_bound for r in results]
    layer.bound = None if any(b is None for b in bounds) else float(max(bounds))
    reduced = []
    short = 0
    for i, (res, original) in enumerate(zip(results, elements)):
        lam = res.system.eigenvalues
        system = StateSpace(torch.diag(lam), res.system.B, res.system.C, res.system.D, dt=res.system.dt)
        if res.order < k:
            # dead states (zero input and output weights) keep every channel at order k; their
            # eigenvalues are the channel's strongest original modes, which the layer can hold
            short += 1
            strongest = torch.argsort(modal_energy(original, horizon), descending=True, stable=True)
            system = pad_dead_states(system, k - res.order, original.eigenvalues[strongest[:k - res.order]])
        reduced.append(system)
    real_orders = sorted({r.real_order for r in results})
    reals = max(r.real_eigenvalues for r in results)
    layer.note(f"output='real': real system of {2 * n} states reduced to real order "
               f"{real_orders[0] if len(real_orders) == 1 else f'{real_orders[0]}..{real_orders[-1]}'} "
               f"({k} complex states, up to {reals} with a real eigenvalue)"
               + (", real positive eigenvalues avoided" if avoid else ""))
    if short:
        layer.note(f"{short} channel(s) with fewer than {k} states padded with dead states")
    layer.reduced = reduced[0] if not layer.batch_shape else tuple(reduced)
    layer.new_n = k
    layer.status = "reduced"
