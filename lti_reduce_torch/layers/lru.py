"""Linear Recurrent Unit (Orvieto et al. 2023) in the exact published parameterisation."""

import torch

from . import _scan
from ._base import DiagonalMIMOLayer

__all__ = ["LRU"]


class LRU(DiagonalMIMOLayer):
    r"""Linear Recurrent Unit: a complex diagonal MIMO linear recurrence.

    .. math::

        \lambda = \exp(-e^{\nu_{\log}} + i e^{\theta_{\log}}),\quad
        B = (B_{re} + i B_{im})\, \mathrm{diag}(e^{\gamma_{\log}}),\quad C = C_{re} + i C_{im}

        x_k = \mathrm{diag}(\lambda)\, x_{k-1} + B u_k,\qquad
        y_k = \mathrm{Re}(C\, s_k) + D \odot u_k,\qquad x_{-1} = 0

    with ``s_k = x_k`` for ``readout='post'`` (the published LRU: the output reads the state
    *after* the update with ``u_k``) and ``s_k = x_{k-1}`` for ``readout='pre'`` (the
    standard state-space form ``x[k+1] = A x[k] + B u[k]``, ``y[k] = C x[k] + D u[k]``).

    Parameters
    ----------
    h : int
        Input/output channels.
    n : int
        State size.
    r_min, r_max : float
        Ring of the initial eigenvalue moduli (``|lambda|^2`` uniform on
        ``[r_min^2, r_max^2]``, as in the LRU paper).
    max_phase : float
        Initial phases uniform on ``[0, max_phase]``.
    mode : {'auto', 'sequential', 'chunked', 'assoc', 'fft'}
        How the recurrence is evaluated (all compute the same function; see
        :mod:`lti_reduce_torch.layers._scan`). ``'auto'`` picks by shape and device at each
        call (:func:`lti_reduce_torch.layers.auto_method`): on the CPU ``'fft'`` for small
        h, else ``'assoc'`` for small states and ``'sequential'`` for large ones.
    readout : {'post', 'pre'}
        ``'post'`` (default, the published LRU) reads the state after the update:
        ``y_k = Re(C x_k) + D u_k``; ``'pre'`` reads it before, so the SSM path of ``y_k``
        sees inputs up to ``u_{k-1}`` and ``u_k`` enters through ``D`` only. Both reduce
        exactly: the adapter reduces ``H = (Lambda, B, C, D)``, and a ``'post'`` layer's
        output error is ``z (H - H_r)``, of the same modulus on the unit circle.
    chunk : int
        Chunk length of ``mode='chunked'``.
    device, dtype
        Factory arguments (float32 or float64 parameters; complex arithmetic in
        complex64 / complex128 respectively).

    Notes
    -----
    Parameters: ``nu_log, theta_log, gamma_log`` (n,), ``B_re, B_im`` (n, h),
    ``C_re, C_im`` (h, n), ``D`` (h,). ``nu_log, theta_log, gamma_log`` carry
    ``_no_weight_decay = True``. Initialisation as published: ``B_re, B_im ~ N(0, 1/(2h))``,
    ``C_re, C_im ~ N(0, 1/n)``, ``D ~ N(0, 1)``, ``gamma = sqrt(1 - |lambda|^2)``.
    """

    state_parameter = "nu_log"

    def __init__(self, h, n, r_min=0.9, r_max=0.999, max_phase=6.28, *, mode="auto", readout="post",
                 chunk=32, device=None, dtype=None):
        super().__init__(h, mode=mode, readout=readout, chunk=chunk)
        if not 0 <= r_min < r_max <= 1:
            raise ValueError(f"need 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        self.declare_mimo_parameters(int(n), ("nu_log", "theta_log", "gamma_log"), device=device, dtype=dtype)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        n = self.n
        kw = {"device": self.nu_log.device, "dtype": torch.float64}
        u1 = torch.rand(n, **kw)
        u2 = torch.rand(n, **kw)
        nu_log = torch.log(-0.5 * torch.log(u1 * (self.r_max ** 2 - self.r_min ** 2) + self.r_min ** 2))
        theta_log = torch.log(self.max_phase * u2)
        modulus = torch.exp(-torch.exp(nu_log))
        self.nu_log.copy_(nu_log)
        self.theta_log.copy_(theta_log)
        self.gamma_log.copy_(torch.log(torch.sqrt(1 - modulus ** 2)))
        self.reset_input_output()

    def discrete(self, params=None):
        """``(log_lambda (n,), B (n, h), C (h, n))`` complex tensors (differentiable).

        ``log_lambda = -exp(nu_log) + 1j exp(theta_log)``. ``params`` (optional mapping
        name -> tensor) replaces the module's parameters in the computation.
        """
        P = _scan.params_of(self, params)
        gamma = torch.exp(P["gamma_log"]).unsqueeze(-1)
        log_lam = torch.complex(-torch.exp(P["nu_log"]), torch.exp(P["theta_log"]))
        B = torch.complex(P["B_re"] * gamma, P["B_im"] * gamma)
        C = torch.complex(P["C_re"], P["C_im"])
        return log_lam, B, C
