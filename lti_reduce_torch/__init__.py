"""lti_reduce_torch: in-training compression of PyTorch state-space layers.

Importing the package registers the adapters of the built-in layers
(:mod:`lti_reduce_torch.layers`); :func:`register_adapter` adds your own.
"""

from ._registry import (SSMAdapter, register_adapter, unregister_adapter, get_adapter,
                        registered_layer_types, UnsupportedLayerError, ReductionRefusedError)
from . import adapters as _adapters  # noqa: F401  (registers the built-in layers)
from .adapters import LRUAdapter, S5Adapter, S4DAdapter, DenseLTIAdapter
from .layers import LRU, S5, S4D, DenseLTI
from .reduce import reduce_, ReductionReport, LayerReduction, reducible_layers, state_sizes
from .optim import rebind_optimizer_, RebindSummary
from .schedule import Compressor, CompressorWarning
from .checkpoint import load_reduced_state_dict_, ReducedLoadResult, save_checkpoint, load_checkpoint

__all__ = ["SSMAdapter", "register_adapter", "unregister_adapter", "get_adapter", "registered_layer_types",
           "UnsupportedLayerError", "ReductionRefusedError", "LRUAdapter", "S5Adapter", "S4DAdapter",
           "DenseLTIAdapter", "LRU", "S5", "S4D", "DenseLTI", "reduce_", "ReductionReport", "LayerReduction",
           "reducible_layers", "state_sizes", "rebind_optimizer_", "RebindSummary", "Compressor",
           "CompressorWarning", "load_reduced_state_dict_", "ReducedLoadResult", "save_checkpoint",
           "load_checkpoint"]

# --- third-party layers (issue 10, i10): adapters registered when their package is importable
from . import thirdparty  # noqa: E402
thirdparty.register_available()
