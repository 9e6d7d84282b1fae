"""lti_reduce: exact model order reduction of linear time-invariant systems."""

from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _errors_all
from ._statespace import StateSpace, DiagonalStateSpace
from ._gramians import gramian
from ._order import (select_order, error_bound, check_criterion, check_order, choose_order, Criterion, OrderChoice,
                     CriterionTypeError)
from ._balanced import (BalancedTruncationResult, HankelFactors, hankel_factors, hankel_singular_values,
                        balanced_truncation, rounding_allowance)
from ._norms import HinfNorm, hinf_norm, h2_norm, hankel_norm
from ._descriptor import SparseStateSpace, SingularDescriptorError
from ._lowrank import LowRankGramian, lowrank_gramian_factor, lowrank_gramian_factors, ConvergenceError
from ._lowrank_bt import (LowRankBalancedTruncationResult, lowrank_balanced_truncation,
                          lowrank_hankel_singular_values, sampled_error)
from ._real_output import (NotDiagonalizableError, RealOutputReduction, real_output_system, complex_modal_form,
                           real_output_balanced_truncation)
from ._control import balred, hsvd, gram
from ._io import SystemFile, SystemFileError, load_system, load_system_file, save_system

__version__ = "0.1.0"
__all__ = list(_errors_all) + [
    "StateSpace", "DiagonalStateSpace",
    "gramian",
    "select_order", "error_bound", "check_criterion", "check_order", "choose_order", "Criterion", "OrderChoice",
    "CriterionTypeError",
    "BalancedTruncationResult", "HankelFactors", "hankel_factors", "hankel_singular_values",
    "balanced_truncation", "rounding_allowance",
    "HinfNorm", "hinf_norm", "h2_norm", "hankel_norm",
    # large sparse and descriptor systems: low-rank Gramian factors and balanced truncation
    "SparseStateSpace", "SingularDescriptorError", "LowRankGramian", "lowrank_gramian_factor",
    "lowrank_gramian_factors", "ConvergenceError", "LowRankBalancedTruncationResult", "lowrank_balanced_truncation",
    "lowrank_hankel_singular_values", "sampled_error",
    # real-output reduction: the real 2n-state map y = Re(C x) + D u of a complex system
    "NotDiagonalizableError", "RealOutputReduction", "real_output_system", "complex_modal_form",
    "real_output_balanced_truncation",
    # python-control compatible calls (same names, same semantics) and system files
    "balred", "hsvd", "gram", "SystemFile", "SystemFileError", "load_system", "load_system_file", "save_system",
]
