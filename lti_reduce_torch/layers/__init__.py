"""State-space layers with reduction adapters: :class:`LRU`, :class:`S5`, :class:`S4D`, :class:`DenseLTI`.

Every layer maps a real input ``u`` of shape (batch, length, h) to ``y`` of the same shape,
from a zero initial state. The layers know nothing of reduction: their adapters
(:mod:`lti_reduce_torch.adapters`) are registered by ``lti_reduce_torch/__init__.py``, which
Python runs before any of its subpackages.
"""

from .lru import LRU
from .s5 import S5
from .s4d import S4D
from .dense import DenseLTI
from ._method import auto_method

__all__ = ["LRU", "S5", "S4D", "DenseLTI", "auto_method"]
