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

That is only valid for optimizers whose state is one lazily created dict per parameter in
``optimizer.state``. Each optimizer class therefore has a *rebind policy*
(:func:`optimizer_rebind_policy`):

``'per_parameter'``
    All of ``torch.optim`` except LBFGS (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta,
    Adamax, NAdam, RAdam, ASGD, Rprop, SparseAdam, Adafactor, Muon): each creates a
    parameter's state at its first step when the state is empty (checked in torch 2.13).
    Adagrad also creates it at construction, and older torch releases rely on that: a
    restarted Adagrad parameter gets that initial state (``step`` 0, ``sum`` filled with
    ``initial_accumulator_value``).
``'reset'``
    LBFGS: its history (``d``, ``old_dirs``, ``prev_flat_grad``, ...) is a set of flat
    vectors over *all* parameters, stored under the first parameter. When any of its
    parameters is replaced, the whole history is cleared (and its cached total parameter
    count) and the next step starts a new quasi-Newton history (a steepest-descent first
    step, as after construction).
``None``
    Any other class (third-party optimizers, ``ZeroRedundancyOptimizer``, your own):
    the library cannot know where it keeps state, so a rebind that would replace one of
    its parameters raises :class:`UnsupportedOptimizerError` before anything changes.
    Declare the policy of your class with :func:`register_optimizer_policy`.

A subclass gets the policy of its nearest registered base class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch

__all__ = ["rebind_optimizer_", "RebindSummary", "UnsupportedOptimizerError", "register_optimizer_policy",
           "optimizer_rebind_policy", "forget_cached_sizes", "check_rebindable"]

#: State keys that hold a count rather than a per-element moment; kept as they are
#: when a state is transformed by an exact map.
_COUNT_KEYS = frozenset({"step"})

_POLICIES = ("per_parameter", "reset")

#: class -> policy; torch 2.13's optimizers, checked one by one: all but LBFGS create a
#: parameter's state lazily (``if len(state) == 0`` / ``state.get``) in their step.
_REBIND_POLICY = {cls: "per_parameter" for cls in (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad,
    torch.optim.Adadelta, torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam, torch.optim.ASGD,
    torch.optim.Rprop, torch.optim.SparseAdam)}
for _name in ("Adafactor", "Muon"):      # newer torch releases only
    if hasattr(torch.optim, _name):
        _REBIND_POLICY[getattr(torch.optim, _name)] = "per_parameter"
_REBIND_POLICY[torch.optim.LBFGS] = "reset"


class UnsupportedOptimizerError(TypeError):
    """An optimizer's state cannot be rebound to replaced parameters.

    Raised before anything is changed; the message names the optimizer class and how to
    declare its policy with :func:`register_optimizer_policy`.
    """


def register_optimizer_policy(optimizer_class, policy):
    """Declare how an optimizer class keeps its state, so that reductions can rebind it.

    Parameters
    ----------
    optimizer_class : type
        A subclass of ``torch.optim.Optimizer``.
    policy : {'per_parameter', 'reset'} or None
        ``'per_parameter'``: all state lives in ``optimizer.state[p]`` (one dict per
        parameter, element-wise tensors and counts) and an empty dict is initialised at
        the next step. ``'reset'``: replacing any parameter clears the optimizer's whole
        state. None removes a registration (the class then gets its bases' policy).

    Returns
    -------
    str or None
        The previous registration of exactly this class.

    Examples
    --------
    >>> import torch
    >>> from lti_reduce_torch import register_optimizer_policy, optimizer_rebind_policy
    >>> class SignSGD(torch.optim.SGD):
    ...     pass
    >>> optimizer_rebind_policy(SignSGD)      # inherited from SGD
    'per_parameter'
    >>> register_optimizer_policy(SignSGD, "reset")
    >>> optimizer_rebind_policy(SignSGD)
    'reset'
    >>> register_optimizer_policy(SignSGD, None)
    'reset'
    """
    if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, torch.optim.Optimizer)):
        raise TypeError(f"optimizer_class must be a subclass of torch.optim.Optimizer, got {optimizer_class!r}")
    if policy is not None and policy not in _POLICIES:
        raise ValueError(f"policy must be one of {_POLICIES} or None, got {policy!r}")
    previous = _REBIND_POLICY.pop(optimizer_class, None)
    if policy is not None:
        _REBIND_POLICY[optimizer_class] = policy
    return previous


def optimizer_rebind_policy(optimizer):
    """Rebind policy (``'per_parameter'``, ``'reset'`` or None) of an optimizer or its class.

    See Also
    --------
    register_optimizer_policy
    """
    cls = optimizer if isinstance(optimizer, type) else type(optimizer)
    for base in cls.__mro__:
        if base in _REBIND_POLICY:
            return _REBIND_POLICY[base]
    return None


