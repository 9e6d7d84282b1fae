"""lti_reduce_torch: in-training compression of PyTorch state-space layers.

Importing the package registers the adapters of the built-in layers
(:mod:`lti_reduce_torch.layers`); :func:`register_adapter` adds your own.
"""

from ._registry import (SSMAdapter, register_adapter, unregister_adapter, get_adapter,
                        registered_layer_types, UnsupportedLayerError, ReductionRefusedError)
from .adapters import LRUAdapter, S5Adapter, S4DAdapter, DenseLTIAdapter, BUILTIN_ADAPTERS
from .layers import LRU, S5, S4D, DenseLTI
from .reduce import reduce_, ReductionReport, LayerReduction, reducible_layers, state_sizes
from .optim import rebind_optimizer_, RebindSummary
from .schedule import Compressor, CompressorWarning
from .checkpoint import load_reduced_state_dict_, ReducedLoadResult, save_checkpoint, load_checkpoint
from . import toolkit
from .toolkit import (ModalForm, LayerFeedthrough, ReducedMatrices, float64_parameters, single_system,
                      stack_reduced, check_stable_eigenvalues, modal_form, layer_feedthrough,
                      check_nonzero_eigenvalues, probe_points, probed_response, check_same_response,
                      cast_parameters, new_parameter_like, replace_parameter_, DiagonalAdapter)

# The one place where the built-in layers get their adapters: layers never import adapters.
for _layer_type, _adapter_type in BUILTIN_ADAPTERS:
    register_adapter(_layer_type, _adapter_type())
del _layer_type, _adapter_type

__all__ = ["SSMAdapter", "register_adapter", "unregister_adapter", "get_adapter", "registered_layer_types",
           "UnsupportedLayerError", "ReductionRefusedError", "LRUAdapter", "S5Adapter", "S4DAdapter",
           "DenseLTIAdapter", "LRU", "S5", "S4D", "DenseLTI", "reduce_", "ReductionReport", "LayerReduction",
           "reducible_layers", "state_sizes", "rebind_optimizer_", "RebindSummary", "Compressor",
           "CompressorWarning", "load_reduced_state_dict_", "ReducedLoadResult", "save_checkpoint",
           "load_checkpoint", "BUILTIN_ADAPTERS",
           # the public adapter toolkit (lti_reduce_torch.toolkit)
           "ModalForm", "LayerFeedthrough", "ReducedMatrices", "float64_parameters", "single_system",
           "stack_reduced", "check_stable_eigenvalues", "modal_form", "layer_feedthrough",
           "check_nonzero_eigenvalues", "probe_points", "probed_response", "check_same_response",
           "cast_parameters", "new_parameter_like", "replace_parameter_", "DiagonalAdapter"]
