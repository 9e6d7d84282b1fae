"""S4D (Gu et al. 2022): h independent SISO complex diagonal systems, ZOH-discretised."""

import math

import torch

from . import _scan
from ._base import SSMLayer
from .s5 import continuous_diagonal, discretize, log_uniform_, s4d_lin_

__all__ = ["S4D"]


class S4D(SSMLayer):
    r"""S4D layer: one SISO diagonal SSM of state size n per channel.

    For each channel ``c`` (all with the same n)::

        A_c = -exp(log_neg_A_re[c]) + 1j * A_im[c]              (n,)
        lambda_c = exp(A_c step_c),  Bd_c = (lambda_c - 1) / A_c * (B_re[c] + 1j B_im[c])
        x_c[k] = lambda_c * x_c[k-1] + Bd_c u_c[k],   y_c[k] = Re(C_c . s_c[k]) + D_c u_c[k]

    with ``step_c = exp(log_step[c])`` and ``s_c[k]`` as in
    :class:`~lti_reduce_torch.layers.LRU` (``readout``).

    Parameters
    ----------
    h, n : int
    dt_min, dt_max : float
        Initial per-channel steps, log-uniform on ``[dt_min, dt_max]``.
    mode : {'auto', 'fft', 'sequential', 'chunked', 'assoc'}
        ``'fft'`` forms the (h, L) kernel in closed form and convolves (the S4D way;
        O(h L n) + O(batch h L log L)). The scan modes materialise all states,
        O(batch L h n) memory: use them only for small sizes or on a large device.
    readout, chunk, device, dtype
        As for :class:`~lti_reduce_torch.layers.LRU` (default ``'post'``, as published). For S4D both
        readouts are always representable after a reduction (each channel's D is a scalar).

    Notes
    -----
    Parameters: ``log_neg_A_re, A_im, B_re, B_im, C_re, C_im`` (h, n), ``D`` (h,),
    ``log_step`` (h,). Init: S4D-Lin ``A = -1/2 + i pi k``, ``B = 1``,
    ``C_re, C_im ~ N(0, 1/2)``, ``D ~ N(0, 1)``. ``log_neg_A_re, A_im, log_step`` carry
    ``_no_weight_decay = True``.
    """

    kind = "channel"
    state_parameter = "A_im"
    state_axis = 1

    def __init__(self, h, n, dt_min=1e-3, dt_max=1e-1, *, mode="auto", readout="post", chunk=32,
                 device=None, dtype=None):
        super().__init__(h, mode=mode, readout=readout, chunk=chunk)
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.dt_min, self.dt_max = float(dt_min), float(dt_max)
        h, n = self.h, int(n)
        shapes = {name: (h, n) for name in ("log_neg_A_re", "A_im", "B_re", "B_im", "C_re", "C_im")}
        shapes.update(D=(h,), log_step=(h,))
        self.declare_parameters(shapes, no_weight_decay=("log_neg_A_re", "A_im", "log_step"), device=device,
                                dtype=dtype)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        s4d_lin_(self.log_neg_A_re, self.A_im)
        self.B_re.fill_(1.0)
        self.B_im.zero_()
        self.C_re.normal_(0.0, math.sqrt(0.5))
        self.C_im.normal_(0.0, math.sqrt(0.5))
        self.D.normal_(0.0, 1.0)
        log_uniform_(self.log_step, self.dt_min, self.dt_max)

    def continuous(self, params=None):
        """``(A (h, n), B (h, n), C (h, n))`` complex (differentiable); ``params`` as in
        :meth:`LRU.discrete <lti_reduce_torch.layers.LRU.discrete>`."""
        return continuous_diagonal(_scan.params_of(self, params), "log_neg_A_re", "A_im")

    def discrete(self, params=None):
        """``(log lambda (h, n), Bd (h, n), C (h, n))`` complex (differentiable)."""
        P = _scan.params_of(self, params)
        A, B, C = self.continuous(P)
        log_lam, f = discretize(A, torch.exp(P["log_step"]).unsqueeze(-1), "zoh")
        return log_lam, f * B, C

    def forward(self, u):
        """``u`` (batch, L, h) real -> ``y`` (batch, L, h)."""
        L = self.check_input(u)
        log_lam, B, C = self.discrete()
        method = self.method(L, u.shape[0])
        if method == "fft":
            lags = L if self.readout == "post" else L - 1
            K = _scan.channel_diag_kernel(log_lam, C * B, max(lags, 0))
            if self.readout == "pre":
                K = torch.cat([K.new_zeros((self.h, 1)), K], dim=1)
            y = _scan.causal_conv_fft(u, K, channelwise=True)
        else:
            x = _scan.diag_scan(log_lam, u.unsqueeze(-1) * B, method, self.chunk)   # (b, L, h, n)
            Cr = torch.stack([C.real, -C.imag], dim=-1)                              # (h, n, 2)
            y = (torch.view_as_real(x) * Cr).sum(dim=(-2, -1))
            if self.readout == "pre":
                y = _scan.shift_right(y)
        return y + u * self.D
