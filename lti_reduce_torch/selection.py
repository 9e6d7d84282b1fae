"""How :func:`~lti_reduce_torch.reduce_` turns a layer's chosen order into new parameters.

A selection method receives the layers of one group that reduce (each a
:class:`~lti_reduce_torch._planning.LayerPlan` whose order ``new_n`` is already chosen by
the criterion) and decides *which* r-dimensional system each layer keeps:

* :data:`BALANCED` (``select='balanced'``): balanced truncation, one core call per group;
* :data:`SMALLEST` (``select='smallest'``): the ablation keeping the r modes of smallest
  modal energy (:func:`modal_energy`);
* :data:`RANDOM` (``select='random'``): the ablation keeping r uniformly random modes
  (needs ``generator=``).

The strings are aliases of these instances (:func:`as_selection`). A new modal rule
subclasses :class:`ModalSelection` and implements :meth:`ModalSelection.rank_modes`; a
rule of another kind subclasses :class:`SelectionMethod`.

Examples
--------
Keep the r modes of largest modulus ``|lambda|`` (the slowest ones):

>>> import torch
>>> from lti_reduce_torch.selection import ModalSelection
>>> class SlowestModes(ModalSelection):
...     name = "slowest"
...     def rank_modes(self, system, *, horizon=None, generator=None):
...         return torch.argsort(-system.eigenvalues.abs(), dim=-1, stable=True)
>>> # lti_reduce_torch.reduce_(model, energy=0.1, select=SlowestModes())
"""

from __future__ import annotations

import abc
import math

import torch

from lti_reduce import DiagonalStateSpace, InvalidParameterError, balanced_truncation
from ._planning import pad_dead_states, stack_factors, stack_layer_systems

__all__ = ["SelectionMethod", "BalancedSelection", "ModalSelection", "SmallestModalEnergy", "RandomModes",
           "BALANCED", "SMALLEST", "RANDOM", "as_selection", "modal_energy"]


def modal_energy(system, horizon=None):
    """Per-mode bound ``||b_i|| ||c_i|| g_i`` on the H-infinity norm of each mode of a diagonal system.

    Parameters
    ----------
    system : lti_reduce.DiagonalStateSpace
        Torch tensors, any batch shape.
    horizon : int or float, optional
        Finite horizon (steps in discrete time, time in continuous time).

    Returns
    -------
    torch.Tensor, shape batch_shape + (n,), float64
        ``||b_i|| ||c_i||`` times the L1 norm ``g_i`` of the mode's scalar impulse
        response: discrete ``1 / (1 - |lambda_i|)`` (``(1 - |lambda_i|^L) / (1 - |lambda_i|)``
        over L steps), continuous ``1 / (-Re lambda_i)`` (``(exp(Re lambda_i T) - 1) / Re
        lambda_i`` over T). Its sum over dropped modes bounds the H-infinity error of modal
        truncation (triangle inequality); it is the score of :data:`SMALLEST`.

    Notes
    -----
    This is the one modal-energy formula of the package (``validation/`` ranks modes with
    it too); ``b_i`` is row i of B, ``c_i`` column i of C.
    """
    lam = system.eigenvalues
    b = torch.linalg.vector_norm(system.B, dim=-1).to(torch.float64)
    c = torch.linalg.vector_norm(system.C, dim=-2).to(torch.float64)
    if system.is_discrete:
        mod = lam.abs().to(torch.float64)
        if horizon is None:
            gain = 1.0 / (1.0 - mod)
        else:
            steps = int(horizon)
            one = (1.0 - mod).abs() < 1e-15
            gain = torch.where(one, torch.full_like(mod, float(steps)),
                               (1.0 - mod ** steps) / torch.where(one, torch.ones_like(mod), 1.0 - mod))
    else:
        re = lam.real.to(torch.float64) if lam.is_complex() else lam.to(torch.float64)
        if horizon is None:
            gain = 1.0 / (-re)
        else:
            T = float(horizon)
            zero = re == 0
            gain = torch.where(zero, torch.full_like(re, T),
                               torch.expm1(re * T) / torch.where(zero, torch.ones_like(re), re))
    return b * c * gain


