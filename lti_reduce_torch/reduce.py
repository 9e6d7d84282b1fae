"""In-place balanced truncation of every registered SSM layer of a model: :func:`reduce_`.

The reduction is *atomic*: every new parameter value, and every optimizer change, is
computed before the first one is applied. If anything unexpected fails, the model and
the optimizers are left exactly as they were and the error propagates. Decisions are a
pure function of the parameters (and, for ``select='random'``, of an explicit
``torch.Generator``), with no global state, so that one rank of a distributed job can
decide and the others can replay the decision with ``order={name: new_n, ...}``.

The stages live in their own modules: discovery (:mod:`._discovery`), planning, HSVs and
orders (:mod:`._planning`), what each layer keeps (:mod:`.selection`), the swap
(:mod:`._commit`) and the report (:mod:`._report`).
"""

from __future__ import annotations

import json
import time

import numpy as np

from lti_reduce import InvalidParameterError, check_criterion
from ._arguments import as_optimizers, check_generator, check_horizon, check_min_ratio
from ._commit import build_new_values, commit
from ._discovery import reducible_layers, state_sizes
from ._planning import compute_hsvs, group_layers, plan_layers
from ._registry import registered_layer_types
from ._report import LayerReduction, ReductionReport
from .selection import as_selection
from ._modes import refuse_inference_mode
from ._wrappers import refuse_data_parallel   # i9: DDP wrappers go through DistributedCompressor
from ._real_output import check_output, reduce_real_output

__all__ = ["reduce_", "ReductionReport", "LayerReduction", "reducible_layers", "state_sizes"]


