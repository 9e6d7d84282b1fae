"""S5 (Smith et al. 2023): a continuous-time complex diagonal MIMO SSM, discretised per mode."""

import math

import torch

from . import _scan
from ._base import DiagonalMIMOLayer

__all__ = ["S5", "discretize", "continuous_diagonal", "s4d_lin_", "log_uniform_"]


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


def continuous_diagonal(P, log_neg_real, imag):
    """``(-exp(P[log_neg_real]) + 1j P[imag], B_re + 1j B_im, C_re + 1j C_im)`` from parameters ``P``.

    The continuous-time diagonal parameterisation of S5 and S4D (``Re(eigenvalue) < 0``
    by construction).
    """
    eigenvalues = torch.complex(-torch.exp(P[log_neg_real]), P[imag])
    return eigenvalues, torch.complex(P["B_re"], P["B_im"]), torch.complex(P["C_re"], P["C_im"])


@torch.no_grad()
def s4d_lin_(log_neg_real, imag):
    """S4D-Lin eigenvalues ``-1/2 + i pi k`` (k = 0 .. n-1 along the last axis), in place."""
    log_neg_real.fill_(math.log(0.5))
    n = imag.shape[-1]
    imag.copy_(math.pi * torch.arange(n, dtype=torch.float64).expand(imag.shape))


@torch.no_grad()
def log_uniform_(log_step, dt_min, dt_max):
    """``log_step`` uniform on ``[log dt_min, log dt_max]`` (steps log-uniform), in place."""
    lo, hi = math.log(dt_min), math.log(dt_max)
    log_step.copy_(lo + (hi - lo) * torch.rand(log_step.shape, dtype=torch.float64))


class S5(DiagonalMIMOLayer):
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

    state_parameter = "Lambda_im"
    repr_options = ("discretization",)

    def __init__(self, h, n, discretization="zoh", dt_min=1e-3, dt_max=1e-1, *, mode="auto",
                 readout="post", chunk=32, device=None, dtype=None):
        super().__init__(h, mode=mode, readout=readout, chunk=chunk)
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        self.discretization = _scan.check_option("discretization", discretization, ("zoh", "bilinear"))
        self.dt_min, self.dt_max = float(dt_min), float(dt_max)
        self.declare_mimo_parameters(int(n), ("log_neg_Lambda_re", "Lambda_im", "log_step"), device=device,
                                     dtype=dtype)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """S4D-Lin eigenvalues, log-uniform steps, ``B_re, B_im ~ N(0, 1/(2h))``,
        ``C_re, C_im ~ N(0, 1/n)``, ``D ~ N(0, 1)``."""
        s4d_lin_(self.log_neg_Lambda_re, self.Lambda_im)
        log_uniform_(self.log_step, self.dt_min, self.dt_max)
        self.reset_input_output()

    def continuous(self, params=None):
        """``(Lambda (n,), B (n, h), C (h, n))`` complex (differentiable); ``params`` as in
        :meth:`LRU.discrete <lti_reduce_torch.layers.LRU.discrete>`."""
        return continuous_diagonal(_scan.params_of(self, params), "log_neg_Lambda_re", "Lambda_im")

    def discrete(self, params=None):
        """``(log lambda_d (n,), B_d (n, h), C (h, n))`` complex (differentiable)."""
        P = _scan.params_of(self, params)
        Lambda, B, C = self.continuous(P)
        log_lam, f = discretize(Lambda, torch.exp(P["log_step"]), self.discretization)
        return log_lam, f.unsqueeze(-1) * B, C
