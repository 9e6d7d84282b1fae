"""Shared machinery of the built-in layers: options, parameter declaration, state size, ``mode='auto'``.

:class:`SSMLayer` holds what every layer has (h channels, ``mode``, ``readout``, the state
size read from one parameter, the ``'auto'`` method choice, ``extra_repr``);
:class:`DiagonalMIMOLayer` adds what LRU and S5 share (the complex ``B``, ``C`` and the
diagonal ``D`` parameters, their initialisation, and the forward pass through
``discrete()``).
"""

import math

import torch
from torch import nn

from . import _scan
from ._method import auto_method

__all__ = ["SSMLayer", "DiagonalMIMOLayer"]


class SSMLayer(nn.Module):
    """Base of the built-in state-space layers.

    Subclasses set :attr:`kind` (``'mimo'``, ``'channel'`` or ``'dense'``, for
    :func:`~lti_reduce_torch.layers.auto_method`), :attr:`modes`, :attr:`state_parameter`
    and :attr:`state_axis` (the parameter and axis whose length is the state size n) and
    :attr:`repr_options` (attribute names shown by ``repr`` besides h, n, mode, readout).

    Parameters
    ----------
    h : int
        Input/output channels.
    mode : str
        One of :attr:`modes`.
    readout : {'post', 'pre'}
    chunk : int, optional
        Chunk length of ``mode='chunked'`` (layers that have it).
    """

    kind = None
    modes = ("auto", "sequential", "chunked", "assoc", "fft")
    state_parameter = None
    state_axis = 0
    repr_options = ()

    def __init__(self, h, *, mode, readout, chunk=None):
        super().__init__()
        self.h = int(h)
        self.mode = _scan.check_option("mode", mode, self.modes)
        self.readout = _scan.check_option("readout", readout, _scan.READOUTS)
        if chunk is not None:
            self.chunk = int(chunk)

    def declare_parameters(self, shapes, no_weight_decay=(), *, device=None, dtype=None):
        """Register uninitialised parameters ``{name: shape}`` in order; mark some ``_no_weight_decay``."""
        for name, shape in shapes.items():
            setattr(self, name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        for name in no_weight_decay:
            getattr(self, name)._no_weight_decay = True

    @property
    def n(self):
        """State size (derived from the parameters, so it follows in-place reductions)."""
        return getattr(self, self.state_parameter).shape[self.state_axis]

    def method(self, length, batch=1):
        """The evaluation method ``mode`` resolves to for this input size."""
        if self.mode != "auto":
            return self.mode
        device = getattr(self, self.state_parameter).device
        return auto_method(self.kind, self.h, self.n, length, batch, device)

    def check_input(self, u):
        """The sequence length of ``u`` (batch, L, h), checked against h and the parameters' dtype."""
        return _scan.check_input(u, self.h, getattr(self, self.state_parameter).dtype)

    def extra_repr(self):
        options = "".join(f", {name}={getattr(self, name)!r}" for name in self.repr_options)
        return f"h={self.h}, n={self.n}{options}, mode={self.mode!r}, readout={self.readout!r}"


class DiagonalMIMOLayer(SSMLayer):
    """Base of the complex diagonal MIMO layers (LRU, S5).

    Parameters: the per-mode ones named by the subclass (n,), then ``B_re, B_im`` (n, h),
    ``C_re, C_im`` (h, n), ``D`` (h,). The subclass defines ``discrete(params=None)``
    returning ``(log_lambda (n,), B (n, h), C (h, n))`` complex.
    """

    kind = "mimo"

    def declare_mimo_parameters(self, n, per_mode, *, device=None, dtype=None):
        """Per-mode parameters (n,) (no weight decay), then B, C, D."""
        h = self.h
        shapes = {name: (n,) for name in per_mode}
        shapes.update(B_re=(n, h), B_im=(n, h), C_re=(h, n), C_im=(h, n), D=(h,))
        self.declare_parameters(shapes, no_weight_decay=per_mode, device=device, dtype=dtype)

    @torch.no_grad()
    def reset_input_output(self):
        """``B_re, B_im ~ N(0, 1/(2h))``, ``C_re, C_im ~ N(0, 1/n)``, ``D ~ N(0, 1)`` (as published)."""
        n, h = self.n, self.h
        self.B_re.normal_(0.0, 1.0 / math.sqrt(2 * h))
        self.B_im.normal_(0.0, 1.0 / math.sqrt(2 * h))
        self.C_re.normal_(0.0, 1.0 / math.sqrt(max(n, 1)))
        self.C_im.normal_(0.0, 1.0 / math.sqrt(max(n, 1)))
        self.D.normal_(0.0, 1.0)

    def forward(self, u):
        """``u`` (batch, L, h) real -> ``y`` (batch, L, h)."""
        L = self.check_input(u)
        log_lam, B, C = self.discrete()
        return _scan.mimo_diag_forward(u, log_lam, B, C, self.D, self.method(L, u.shape[0]),
                                       self.readout, self.chunk)
