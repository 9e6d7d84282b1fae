"""Exact in-memory backups that undo a failed in-place operation on a model or optimizer.

Used by the checkpoint loaders, which must leave model and optimizer bit-identical when
they fail: ``Module.load_state_dict`` copies every matching tensor *before* it reports
unexpected keys, and ``Optimizer.load_state_dict`` replaces ``param_groups`` and ``state``.
"""

from __future__ import annotations

import torch

from .optim import forget_cached_sizes

__all__ = ["ModuleBackup", "OptimizerBackup"]


class ModuleBackup:
    """Structure (parameter, buffer and child-module slots) and values of a module tree.

    Costs one copy of the parameters and buffers.
    """

    def __init__(self, model):
        self.modules = []
        for module in model.modules():
            self.modules.append((module, dict(module._parameters), dict(module._buffers), dict(module._modules),
                                 set(module._non_persistent_buffers_set)))
        self.values = [(t, t.detach().clone())
                       for _, params, buffers, _, _ in self.modules
                       for t in (*params.values(), *buffers.values()) if t is not None]

    @torch.no_grad()
    def restore(self, clear_grads=False):
        """Put every slot's original object back and its original value into it.

        With ``clear_grads`` the parameters' ``.grad`` are set to None (a rollback: the
        gradients belong to the state being abandoned).
        """
        for module, params, buffers, children, non_persistent in self.modules:
            for slots, saved in ((module._parameters, params), (module._buffers, buffers),
                                 (module._modules, children)):
                # identity, not ==: comparing tensors would compare their values
                if list(slots) != list(saved) or any(slots[k] is not v for k, v in saved.items()):
                    slots.clear()
                    slots.update(saved)
            module._non_persistent_buffers_set.clear()
            module._non_persistent_buffers_set.update(non_persistent)
        for tensor, value in self.values:
            if tensor.shape != value.shape or tensor.dtype != value.dtype or tensor.device != value.device:
                tensor.data = value
            else:
                tensor.copy_(value)
            if clear_grads and isinstance(tensor, torch.nn.Parameter):
                tensor.grad = None


class OptimizerBackup:
    """``param_groups`` (list, group dicts, their contents) and ``state`` of an optimizer.

    Keeps references, not copies: neither ``rebind_optimizer_`` nor
    ``Optimizer.load_state_dict`` writes into existing state tensors, they replace them.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.group_list = optimizer.param_groups
        self.groups = [(group, dict(group), list(group["params"])) for group in optimizer.param_groups]
        self.state = optimizer.state
        self.entries = {p: (st, dict(st)) for p, st in optimizer.state.items()}

    def restore(self):
        opt = self.optimizer
        opt.param_groups = self.group_list
        for group, content, params in self.groups:
            group.clear()
            group.update(content)
            group["params"][:] = params   # the same list object (LBFGS keeps a reference to it)
        opt.state = self.state
        self.state.clear()
        for p, (st, content) in self.entries.items():
            st.clear()
            st.update(content)
            self.state[p] = st
        forget_cached_sizes(opt)
