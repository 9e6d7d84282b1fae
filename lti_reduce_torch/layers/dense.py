"""A real dense discrete-time LTI layer."""

import math

import torch

from . import _scan
from ._base import SSMLayer

__all__ = ["DenseLTI"]


class DenseLTI(SSMLayer):
    r"""Real dense discrete-time LTI system as a layer.

    ``x_k = A x_{k-1} + B u_k``, ``y_k = C s_k + D u_k`` with ``s_k`` as in
    :class:`~lti_reduce_torch.layers.LRU` (``readout``), ``A`` (n, n), ``B`` (n, h),
    ``C`` (h, n), ``D`` (h, h).

    Parameters
    ----------
    h, n : int
    radius : float
        Initial spectral radius: ``A = radius * Q`` with Q a random orthogonal matrix
        (all eigenvalues of modulus ``radius``, ``||A||_2 = radius``).
    mode : {'auto', 'sequential', 'assoc', 'fft'}
        ``'sequential'``: loop over time, O(L n^2) work; ``'assoc'``: doubling with matrix
        powers, O(L log L n^2) work in log2(L) steps; ``'fft'``: kernel ``C A^j B`` by
        doubling, O(L n^2 h + L n h^2), and an FFT convolution, O(h^2 log L) per sample.
    readout, device, dtype
        As for :class:`~lti_reduce_torch.layers.LRU` (default ``'pre'``; with ``'post'`` a
        reduced system is representable whenever its A is invertible, since D is a full matrix).

    Notes
    -----
    Init: ``B ~ N(0, 1/h)``, ``C ~ N(0, 1/n)``, ``D ~ N(0, 1/h)``.
    """

    kind = "dense"
    modes = ("auto", "sequential", "assoc", "fft")
    state_parameter = "A"

    def __init__(self, h, n, radius=0.9, *, mode="auto", readout="pre", device=None, dtype=None):
        super().__init__(h, mode=mode, readout=readout)
        self.radius = float(radius)
        h, n = self.h, int(n)
        self.declare_parameters({"A": (n, n), "B": (n, h), "C": (h, n), "D": (h, h)}, device=device, dtype=dtype)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        n, h = self.n, self.h
        if n:
            Q, R = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
            Q = Q * torch.sign(torch.diagonal(R)).unsqueeze(0)
            self.A.copy_(self.radius * Q)
        self.B.normal_(0.0, 1.0 / math.sqrt(h))
        self.C.normal_(0.0, 1.0 / math.sqrt(max(n, 1)))
        self.D.normal_(0.0, 1.0 / math.sqrt(h))

    def forward(self, u):
        """``u`` (batch, L, h) real -> ``y`` (batch, L, h)."""
        L = self.check_input(u)
        method = self.method(L, u.shape[0])
        if method == "fft":
            lags = L if self.readout == "post" else L - 1
            K = _scan.dense_kernel(self.A, self.B, self.C, max(lags, 0))
            if self.readout == "pre":
                K = torch.cat([K.new_zeros((self.h, self.h, 1)), K], dim=-1)
            y = _scan.causal_conv_fft(u, K)
        else:
            x = _scan.dense_scan(self.A, u @ self.B.transpose(0, 1), method)
            y = x @ self.C.transpose(0, 1)
            if self.readout == "pre":
                y = _scan.shift_right(y)
        return y + u @ self.D.transpose(0, 1)
