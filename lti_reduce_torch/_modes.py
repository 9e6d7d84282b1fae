"""Refuse in-place model surgery under ``torch.inference_mode()``.

Tensors created inside ``torch.inference_mode()`` are *inference tensors*: they cannot
be saved for backward nor updated in place outside that mode. New parameters built
there would make the next training step fail, long after the reduction, so the
operations that replace parameters (:func:`~lti_reduce_torch.reduce.reduce_`, the
checkpoint loaders) refuse to run there, before changing anything. ``torch.no_grad()``
is fine: it creates normal tensors.
"""

from __future__ import annotations

import torch

__all__ = ["InferenceModeError", "refuse_inference_mode"]


class InferenceModeError(RuntimeError):
    """An operation that replaces parameters was called inside ``torch.inference_mode()``."""


def refuse_inference_mode(operation):
    """Raise :class:`InferenceModeError` if ``torch.inference_mode()`` is active.

    Parameters
    ----------
    operation : str
        Name of the caller, for the message (e.g. ``'reduce_'``).

    Raises
    ------
    InferenceModeError (RuntimeError)
        Inside ``torch.inference_mode()`` (nothing has been changed yet).
    """
    if torch.is_inference_mode_enabled():
        raise InferenceModeError(
            f"{operation} was called inside torch.inference_mode(): the parameters it builds would be "
            "inference tensors, which the next training step cannot update; nothing was changed. Call it "
            "outside inference mode (torch.no_grad() is fine), or inside "
            "torch.inference_mode(False)")
