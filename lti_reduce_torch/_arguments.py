"""Checks of the non-criterion arguments shared by ``reduce_``, ``Compressor`` and checkpoints.

The order criterion itself (``order``, ``energy``, ``tol``) is checked by the core,
:func:`lti_reduce.check_criterion`.
"""

import math
import os
import numbers
from collections.abc import Iterable

import torch

from lti_reduce import InvalidParameterError

__all__ = ["as_optimizers", "check_min_ratio", "check_horizon", "check_generator", "check_log"]


def as_optimizers(optimizers):
    """``optimizers`` as a list: None -> [], one optimizer -> [it], an iterable -> its items.

    Raises
    ------
    TypeError
        Something that is not a ``torch.optim.Optimizer`` (the message names its type).
    """
    if optimizers is None:
        return []
    if isinstance(optimizers, torch.optim.Optimizer):
        return [optimizers]
    if not isinstance(optimizers, Iterable):
        raise TypeError(f"optimizers must be a torch.optim.Optimizer or an iterable of them, "
                        f"got {type(optimizers).__name__}")
    out = list(optimizers)
    for opt in out:
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"optimizers must hold torch.optim.Optimizer objects, got {type(opt).__name__}")
    return out


def check_min_ratio(min_ratio):
    """None, or a float in (0, 1] (reduce a layer only if ``new_n < min_ratio * n``)."""
    if min_ratio is None:
        return None
    if isinstance(min_ratio, bool) or not isinstance(min_ratio, numbers.Real) or not 0 < float(min_ratio) <= 1:
        raise InvalidParameterError(f"min_ratio must be None or a number in (0, 1], got {min_ratio!r}")
    return float(min_ratio)


def check_horizon(horizon):
    """None (infinite horizon) or a finite number > 0, returned unchanged."""
    if horizon is not None:
        if isinstance(horizon, bool) or not isinstance(horizon, numbers.Real) \
                or not math.isfinite(float(horizon)) or float(horizon) <= 0:
            raise InvalidParameterError(f"horizon must be None (infinite) or a positive number, got {horizon!r}")
    return horizon


def check_generator(generator, required_by=None):
    """None or a ``torch.Generator``; ``required_by`` (a selection name) makes it mandatory."""
    if required_by is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"select={required_by!r} needs generator=torch.Generator (seeded) so that the choice "
                        f"is reproducible, got {generator!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")
    return generator


def check_log(log):
    """None, a path (str or os.PathLike) or a file object with ``write()``, returned unchanged."""
    if log is not None and not (isinstance(log, (str, os.PathLike)) or hasattr(log, "write")):
        raise TypeError(f"log must be None, a path or a file object with write(), got {type(log).__name__}")
    return log
