"""Keep optimizers valid when parameters are replaced by reduced ones.

A reduction replaces some ``nn.Parameter`` objects of a model by new ones of another
shape. :func:`rebind_optimizer_` puts the new parameters into the optimizer's existing
``param_groups`` (same group, same position), so LR schedulers, gradient scalers and
other wrappers that hold the optimizer or its group dicts stay valid.

Optimizer state is handled conservatively:

* parameters that are not replaced keep their state untouched (the same tensor objects);
* a replaced parameter keeps a transformed state only where the caller supplies an exact
  map (for example: the reduced parameter keeps a subset of the old modal coordinates, so
  the per-element moments are indexed the same way and the step count is kept);
* otherwise its state is removed, so the optimizer restarts that parameter from scratch
  (Adam: step 0 with zero moments). Keeping an old step count with zeroed or re-sliced
  moments would give over-sized or meaningless updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

__all__ = ["rebind_optimizer_", "RebindSummary"]

#: State keys that hold a count rather than a per-element moment; kept as they are
#: when a state is transformed by an exact map.
_COUNT_KEYS = frozenset({"step"})


@dataclass(frozen=True)
class RebindSummary:
    """What :func:`rebind_optimizer_` did to one optimizer.

    Attributes
    ----------
    replaced : int
        Parameters replaced inside ``param_groups``.
    mapped : int
        Replaced parameters whose state was carried over through an exact map.
    dropped : int
        Replaced parameters whose state was removed (restart from scratch).
    """

    replaced: int
    mapped: int
    dropped: int


def _check_optimizer(optimizer, name="optimizer"):
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"{name} must be a torch.optim.Optimizer, got {type(optimizer).__name__}")


def _map_state(old, new, state, fmap):
    """Transformed state dict for ``new`` or None when no exact transformation exists."""
    if fmap is None:
        return None
    out = {}
    for key, value in state.items():
        if key in _COUNT_KEYS or not isinstance(value, torch.Tensor):
            out[key] = value
        elif tuple(value.shape) == tuple(old.shape):
            mapped = fmap(value)
            if not isinstance(mapped, torch.Tensor) or tuple(mapped.shape) != tuple(new.shape):
                raise ValueError(
                    f"state_maps: the map for a parameter of shape {tuple(old.shape)} turned state "
                    f"{key!r} into {getattr(mapped, 'shape', type(mapped).__name__)}; expected a tensor "
                    f"of the new parameter's shape {tuple(new.shape)}")
            out[key] = mapped.detach().clone(memory_format=torch.contiguous_format)
        else:
            # A state tensor that is not per-element (e.g. a factored second moment):
            # no exact map is known, so the whole state goes.
            return None
    return out


class _RebindPlan:
    """Everything :func:`rebind_optimizer_` will change, computed before anything changes."""

    def __init__(self, optimizer, replacements, state_maps):
        self.optimizer = optimizer
        self.slots = []        # (group, index, old, new)
        self.new_states = {}   # new -> state dict (mapped) ; absent -> dropped
        self.old_states = {}   # old -> state dict as it was (for revert)
        mapped = dropped = 0
        live = set()
        for group in optimizer.param_groups:
            for p in group["params"]:
                live.add(id(p))
        for group in optimizer.param_groups:
            for index, p in enumerate(group["params"]):
                new = replacements.get(p)
                if new is None:
                    continue
                if id(new) in live:
                    raise ValueError("replacements: a new parameter is already in the optimizer's "
                                     "param_groups; each parameter may appear only once")
                self.slots.append((group, index, p, new))
                if p in optimizer.state:
                    state = optimizer.state[p]
                    self.old_states[p] = state
                    new_state = _map_state(p, new, state, state_maps.get(p))
                    if new_state is None:
                        dropped += 1
                    else:
                        self.new_states[new] = new_state
                        mapped += 1
        self.summary = RebindSummary(replaced=len(self.slots), mapped=mapped, dropped=dropped)

    def commit(self):
        state = self.optimizer.state
        for group, index, old, new in self.slots:
            group["params"][index] = new
            state.pop(old, None)
            if new in self.new_states:
                state[new] = self.new_states[new]

    def revert(self):
        state = self.optimizer.state
        for group, index, old, new in self.slots:
            group["params"][index] = old
            state.pop(new, None)
            if old in self.old_states:
                state[old] = self.old_states[old]


def _validate_replacements(replacements, state_maps):
    if not isinstance(replacements, Mapping):
        raise TypeError(f"replacements must be a mapping old parameter -> new parameter, "
                        f"got {type(replacements).__name__}")
    for old, new in replacements.items():
        if not isinstance(old, torch.Tensor) or not isinstance(new, torch.nn.Parameter):
            raise TypeError("replacements must map torch.nn.Parameter -> torch.nn.Parameter, got "
                            f"{type(old).__name__} -> {type(new).__name__}")
    if state_maps is None:
        return {}
    if not isinstance(state_maps, Mapping):
        raise TypeError(f"state_maps must be None or a mapping old parameter -> callable, "
                        f"got {type(state_maps).__name__}")
    for old, fmap in state_maps.items():
        if fmap is not None and not callable(fmap):
            raise TypeError(f"state_maps values must be callables (tensor -> tensor) or None, "
                            f"got {type(fmap).__name__}")
    return state_maps


def plan_rebind(optimizer, replacements, state_maps=None):
    """A checked, not yet applied rebind of ``optimizer`` (``plan.commit()``, ``plan.revert()``).

    Used by :func:`~lti_reduce_torch.reduce_` to plan every optimizer change before the
    first parameter swap; arguments as for :func:`rebind_optimizer_`.
    """
    _check_optimizer(optimizer)
    state_maps = _validate_replacements(replacements, state_maps)
    return _RebindPlan(optimizer, replacements, state_maps)


def rebind_optimizer_(optimizer, replacements: Mapping, state_maps: Mapping | None = None) -> RebindSummary:
    """Replace parameters inside an optimizer, in place.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Any optimizer built on ``param_groups`` / ``state`` (SGD, Adam, AdamW, ...).
    replacements : mapping of torch.nn.Parameter to torch.nn.Parameter
        Old parameter -> new parameter. Old parameters that the optimizer does not hold
        are ignored, so the same mapping can be applied to several optimizers.
    state_maps : mapping of torch.nn.Parameter to callable, optional
        Old parameter -> exact map ``f(tensor) -> tensor`` from a tensor shaped like the
        old parameter to one shaped like the new parameter (the same map that turned the
        old value into the new one, e.g. ``lambda t: t.index_select(0, keep)``). State
        tensors of the old parameter's shape are mapped with it; the ``step`` count and
        non-tensor entries are kept. Without a map, or when the state holds a tensor of
        another shape (a non-element-wise statistic), the state is removed.

    Returns
    -------
    RebindSummary

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a new parameter is already in the optimizer, or a map returns a wrong shape.
        Nothing is changed in that case.

    Notes
    -----
    Each new parameter takes the old one's place in the same group at the same position,
    so group hyper-parameters (``lr``, ``weight_decay``, ...) and objects holding the
    groups (LR schedulers) remain valid. State of parameters not in ``replacements`` is
    kept bit for bit (the very same tensors).
    """
    plan = plan_rebind(optimizer, replacements, state_maps)
    plan.commit()
    return plan.summary
