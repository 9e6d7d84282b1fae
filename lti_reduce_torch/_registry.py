"""Adapter protocol and registry: how lti_reduce_torch sees a layer class.

One adapter per layer class (like ``torch.ao`` mappings): users register their own with
:func:`register_adapter`. No global mutable state beyond this registry, which is keyed by
class and consulted through the module's MRO.
"""

import abc

__all__ = ["SSMAdapter", "register_adapter", "unregister_adapter", "get_adapter",
           "registered_layer_types", "UnsupportedLayerError", "ReductionRefusedError"]


class UnsupportedLayerError(TypeError):
    """No adapter is registered for the layer's class (the message lists what is)."""


class ReductionRefusedError(ValueError):
    """An adapter cannot represent the reduced system exactly in its parameterisation."""


class SSMAdapter(abc.ABC):
    """Protocol between a layer class and the reduction machinery.

    Every method is a pure function of the module's parameters (no hidden state), so that
    decisions are deterministic and can be taken on one rank and replayed on others.
    """

    @abc.abstractmethod
    def state_size(self, module):
        """Current state dimension n of the layer (int)."""

    @abc.abstractmethod
    def to_lti(self, module):
        """The discrete-time LTI system the layer computes, detached, on the module's device.

        Returns a core :class:`lti_reduce.DiagonalStateSpace` (complex128 torch tensors) or
        :class:`lti_reduce.StateSpace` (float64/complex128 torch tensors).
        """

    def reduction_system(self, module):
        """The system that :func:`~lti_reduce_torch.reduce_` reduces (default: :meth:`to_lti`).

        An adapter may reduce a different realisation whose truncation its layer can
        hold, provided the layer's output error equals that system's (for example
        ``G(z)`` instead of ``z G(z)`` for a layer that reads the state after the update:
        on the unit circle ``|z| = 1``, so every H-infinity bound carries over).
        :meth:`rebuild` receives the reduced version of *this* system.
        """
        return self.to_lti(module)

    @abc.abstractmethod
    def rebuild(self, module, reduced):
        """New parameter values for the module at the reduced size.

        Parameters
        ----------
        module : torch.nn.Module
        reduced : lti_reduce.StateSpace or tuple of lti_reduce.StateSpace
            The reduced discrete-time system (torch tensors, complex128/float64, on the
            module's device): ``result.system`` of the core's balanced truncation of
            ``reduction_system(module)``; a tuple (one per batch element, row-major) when
            ``to_lti`` returned a batched DiagonalStateSpace (e.g. S4D's h channels),
            all of the same order.

        Returns
        -------
        dict[str, torch.Tensor]
            Parameter name (as in ``module.named_parameters()``) -> new value, in the
            parameter's dtype and on its device. Parameters not listed keep their value.

        Raises
        ------
        ReductionRefusedError
            If the reduced system cannot be represented exactly (the message says why).
        """

    def select_states(self, module, keep):
        """New parameter values keeping only modal states ``keep`` (LongTensor of indices).

        Used by the ``smallest`` / ``random`` ablations. Optional for non-modal layers.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support modal state selection")

    @abc.abstractmethod
    def resize_(self, module, n):
        """Replace the state-sized parameters by uninitialised ones of state size n (in place).

        Used to load a reduced checkpoint into a freshly built full-size model.
        """


_REGISTRY = {}


def register_adapter(layer_type, adapter):
    """Register ``adapter`` (an :class:`SSMAdapter` instance) for ``layer_type`` and its subclasses."""
    if not isinstance(layer_type, type):
        raise TypeError(f"layer_type must be a class, got {layer_type!r}")
    if not isinstance(adapter, SSMAdapter):
        raise TypeError(f"adapter must be an SSMAdapter instance, got {type(adapter).__name__}")
    _REGISTRY[layer_type] = adapter
    return adapter


def unregister_adapter(layer_type):
    """Remove the adapter registered for exactly ``layer_type``."""
    _REGISTRY.pop(layer_type, None)


def registered_layer_types():
    """The classes that have an adapter, by qualified name."""
    return tuple(_REGISTRY)


def get_adapter(module):
    """The adapter for ``module`` (first match along its class's MRO)."""
    for cls in type(module).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    names = ", ".join(f"{c.__module__}.{c.__qualname__}" for c in _REGISTRY) or "none"
    raise UnsupportedLayerError(
        f"no adapter registered for {type(module).__module__}.{type(module).__qualname__}; "
        f"registered layer types: {names}. Register one with lti_reduce_torch.register_adapter(cls, adapter).")


def is_supported(module):
    return any(cls in _REGISTRY for cls in type(module).__mro__)
