"""lti_reduce: exact model order reduction of linear time-invariant systems."""

from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _errors_all
from ._statespace import StateSpace, DiagonalStateSpace

__version__ = "0.1.0"
__all__ = list(_errors_all) + ["StateSpace", "DiagonalStateSpace"]