class SelectionMethod(abc.ABC):
    """Protocol of a selection method (see the module notes).

    Attributes
    ----------
    name : str
        Shown in :class:`~lti_reduce_torch.ReductionReport` ``.select``.
    modal : bool
        True if the method keeps modal states through ``adapter.select_states`` (diagonal
        layers only; ``reduce_`` refuses dense layers up front).
    needs_generator : bool
        True if ``reduce_`` must be given ``generator=`` (a seeded ``torch.Generator``).
    """

    name = "custom"
    modal = False
    needs_generator = False

    @abc.abstractmethod
    def reduce_group(self, layers, *, horizon=None, generator=None):
        """Decide what each layer keeps; called once per group of compatible layers.

        Parameters
        ----------
        layers : list of LayerPlan
            Layers of one group that reduce: ``layer.new_n`` is the order r chosen by the
            criterion, ``layer.system`` the adapter's reduction system, ``layer.factors``
            its Gramian factors (diagonal layers).
        horizon : int or float, optional
        generator : torch.Generator, optional

        Notes
        -----
        Set ``layer.reduced`` (non-modal: the reduced StateSpace, or a tuple for a
        channel-batched layer) or ``layer.keep`` (modal: LongTensor of kept indices,
        batch_shape + (r,)), and ``layer.bound`` (float, or None if no a-priori bound
        holds). To refuse a layer set ``layer.status = 'refused'`` and add a reason.
        """

    def new_values(self, layer):
        """The layer's new parameter values (the adapter's ``select_states`` or ``rebuild``)."""
        if self.modal:
            return layer.adapter.select_states(layer.module, layer.keep)
        return layer.adapter.rebuild(layer.module, layer.reduced)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class BalancedSelection(SelectionMethod):
    """Balanced truncation (the core's :func:`lti_reduce.balanced_truncation`), batched per group.

    A channel of numerical rank below the layer's order is truncated at its rank and padded
    with dead states (zero input and output weights, eigenvalues of its strongest dropped
    modes), which leaves its transfer function exact.
    """

    name = "balanced"

    def reduce_group(self, layers, *, horizon=None, generator=None):
        diagonal = isinstance(layers[0].system, DiagonalStateSpace)
        if diagonal:
            stacked = stack_layer_systems(layers)
            orders = [k for layer in layers for k in layer.elem_orders]
            # orders are the core's choose_order decisions already reported: warn=False
            results = balanced_truncation(stacked, order=orders, horizon=horizon,
                                          factors=stack_factors(layers), warn=False)
        else:
            results = tuple(balanced_truncation(layer.system, order=layer.elem_orders[0], horizon=horizon,
                                                warn=False) for layer in layers)
        start = 0
        for layer in layers:
            count = math.prod(layer.batch_shape) if diagonal else 1
            self._finish_layer(layer, results[start:start + count], horizon)
            start += count

    @staticmethod
    def _finish_layer(layer, results, horizon):
        r = layer.new_n
        bounds = [res.error_bound for res in results]
        layer.bound = None if any(b is None for b in bounds) else float(max(bounds))
        for res in results:
            if res.order == r:
                for text in res.notes:
                    layer.note(f"core: {text}")
        if not isinstance(layer.system, DiagonalStateSpace) and results[0].order < r:
            layer.status = "refused"
            layer.note("the layer's Hankel operator is zero to working precision: no state to keep")
            return
        short = [i for i, res in enumerate(results) if res.order < r]
        if short:
            lam = layer.system.eigenvalues.reshape(len(results), layer.n)
            score = modal_energy(layer.system, horizon).reshape(len(results), layer.n)
        padded = []
        for i, res in enumerate(results):
            missing = r - res.order
            if missing:
                strongest = torch.argsort(score[i], descending=True, stable=True)[:missing]
                padded.append(pad_dead_states(res.system, missing, lam[i, strongest]))
            else:
                padded.append(res.system)
        if short:
            layer.note(f"{len(short)} channel(s) of numerical rank below {r} padded with dead states")
        layer.reduced = padded[0] if layer.batch_shape == () else tuple(padded)


class ModalSelection(SelectionMethod):
    """Keep r modal states of a diagonal layer, ranked by :meth:`rank_modes`.

    The reported bound is the triangle-inequality bound of modal truncation: the sum of
    :func:`modal_energy` over the dropped modes (max over channels).
    """

    modal = True

    @abc.abstractmethod
    def rank_modes(self, system, *, horizon=None, generator=None):
        """Mode indices in order of preference, shape batch_shape + (n,): the first r are kept.

        Parameters
        ----------
        system : lti_reduce.DiagonalStateSpace
            The layer's reduction system (torch tensors).
        horizon : int or float, optional
        generator : torch.Generator, optional
        """

    def reduce_group(self, layers, *, horizon=None, generator=None):
        for layer in layers:
            system, n, r = layer.system, layer.n, layer.new_n
            ranking = torch.as_tensor(self.rank_modes(system, horizon=horizon, generator=generator)).cpu()
            expected = layer.batch_shape + (n,)
            if tuple(ranking.shape) != expected:
                raise ValueError(f"{self!r}.rank_modes returned shape {tuple(ranking.shape)} for layer "
                                 f"{layer.name!r}; expected {expected}")
            keep = torch.sort(ranking[..., :r].to(torch.long), dim=-1).values
            dropped = torch.ones(expected, dtype=torch.bool)
            dropped.scatter_(-1, keep, False)
            energy = modal_energy(system, horizon).cpu()
            bound = torch.where(dropped, energy, torch.zeros_like(energy)).sum(-1)
            layer.keep = keep.to(system.B.device)
            layer.bound = float(bound.max())


class SmallestModalEnergy(ModalSelection):
    """Ablation: keep the r modes of *smallest* :func:`modal_energy` (``select='smallest'``)."""

    name = "smallest"

    def rank_modes(self, system, *, horizon=None, generator=None):
        return torch.argsort(modal_energy(system, horizon).cpu(), dim=-1, stable=True)


class RandomModes(ModalSelection):
    """Ablation: keep r uniformly random modes (``select='random'``; needs ``generator=``)."""

    name = "random"
    needs_generator = True

    def rank_modes(self, system, *, horizon=None, generator=None):
        shape = tuple(getattr(system, "batch_shape", ())) + (system.n,)
        noise = torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device)
        return torch.argsort(noise, dim=-1, stable=True)


BALANCED = BalancedSelection()
SMALLEST = SmallestModalEnergy()
RANDOM = RandomModes()
_ALIASES = {"balanced": BALANCED, "smallest": SMALLEST, "random": RANDOM}


def as_selection(select):
    """The :class:`SelectionMethod` for ``select`` (an instance, or one of the string aliases).

    Raises
    ------
    InvalidParameterError
        An unknown string or another type (the message lists the aliases).
    """
    if isinstance(select, SelectionMethod):
        return select
    if isinstance(select, str) and select in _ALIASES:
        return _ALIASES[select]
    raise InvalidParameterError(f"select must be one of {tuple(_ALIASES)} or a "
                                f"lti_reduce_torch.selection.SelectionMethod, got {select!r}")
