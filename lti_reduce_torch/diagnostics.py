"""Diagnostics for GPU readiness, usable on the CPU: :class:`HostReadCounter`.

On a GPU every read of a tensor value by the host (``bool(t)``, ``float(t)``, ``int(t)``,
``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()``) waits for the device to finish its
queued work, and every tensor built from Python numbers (``torch.tensor([...])``) is a
blocking host-to-device copy. :class:`HostReadCounter` counts both on any device, so a
reduction event or an adapter can be checked for them without a GPU.
"""

import collections

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["HostReadCounter"]

_READS = frozenset({"__bool__", "__float__", "__int__", "__index__", "__complex__", "item", "tolist", "numpy",
                    "__array__", "cpu"})


class HostReadCounter(TorchFunctionMode):
    """Count host reads of tensor values and uploads of Python data while active.

    Attributes
    ----------
    reads : collections.Counter
        Calls by name (``'__bool__'``, ``'tolist'``, ``'cpu'``, ...); ``.cpu().numpy()``
        counts once (as ``'cpu'``).
    uploads : int
        ``torch.tensor`` / ``torch.as_tensor`` calls on Python data (not on tensors).

    Notes
    -----
    A ``TorchFunctionMode`` sees the Python-level tensor methods on every device, CPU
    included, where these calls cost nothing and a dispatch-level counter would miss
    ``.numpy()``. Reads hidden inside single operators (e.g. LAPACK error checks of
    ``torch.linalg`` on CUDA) are not counted.

    Examples
    --------
    >>> import torch
    >>> from lti_reduce_torch.diagnostics import HostReadCounter
    >>> x = torch.randn(3)
    >>> with HostReadCounter() as counter:
    ...     _ = bool((x > 0).all()), x.tolist()
    >>> counter.total
    2
    """

    def __init__(self):
        super().__init__()
        self.reads = collections.Counter()
        self.uploads = 0
        self._moved = set()

    @property
    def total(self):
        """Number of host reads counted."""
        return sum(self.reads.values())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        out = func(*args, **(kwargs or {}))
        if name in ("numpy", "__array__") and args and id(args[0]) in self._moved:
            self._moved.discard(id(args[0]))          # the .cpu() before it was the transfer
        elif name in _READS:
            self.reads[name] += 1
            if name == "cpu":
                self._moved.add(id(out))
        elif name in ("tensor", "as_tensor") and not (args and isinstance(args[0], torch.Tensor)):
            self.uploads += 1
        return out
