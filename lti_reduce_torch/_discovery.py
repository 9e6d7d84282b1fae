"""Which submodules of a model have an adapter: :func:`reducible_layers`, :func:`state_sizes`."""

from collections.abc import Iterable

from torch import nn

from lti_reduce import InvalidParameterError
from ._registry import get_adapter, is_supported

__all__ = ["reducible_layers", "state_sizes"]


def reducible_layers(model, layers=None):
    """``[(qualified name, module)]`` of the submodules that have a registered adapter.

    Parameters
    ----------
    model : torch.nn.Module
    layers : iterable of str, optional
        Restrict to these qualified names (each must have an adapter).

    Returns
    -------
    list of (str, torch.nn.Module), in ``model.named_modules()`` order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if layers is None:
        return [(name, m) for name, m in model.named_modules() if is_supported(m)]
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, Iterable):
        raise TypeError(f"layers must be None or an iterable of qualified module names, "
                        f"got {type(layers).__name__}")
    wanted = list(layers)
    for name in wanted:
        if not isinstance(name, str):
            raise TypeError(f"layers must hold qualified module names (str), got {name!r}")
    modules = dict(model.named_modules())
    for name in wanted:
        if name not in modules:
            candidates = [n for n, m in modules.items() if is_supported(m)]
            raise InvalidParameterError(f"layers: the model has no submodule named {name!r}; "
                                        f"reducible layers: {candidates}")
        get_adapter(modules[name])  # UnsupportedLayerError (a TypeError) names the class
    wanted = set(wanted)
    return [(name, m) for name, m in modules.items() if name in wanted]


def state_sizes(model, layers=None):
    """``{qualified name: state dimension n}`` of the model's registered layers."""
    return {name: int(get_adapter(m).state_size(m)) for name, m in reducible_layers(model, layers)}
