"""lti_reduce: exact model order reduction of linear time-invariant systems."""

from ._errors import *  # noqa: F401,F403
from ._errors import __all__ as _errors_all
from ._statespace import StateSpace, DiagonalStateSpace

__version__ = "0.1.0"
__all__ = list(_errors_all) + ["StateSpace", "DiagonalStateSpace"]
from ._gramians import gramian, gram
from ._order import select_order, error_bound
from ._order import check_criterion, check_order, choose_order, Criterion, OrderChoice, CriterionTypeError
from ._balanced import (BalancedTruncationResult, HankelFactors, hankel_factors, hankel_singular_values,
                        hsvd, balanced_truncation, balred)

__all__ += ["gramian", "gram", "select_order", "error_bound", "BalancedTruncationResult", "HankelFactors",
            "hankel_factors", "hankel_singular_values", "hsvd", "balanced_truncation", "balred"]
__all__ += ["check_criterion", "check_order", "choose_order", "Criterion", "OrderChoice", "CriterionTypeError"]
from ._norms import HinfNorm, hinf_norm, h2_norm
from ._balanced import hankel_norm

__all__ += ["HinfNorm", "hinf_norm", "h2_norm", "hankel_norm"]
# real-output reduction (issue 12 item 3, i12real)
from ._real_output import (NotDiagonalizableError, RealOutputReduction, real_output_system, complex_modal_form,
                           real_output_balanced_truncation)

__all__ += ["NotDiagonalizableError", "RealOutputReduction", "real_output_system", "complex_modal_form",
            "real_output_balanced_truncation"]
