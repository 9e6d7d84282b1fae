"""lti_reduce_torch: in-training compression of PyTorch state-space layers."""

from ._registry import (SSMAdapter, register_adapter, unregister_adapter, get_adapter,  # noqa: F401
                        registered_layer_types, UnsupportedLayerError, ReductionRefusedError)
