"""S5 (Smith et al. 2023): a continuous-time complex diagonal MIMO SSM, discretised per mode."""

import math

import torch
from torch import nn

from . import _scan

__all__ = ["S5", "discretize"]


def discretize(Lambda, step, method):
    """Discretisation of ``x' = diag(Lambda) x + B u`` with per-mode ``step``.

    ZOH: ``lambda_d = exp(Lambda step)``, ``B_d = (lambda_d - 1) / Lambda * B``
    (computed as ``expm1(Lambda step) / Lambda``).
    Bilinear: ``lambda_d = (1 + Lambda step/2) / (1 - Lambda step/2)``,
    ``B_d = step / (1 - Lambda step/2) * B``.

    ``Lambda`` (..., n) complex, ``step`` broadcastable to it (real). Returns
    ``(log lambda_d, f)``: ``Lambda step`` for ZOH, the principal log for bilinear, and the
    per-mode input factor ``f`` with ``B_d = f * B``.
    """
    z = Lambda * step
    if method == "zoh":
        return z, torch.expm1(z) / Lambda
    if method == "bilinear":
        den = 1 - z / 2
        return torch.log((1 + z / 2) / den), step / den
    raise ValueError(f"discretization must be 'zoh' or 'bilinear', got {method!r}")


class S5(nn.Module):
    r"""S5 layer: ``x' = diag(Lambda) x + B u`` discretised per mode, complex MIMO.

    .. math::

        \Lambda = -e^{\ell} + i\,\Lambda_{im},\qquad \Delta = e^{\log\_step},\qquad
        (\bar\lambda, \bar B) = \mathrm{disc}(\Lambda, B, \Delta)

        x_k = \mathrm{diag}(\bar\lambda)\, x_{k-1} + \bar B u_k,\qquad
        y_k = \mathrm{Re}(C s_k) + D \odot u_k

    with ``s_k`` as in :class:`~lti_reduce_torch.layers.LRU` (``readout``). ``Re(Lambda) < 0``
    is kept by the parameterisation ``Lambda_re = -exp(log_neg_Lambda_re)``; every mode has its
    own learnable step ``exp(log_step)``.

    Parameters
    ----------
    h, n : int
    discretization : {'zoh', 'bilinear'}
    dt_min, dt_max : float
        Initial steps log-uniform on ``[dt_min, dt_max]``.
    mode, readout, chunk, device, dtype
        As for :class:`~lti_reduce_torch.layers.LRU`.

    Notes
    -----
    Parameters: ``log_neg_Lambda_re, Lambda_im, log_step`` (n,), ``B_re, B_im`` (n, h),
    ``C_re, C_im`` (h, n), ``D`` (h,). Initialisation (:meth:`reset_parameters`): S4D-Lin
    ``Lambda = -1/2 + i pi k``, ``B_re, B_im ~ N(0, 1/(2h))``, ``C_re, C_im ~ N(0, 1/n)``,
    ``D ~ N(0, 1)``. ``log_neg_Lambda_re, Lambda_im, log_step`` carry ``_no_weight_decay = True``.
    """

    modes = ("auto", "sequential", "chunked", "assoc", "fft")

    def __init__(self, h, n, discretization="zoh", dt_min=1e-3, dt_max=1e-1, *, mode="auto",
                 readout="post", chunk=32, device=None, dtype=None):
        super().__init__()
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.h = int(h)
        self.discretization = _scan.check_option("discretization", discretization, ("zoh", "bilinear"))
        self.mode = _scan.check_option("mode", mode, self.modes)
        self.readout = _scan.check_option("readout", readout, _scan.READOUTS)
        self.chunk = int(chunk)
        self.dt_min, self.dt_max = float(dt_min), float(dt_max)
        kw = {"device": device, "dtype": dtype}
        n = int(n)
        self.log_neg_Lambda_re = nn.Parameter(torch.empty(n, **kw))
        self.Lambda_im = nn.Parameter(torch.empty(n, **kw))
        self.log_step = nn.Parameter(torch.empty(n, **kw))
        self.B_re = nn.Parameter(torch.empty(n, self.h, **kw))
        self.B_im = nn.Parameter(torch.empty(n, self.h, **kw))
        self.C_re = nn.Parameter(torch.empty(self.h, n, **kw))
        self.C_im = nn.Parameter(torch.empty(self.h, n, **kw))
        self.D = nn.Parameter(torch.empty(self.h, **kw))
        for p in (self.log_neg_Lambda_re, self.Lambda_im, self.log_step):
            p._no_weight_decay = True
        self.reset_parameters()

    @property
    def n(self):
        return self.Lambda_im.shape[0]

    @torch.no_grad()
    def reset_parameters(self):
        """S4D-Lin eigenvalues, log-uniform steps, ``B_re, B_im ~ N(0, 1/(2h))``,
        ``C_re, C_im ~ N(0, 1/n)``, ``D ~ N(0, 1)``."""
        n, h = self.n, self.h
        self.log_neg_Lambda_re.fill_(math.log(0.5))
        self.Lambda_im.copy_(math.pi * torch.arange(n, dtype=torch.float64))
        lo, hi = math.log(self.dt_min), math.log(self.dt_max)
        self.log_step.copy_(lo + (hi - lo) * torch.rand(n, dtype=torch.float64))
        self.B_re.normal_(0.0, 1.0 / math.sqrt(2 * h))
        self.B_im.normal_(0.0, 1.0 / math.sqrt(2 * h))
        self.C_re.normal_(0.0, 1.0 / math.sqrt(max(n, 1)))
        self.C_im.normal_(0.0, 1.0 / math.sqrt(max(n, 1)))
        self.D.normal_(0.0, 1.0)

    def continuous(self, params=None):
        """``(Lambda (n,), B (n, h), C (h, n))`` complex (differentiable); ``params`` as in
        :meth:`LRU.discrete <lti_reduce_torch.layers.LRU.discrete>`."""
        P = _scan.params_of(self, params)
        Lambda = torch.complex(-torch.exp(P["log_neg_Lambda_re"]), P["Lambda_im"])
        return Lambda, torch.complex(P["B_re"], P["B_im"]), torch.complex(P["C_re"], P["C_im"])

    def discrete(self, params=None):
        """``(log lambda_d (n,), B_d (n, h), C (h, n))`` complex (differentiable)."""
        P = _scan.params_of(self, params)
        Lambda, B, C = self.continuous(P)
        log_lam, f = discretize(Lambda, torch.exp(P["log_step"]), self.discretization)
        return log_lam, f.unsqueeze(-1) * B, C

    def method(self, length, batch=1):
        if self.mode != "auto":
            return self.mode
        from . import auto_method
        return auto_method("mimo", self.h, self.n, length, batch, self.Lambda_im.device)

    def forward(self, u):
        """``u`` (batch, L, h) real -> ``y`` (batch, L, h)."""
        L = _scan.check_input(u, self.h, self.Lambda_im.dtype)
        log_lam, B, C = self.discrete()
        return _scan.mimo_diag_forward(u, log_lam, B, C, self.D, self.method(L, u.shape[0]),
                                       self.readout, self.chunk)

    def extra_repr(self):
        return (f"h={self.h}, n={self.n}, discretization={self.discretization!r}, mode={self.mode!r}, "
                f"readout={self.readout!r}")