def reduce_(model, *, order=None, energy=None, tol=None, horizon=None, optimizers=(), select="balanced",
            generator=None, min_ratio=None, layers=None, output="complex") -> ReductionReport:
    """Reduce every registered SSM layer of ``model`` in place (balanced truncation).

    Parameters
    ----------
    model : torch.nn.Module
        Every submodule whose class has a registered adapter is considered.
    order : int or mapping of str to int, optional
        Reduced state dimension, in [0, n] for each layer (0 leaves the feedthrough
        only); or ``{qualified layer name: order}``, which also selects the layers (then
        ``layers`` must be None).
    energy : float, optional
        CompreSSM's tau in (0, 1): per layer, the smallest r with
        ``sum_{i<=r} s_i >= (1 - tau) * sum_i s_i``.
    tol : float, optional
        Error budget >= 0: per layer the smallest r with ``2 * sum_{i>r} s_i <= tol``
        (0: the numerical rank). Exactly one of ``order``, ``energy``, ``tol`` is
        required; the rules are :func:`lti_reduce.check_criterion`'s, as in the core.
    horizon : int or float, optional
        Finite-horizon Gramians (e.g. the training sequence length), passed to the core.
    optimizers : torch.optim.Optimizer or iterable of them
        Rebound in place (see :func:`~lti_reduce_torch.optim.rebind_optimizer_`): reduced
        parameters take the old ones' places; their state is dropped (balanced: the new
        coordinates are unrelated to the old ones) or, for the modal ablations, indexed
        exactly like the parameter.
    select : {'balanced', 'smallest', 'random'} or SelectionMethod
        'balanced' is balanced truncation. The ablations keep r *modal* states of a
        diagonal layer (through the adapter's ``select_states``), r chosen by the same
        criterion: 'smallest' keeps the modes with the smallest modal energy
        ``||b_i|| ||c_i|| / (1 - |lambda_i|)``, 'random' keeps r uniformly random modes.
        The strings are aliases of :data:`~lti_reduce_torch.selection.BALANCED`,
        ``SMALLEST`` and ``RANDOM``; any :class:`~lti_reduce_torch.selection.SelectionMethod`
        (e.g. a :class:`~lti_reduce_torch.selection.ModalSelection` subclass) is accepted.
    generator : torch.Generator, optional
        Required for ``select='random'`` (reproducible choice).
    min_ratio : float in (0, 1], optional
        Reduce a layer only if ``new_n < min_ratio * n`` (CompreSSM's tolerance mode uses 0.95).
    layers : iterable of str, optional
        Restrict to these qualified module names.
    output : {'complex', 'real'}
        'complex' (published) reduces the complex system of a diagonal layer. 'real'
        reduces the real system ``u -> Re(C x + D u)`` the layer computes (2n real states)
        and maps it back to the layer's complex diagonal form
        (:func:`lti_reduce.real_output_balanced_truncation`): orders count complex
        states, the HSVs reported are the real system's 2n, and the bound holds for the
        layer's real output. Layers with a real system are reduced as with 'complex'.
        Needs ``select='balanced'``. An adapter with ``holds_positive_real_eigenvalues =
        False`` (LRU: no angle 0) gets no real order whose reduced spectrum has an
        exactly real positive eigenvalue, which can cost states (``docs/results.md``).

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
      dropped HSVs are exactly zero) by the core's :func:`lti_reduce.choose_order`,
      whose notes become the layer's reason; a criterion (``energy``, ``tol``) never
      yields fewer than 1 state.
    * An adapter that raises ``ReductionRefusedError`` leaves its layer untouched (status
      'refused', reason given); the other layers proceed.
    * New parameters are fresh ``nn.Parameter`` objects with the old one's
      ``requires_grad`` and every attribute of its ``__dict__`` (e.g. ``_no_weight_decay``);
      every place in the model holding the old object (tied weights) gets the new one.
      Call this between ``optimizer.step()`` and the next forward pass: the new
      parameters carry no ``.grad``.
    """
    refuse_inference_mode("reduce_")
    refuse_data_parallel(model, "reduce_")
    t_start = time.perf_counter()
    criterion = check_criterion(order=order, tol=tol, energy=energy, by_name=True)
    method = as_selection(select)
    check_generator(generator, required_by=method.name if method.needs_generator else None)
    min_ratio = check_min_ratio(min_ratio)
    horizon = check_horizon(horizon)
    opts = as_optimizers(optimizers)
    output = check_output(output, method)
    if isinstance(criterion.value, dict):
        if layers is not None:
            raise InvalidParameterError("order given as a mapping selects the layers itself: pass layers=None")
        layers = list(criterion.value)
    found = reducible_layers(model, layers)
    if layers is None and not found:
        names = ", ".join(t.__qualname__ for t in registered_layer_types()) or "none"
        raise InvalidParameterError(f"model has no submodule with a registered adapter (registered layer "
                                    f"types: {names})")
    plan = plan_layers(found, method, horizon)
    groups = group_layers(plan)
    if output == "real":
        groups = reduce_real_output(groups, horizon, criterion, min_ratio)   # leaves the real systems
    compute_hsvs(groups, horizon, criterion, min_ratio)
    for members in groups:
        todo = [layer for layer in members if layer.status == "reduced"]
        if todo:
            t0 = time.perf_counter()
            method.reduce_group(todo, horizon=horizon, generator=generator)
            share = (time.perf_counter() - t0) / len(todo)
            for layer in todo:
                layer.seconds += share
    build_new_values(plan, method)
    reducing = [layer for layer in plan if layer.status == "reduced"]
    if reducing:
        commit(model, reducing, opts)
    return _report(plan, criterion, method, time.perf_counter() - t_start, output)


def _report(plan, criterion, method, seconds, output="complex"):
    entries = []
    for layer in plan:
        if layer.status != "reduced":
            layer.new_n, layer.bound = layer.n, 0.0
        hsv = [] if layer.hsv is None else np.asarray(layer.hsv, dtype=np.float64).tolist()
        entries.append(LayerReduction(name=layer.name, old_n=layer.n, new_n=layer.new_n, hsv=hsv,
                                      error_bound=layer.bound, seconds=layer.seconds, status=layer.status,
                                      reason="; ".join(layer.reason)))
    if isinstance(criterion.value, dict):
        text = "order=" + json.dumps(criterion.value, sort_keys=True)
    else:
        text = f"{criterion.kind}={criterion.value}"
    if output != "complex":
        text += f", output={output}"
    return ReductionReport(layers=tuple(entries), seconds=seconds, criterion=text, select=method.name)
