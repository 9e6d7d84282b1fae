"""Applying a planned reduction: check the adapters' values, swap parameters, rebind optimizers.

All or nothing: every new value is checked and every optimizer change planned before the
first parameter is swapped; on any error the swaps and rebinds done so far are undone
and the error propagates.
"""

import time
from collections import defaultdict
from collections.abc import Mapping

import torch

from ._registry import ReductionRefusedError
from .optim import plan_rebind
from .toolkit import new_parameter_like

__all__ = ["selection_map", "check_new_values", "build_new_values", "parameter_locations", "commit"]


def selection_map(old, new, keep):
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


def check_new_values(layer, values):
    owner = f"{type(layer.adapter).__name__} for layer {layer.name!r}"
    if not isinstance(values, Mapping):
        raise TypeError(f"{owner} must return a dict {{parameter name: tensor}}, got {type(values).__name__}")
    params = dict(layer.module.named_parameters())
    checked = {}
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
        checked[pname] = value.detach()
    if not checked:
        return {}
    # every guard value of the layer in one host read (a synchronisation on a GPU)
    finite = [torch.isfinite(v).all() if v.is_floating_point() or v.is_complex() else torch.ones((), dtype=torch.bool,
              device=v.device) for v in checked.values()]
    same = [(v == params[p].detach()).all() if v.shape == params[p].shape
            else torch.zeros((), dtype=torch.bool, device=v.device) for p, v in checked.items()]
    flags = torch.stack([f.to(finite[0].device) for f in finite + same]).tolist()
    count = len(checked)
    for pname, ok in zip(checked, flags[:count]):
        if not ok:
            raise ValueError(f"{owner}: the new value of {pname!r} contains NaN or infinity")
    # an unchanged value keeps the parameter object and its optimizer state
    return {pname: v for (pname, v), unchanged in zip(checked.items(), flags[count:]) if not unchanged}


def parameter_locations(model):
    locations = defaultdict(list)
    for module in model.modules():
        for attr, p in module._parameters.items():
            if p is not None:
                locations[id(p)].append((module, attr))
    return locations


def commit(model, layers, optimizers):
    locations = parameter_locations(model)
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
    plans = [plan_rebind(opt, replacements, state_maps) for opt in optimizers]
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


def build_new_values(plan, method):
    """Each reducing layer's checked new values (adapters may refuse: the layer is then unchanged)."""
    for layer in plan:
        if layer.status != "reduced":
            continue
        t0 = time.perf_counter()
        try:
            values = method.new_values(layer)
        except ReductionRefusedError as exc:
            layer.status = "refused"
            layer.note(f"adapter refused order {layer.new_n}: {exc}")
            layer.new_n, layer.bound = layer.n, 0.0
        else:
            layer.new_values = check_new_values(layer, values)
            if method.modal:
                params = dict(layer.module.named_parameters())
                layer.state_maps = {p: selection_map(params[p], v, layer.keep) for p, v in layer.new_values.items()}
        layer.seconds += time.perf_counter() - t0
        layer.reduced = None
