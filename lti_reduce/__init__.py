"""lti_reduce: exact model order reduction of linear time-invariant systems."""

from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _errors_all
from ._statespace import StateSpace, DiagonalStateSpace
from ._gramians import gramian
from ._order import select_order, error_bound
from ._balanced import (BalancedTruncationResult, HankelFactors, hankel_factors, hankel_singular_values,
                        balanced_truncation, rounding_allowance)
from ._norms import HinfNorm, hinf_norm, h2_norm, hankel_norm
# python-control compatible calls and system files (issue 12)
from ._control import balred, hsvd, gram
from ._io import SystemFile, SystemFileError, load_system, load_system_file, save_system

__version__ = "0.1.0"
__all__ = list(_errors_all) + [
    "StateSpace", "DiagonalStateSpace",
    "gramian",
    "select_order", "error_bound",
    "BalancedTruncationResult", "HankelFactors", "hankel_factors", "hankel_singular_values",
    "balanced_truncation", "rounding_allowance",
    "HinfNorm", "hinf_norm", "h2_norm", "hankel_norm",
    # issue 12
    "balred", "hsvd", "gram", "SystemFile", "SystemFileError", "load_system", "load_system_file", "save_system",
]
