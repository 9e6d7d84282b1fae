"""Adapter of ``s5.S5SSM`` (PyPI ``s5-pytorch``; also reached inside ``s5.S5`` and ``s5.S5Block``).

The layer (read from its source, version 0.2.1), with ``step = exp(log_step)`` per state::

    Lambda complex (P,) continuous time;  B_tilde = B[..., 0] + 1j B[..., 1]   (P, H)
    ZOH:      lambda = exp(Lambda step),  B_bar = (lambda - 1) / Lambda * B_tilde
    bilinear: lambda = (1 + Lambda step/2) / (1 - Lambda step/2),  B_bar = step / (1 - Lambda step/2) * B_tilde
    x_k = lambda * x_{k-1} + B_bar u_k,   y_k = Re(C x_k) + D * u_k       C complex (H, P), D real (H,)

The discrete system is computed with the module's own ``discretize`` function, so the
adapter follows the package. What is reduced is ``H = (diag(lambda), B_bar, C, diag(D))``
(the layer reads the state after the update; see :mod:`lti_reduce_torch.thirdparty`).

Rebuild keeps the package's parameterisation: every new mode gets the same step, the
geometric mean ``exp(mean(log_step))`` of the old ones (reduced modes mix old ones, so no
old step belongs to a new mode), and the discretisation is inverted exactly for that step:
ZOH ``Lambda = log(lambda) / step`` (principal log), ``B_tilde = B_bar Lambda / (lambda - 1)``;
bilinear ``Lambda = (2 / step) (lambda - 1) / (lambda + 1)``,
``B_tilde = B_bar (1 - Lambda step / 2) / step``. The rebuilt parameters are run through the
module's ``discretize`` again and compared with the reduced system (refused on mismatch).

Refused with :class:`~lti_reduce_torch.ReductionRefusedError` (nothing changed):

* ``bidir=True``: the output adds a backward (anti-causal) scan of the same states, with a
  second half of ``C``; it is not a causal LTI system of state size P.
* ``liquid=True``: the transition is ``lambda + B_bar u_k``, which depends on the input
  (a bilinear, not a linear system).
* ``degree != 1``: the layer raises ``B_bar`` elementwise to a power; a reduced ``B_bar``
  has no unique elementwise root, so the parameterisation cannot hold it exactly.
* ``bcInit='factorized'`` (B and C as low-rank products; fails upstream anyway) and any
  ``discretize`` other than the package's ZOH and bilinear functions.
* A per-step ``B`` (``step_scale`` of shape (batch, L) passed to ``forward``) makes the
  layer time-varying; it is a call argument no adapter sees. The reduction is exact for
  ``step_scale = 1``; with another scalar ``step_scale`` the reduced layer is a stable LTI
  system of the same form but no bound is claimed.
"""

import torch
import s5

from .._registry import ReductionRefusedError
from ..toolkit import check_nonzero_eigenvalues
from ._common import ThirdPartyDiagonalAdapter

__all__ = ["S5SSMAdapter"]

_DISCRETIZATIONS = {s5.discretize_zoh: "zoh", s5.discretize_bilinear: "bilinear"}
_DENSE_BC = ("dense_columns", "dense", "complex_normal")


class S5SSMAdapter(ThirdPartyDiagonalAdapter):
    """Adapter of :class:`s5.S5SSM` (see the module docstring).

    Examples
    --------
    >>> import torch, s5
    >>> import lti_reduce_torch as ltr
    >>> model = s5.S5(4, 16)
    >>> report = ltr.reduce_(model, order=6)
    >>> tuple(model.seq.Lambda.shape), tuple(model.seq.B.shape), tuple(model.seq.C.shape)
    ((6,), (6, 4, 2), (4, 6))
    """

    layer = "s5.S5SSM"
    state_axes = {"Lambda": 0, "B": 0, "C": 1, "log_step": 0}

    def discretization(self, module):
        """``'zoh'`` or ``'bilinear'`` (the package function the module uses)."""
        method = _DISCRETIZATIONS.get(getattr(module, "discretize", None))
        if method is None:
            raise ReductionRefusedError(
                f"{self.layer}: discretize is {getattr(module, 'discretize', None)!r}; only the package's "
                "discretize_zoh and discretize_bilinear can be inverted")
        return method

    def check_supported(self, module):
        if module.bidir:
            raise ReductionRefusedError(
                f"{self.layer}: bidir=True is not reducible: the output adds a backward (anti-causal) scan of the "
                "states with a second half of C, so the layer is not a causal LTI system of state size P")
        if module.liquid:
            raise ReductionRefusedError(
                f"{self.layer}: liquid=True is not reducible: the transition lambda + B_bar u_k depends on the "
                "input, so the layer is not linear time-invariant")
        if module.degree != 1:
            raise ReductionRefusedError(
                f"{self.layer}: degree={module.degree} is not reducible exactly: the layer raises B_bar "
                "elementwise to that power, and a reduced B_bar has no unique elementwise root")
        if module.bcInit not in _DENSE_BC:
            raise ReductionRefusedError(
                f"{self.layer}: bcInit={module.bcInit!r} (low-rank factorised B and C) is not supported; "
                f"supported: {_DENSE_BC}")
        self.discretization(module)

    def discrete(self, module, params):
        step = torch.exp(params["log_step"])
        B_tilde = torch.complex(params["B"][..., 0], params["B"][..., 1])
        lam, B_bar = module.discretize(params["Lambda"], B_tilde, step)
        return lam, B_bar, params["C"], torch.diag(params["D"]).to(torch.complex128)

    def parameters_from_modal(self, module, lam, B, C, D):
        method = self.discretization(module)
        if method == "zoh":
            check_nonzero_eigenvalues(lam, layer=self.layer, why="the ZOH discretisation cannot be inverted (log 0)")
        elif bool((lam == -1).any()):
            raise ReductionRefusedError(f"{self.layer}: the reduced system has an eigenvalue -1; the bilinear "
                                        "discretisation cannot be inverted there (Lambda would be infinite)")
        log_step = module.log_step.detach().to(torch.float64)
        log_step_new = log_step.mean() if log_step.numel() else log_step.new_zeros(())
        step = torch.exp(log_step_new)
        if method == "zoh":
            Lambda = torch.log(lam) / step
            B_tilde = B * (Lambda / (lam - 1)).unsqueeze(-1)
        else:
            Lambda = (2 / step) * (lam - 1) / (lam + 1)
            B_tilde = B * ((1 - Lambda * step / 2) / step).unsqueeze(-1)
        return {"Lambda": Lambda, "B": torch.stack([B_tilde.real, B_tilde.imag], dim=-1),
                "C": C.contiguous(), "log_step": log_step_new.expand(lam.shape[0]).clone(),
                "D": self.real_feedthrough(D, B, C, diagonal=True)}