def check_rebindable(optimizers, parameters):
    """Raise :class:`UnsupportedOptimizerError` early if a rebind of ``parameters`` would be refused.

    Parameters
    ----------
    optimizers : iterable of torch.optim.Optimizer
    parameters : iterable of torch.nn.Parameter
        Parameters that may be replaced later (e.g. those of the reducible layers).

    Raises
    ------
    UnsupportedOptimizerError (TypeError)
        If an optimizer without a rebind policy holds one of ``parameters``.
    """
    wanted = {id(p) for p in parameters}
    for optimizer in optimizers:
        if optimizer_rebind_policy(optimizer) is None and any(
                id(p) in wanted for group in optimizer.param_groups for p in group["params"]):
            raise _refuse(optimizer)


def _refuse(optimizer):
    cls = type(optimizer)
    return UnsupportedOptimizerError(
        f"optimizer {cls.__module__}.{cls.__qualname__} holds a parameter of a layer to be reduced, but "
        "lti_reduce_torch does not know how it keeps its state, so it cannot rebind it safely; nothing was "
        "changed. If its state is one dict per parameter in optimizer.state, created at the first step "
        f"when empty, call register_optimizer_policy({cls.__qualname__}, 'per_parameter'); if its state "
        f"may simply be cleared, register_optimizer_policy({cls.__qualname__}, 'reset'); otherwise build a "
        "new optimizer after the reduction")


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
        self.caches = {}       # optimizer attributes derived from the parameters' shapes
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
                        initial = _initial_state(optimizer, group, new)
                        if initial is not None:
                            self.new_states[new] = initial
                    else:
                        self.new_states[new] = new_state
                        mapped += 1
        if self.slots:
            policy = optimizer_rebind_policy(optimizer)
            if policy is None:
                raise _refuse(optimizer)
            if policy == "reset":
                # flat history over all parameters: none of it survives a change of shape
                self.old_states = dict(optimizer.state)
                self.new_states = {}
                mapped, dropped = 0, len(self.slots)
                self.caches = _cached_sizes(optimizer)
        self.summary = RebindSummary(replaced=len(self.slots), mapped=mapped, dropped=dropped)

    def commit(self):
        """The new parameters in their slots with their mapped states; shape caches cleared (recomputed)."""
        self._install(new=True, drop=self.old_states, keep=self.new_states, caches=dict.fromkeys(self.caches))

    def revert(self):
        """Undo :meth:`commit`: the old parameters, their states and the caches as they were."""
        self._install(new=False, drop=self.new_states, keep=self.old_states, caches=self.caches)

    def _install(self, new, drop, keep, caches):
        state = self.optimizer.state
        for group, index, old_param, new_param in self.slots:
            group["params"][index] = new_param if new else old_param
        for param in drop:
            state.pop(param, None)
        state.update(keep)
        for attr, value in caches.items():
            setattr(self.optimizer, attr, value)


def _initial_state(optimizer, group, new):
    """The state ``optimizer`` gives a parameter at construction, where it needs one.

    Adagrad creates its per-parameter state (``step``, ``sum`` filled with
    ``initial_accumulator_value``) in ``__init__``, and torch releases before lazy
    initialisation expect it in ``step()``; elsewhere the state starts empty. The state is
    taken from a throwaway Adagrad built on ``new`` alone (torch's own initialisation,
    identical to what a lazily initialising release creates at the first step).
    """
    if not isinstance(optimizer, torch.optim.Adagrad):
        return None
    fresh = torch.optim.Adagrad([new], initial_accumulator_value=group["initial_accumulator_value"],
                                foreach=group.get("foreach"), fused=group.get("fused"))
    return dict(fresh.state[new]) or None


def _cached_sizes(optimizer):
    """LBFGS caches its total parameter count (``_numel_cache``, torch 2.x; None = recompute)."""
    if isinstance(optimizer, torch.optim.LBFGS) and hasattr(optimizer, "_numel_cache"):
        return {"_numel_cache": optimizer._numel_cache}
    return {}


def forget_cached_sizes(optimizer):
    """Make an optimizer recompute what it cached about its parameters' sizes.

    Needed whenever parameters of another shape are put into an optimizer's groups
    (a rebind, a rollback, an undone load); today only LBFGS caches such a thing (its
    total parameter count). Other optimizers are left alone.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    """
    for attr in _cached_sizes(optimizer):
        setattr(optimizer, attr, None)


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
        One with a rebind policy (every ``torch.optim`` class; others through
        :func:`register_optimizer_policy`), or one that holds none of the replaced
        parameters.
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
    UnsupportedOptimizerError (TypeError)
        If the optimizer holds a replaced parameter and its class has no rebind policy.
    ValueError
        If a new parameter is already in the optimizer, or a map returns a wrong shape.
        Nothing is changed in any of these cases.

    Notes
    -----
    Each new parameter takes the old one's place in the same group at the same position,
    so group hyper-parameters (``lr``, ``weight_decay``, ...) and objects holding the
    groups (LR schedulers) remain valid. State of parameters not in ``replacements`` is
    kept bit for bit (the very same tensors), except under the ``'reset'`` policy
    (LBFGS), where replacing any parameter clears the whole state (``mapped == 0``,
    ``dropped == replaced``); see the module notes.
    """
    plan = plan_rebind(optimizer, replacements, state_maps)
    plan.commit()
    return plan.summary
