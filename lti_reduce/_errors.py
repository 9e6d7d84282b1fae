"""Exception and warning types of lti_reduce.

Every exception subclasses a builtin so that ``except ValueError`` keeps working
for users who do not know this package's types.
"""

__all__ = [
    "LTIReduceError",
    "ShapeError",
    "NonFiniteError",
    "UnstableSystemError",
    "InvalidParameterError",
    "ReductionWarning",
    "OrderAdjustedWarning",
]


class LTIReduceError(Exception):
    """Base class of every error raised on purpose by lti_reduce."""


class ShapeError(LTIReduceError, ValueError):
    """An array argument has the wrong shape (the message names the argument)."""


class NonFiniteError(LTIReduceError, ValueError):
    """An array argument holds NaN or infinity."""


class UnstableSystemError(LTIReduceError, ValueError):
    """The system has poles outside the stability region required by the operation."""


class InvalidParameterError(LTIReduceError, ValueError):
    """A scalar or option argument is out of range or conflicts with another one."""


class ReductionWarning(UserWarning):
    """Something about a reduction that the caller should know but that is not an error."""


class OrderAdjustedWarning(ReductionWarning):
    """The requested reduced order was moved (numerical rank, or a pair of equal HSVs)."""
