"""Refusing data-parallel wrappers where the plain module is expected.

``reduce_`` or a ``Compressor`` applied to a ``DistributedDataParallel`` (or
``DataParallel``) wrapper would replace parameters inside it and leave the wrapper's
gradient buckets pointing at the old ones: gradients would silently stop being
synchronised. They get the plain module, or
:class:`~lti_reduce_torch.distributed.DistributedCompressor` is used.
"""

from torch import nn

from lti_reduce import LTIReduceError

__all__ = ["UnsupportedWrapperError", "refuse_data_parallel"]


class UnsupportedWrapperError(LTIReduceError, TypeError):
    """The model wrapper or optimizer cannot be rebuilt after a reduction (FSDP, ZeRO, DataParallel)."""


def refuse_data_parallel(model, operation):
    """Raise :class:`UnsupportedWrapperError` if ``model`` is a (Distributed)DataParallel wrapper."""
    from torch.nn.parallel import DistributedDataParallel
    if isinstance(model, (DistributedDataParallel, nn.DataParallel)):
        raise UnsupportedWrapperError(
            f"{operation}: model is a {type(model).__name__} wrapper; reducing inside it would leave its gradient "
            "buckets on the old parameters. Use lti_reduce_torch.distributed.DistributedCompressor(module, ...) "
            "(it rebuilds the wrapper), or pass model.module between runs")
