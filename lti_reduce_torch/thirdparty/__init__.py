"""Adapters for SSM layers published on PyPI, registered when their package is importable.

=====================  ==========================  ===============================
package (PyPI)         layer class                 adapter
=====================  ==========================  ===============================
``lru-pytorch``        ``LRU_pytorch.LRU``         :class:`LRUPytorchAdapter`
``s5-pytorch``         ``s5.S5SSM`` (in ``s5.S5``)  :class:`S5SSMAdapter`
=====================  ==========================  ===============================

Importing :mod:`lti_reduce_torch` calls :func:`register_available`: a package that is not
installed is skipped (no hard dependency); one that is installed but fails to import is
skipped with a :class:`ThirdPartyImportWarning`. Both layers read the state after the
update; the adapters reduce ``H = (diag(lambda), B, C, D)`` as the built-in ones do, so the
layer's output error is bounded by the same ``2 * sum`` of truncated HSVs.

For selective (input-dependent) SSMs see :mod:`lti_reduce_torch.mamba`.
"""

import importlib
import importlib.util
import warnings

from .._registry import register_adapter

__all__ = ["register_available", "registered_packages", "ThirdPartyImportWarning"]

#: package import name -> (adapter module, adapter class name, layer class path)
_PACKAGES = {
    "LRU_pytorch": ("lru_pytorch", "LRUPytorchAdapter", ("LRU_pytorch", "LRU")),
    "s5": ("s5_pytorch", "S5SSMAdapter", ("s5", "S5SSM")),
}
_REGISTERED = {}
_JIT_DEPRECATION = r"`torch\.jit\.script` is deprecated"


class ThirdPartyImportWarning(ImportWarning):
    """An installed third-party SSM package failed to import; its adapter is not registered."""


def register_available():
    """Register the adapter of every supported package that can be imported.

    Returns
    -------
    dict of str to type
        ``{package import name: layer class}`` of the registered adapters.
    """
    for package, (module_name, adapter_name, (layer_module, layer_name)) in _PACKAGES.items():
        if package in _REGISTERED or importlib.util.find_spec(package) is None:
            continue
        try:
            with warnings.catch_warnings():
                # s5-pytorch decorates a function with torch.jit.script at import, which torch
                # deprecates: the package's warning, not the user's, so it is not passed on
                warnings.filterwarnings("ignore", message=_JIT_DEPRECATION, category=DeprecationWarning)
                adapter_module = importlib.import_module(f"{__name__}.{module_name}")
                layer_cls = getattr(importlib.import_module(layer_module), layer_name)
        except (ImportError, AttributeError) as exc:
            warnings.warn(f"lti_reduce_torch: {package!r} is installed but its layer could not be imported "
                          f"({type(exc).__name__}: {exc}); its adapter is not registered",
                          ThirdPartyImportWarning, stacklevel=2)
            continue
        register_adapter(layer_cls, getattr(adapter_module, adapter_name)())
        _REGISTERED[package] = layer_cls
    return dict(_REGISTERED)


def registered_packages():
    """``{package import name: layer class}`` of the third-party adapters registered so far."""
    return dict(_REGISTERED)
