"""Adapters of the built-in layers (:mod:`lti_reduce_torch.layers`), written with :mod:`~lti_reduce_torch.toolkit`.

Conventions
-----------
Every layer runs ``x_k = A x_{k-1} + B u_k`` from ``x_{-1} = 0`` and reads out either the
state after the update (``readout='post'``: ``y_k = C x_k + D u_k``, the published LRU, S5
and S4D) or before it (``readout='pre'``: ``y_k = C x_{k-1} + D u_k``). :meth:`to_lti`
returns the system in the core's standard form ``s[k+1] = A s[k] + B u[k]``,
``y[k] = C s[k] + D u[k]`` whose simulation from zero state equals the layer's output:

* ``readout='pre'``:  ``(A, B, C, D)`` itself (``s_k = x_{k-1}``);
* ``readout='post'``: ``(A, B, C A, C B + D)`` (same state, output advanced by one step).

LRU, S5 and S4D default to the published ``readout='post'``; DenseLTI to the standard form
``'pre'``. What is *reduced* (:meth:`reduction_system`) is, for LRU and S5 with either
readout, ``H = (diag(lambda), B, C, D)``, the system whose Gramians the published method
uses: a ``'post'`` layer computes ``z (H(z) - D) + D``, and ``|z| = 1`` on the unit circle,
so the layer's output error after rebuilding from ``H_r`` equals ``H - H_r`` pointwise in
modulus and every bound on ``||H - H_r||_inf`` holds for the layer. (Reducing the
``'post'`` standard form ``(A, B, C A, C B + D)`` instead would need the reduced ``G_r(0)``
to be diagonal, which balanced truncation does not keep for a MIMO system.)

The diagonal layers (LRU, S5, S4D) output ``Re(C x) + D u``; :meth:`to_lti` returns the
*complex* system whose real part is the output, as the published method does. The error
bound of balanced truncation still holds for the layer: its output error is the real part
of the complex system's, and ``|Re e| <= |e|``.

Rebuilding (exact or refused)
-----------------------------
:meth:`rebuild` maps a reduced ``StateSpace`` back to parameters exactly (in complex128 /
float64, cast once to the parameters' dtype) or raises
:class:`~lti_reduce_torch.ReductionRefusedError`, never approximates. Diagonal layers
re-diagonalise ``A_r = V diag(lambda) V^{-1}`` (``torch.linalg.eig``; ``B_m = V^{-1} B_r``
by a solve, ``C_m = C_r V``). Refusals:

* an eigenvalue with ``|lambda| >= 1`` (every layer);
* an eigenvector matrix with 2-norm condition number above ``cond_max`` (default 1e8;
  A_r is close to non-diagonalisable and the modal form would amplify rounding);
* an eigenvalue the parameterisation cannot hold: LRU ``lambda = 0`` or exactly real
  positive (``theta_log = log(angle)`` needs an angle in (0, 2 pi)); S5/S4D ``lambda = 0``
  (no inverse of the discretisation); DenseLTI: a complex reduced system (the layer is
  real) and, with ``'post'``, a singular or ill-conditioned ``A_r`` (``C = C_r A_r^{-1}``);
* a feedthrough the layer cannot hold: the layer's own ``D`` term is
  ``D_r`` (``'pre'``) or ``D_r - C_m diag(lambda)^{-1} B_m`` (``'post'``, i.e. ``G_r(0)``);
  LRU/S5 hold a real *diagonal* D only (S4D: one real scalar per channel; DenseLTI: any
  real matrix). Only the real part matters (the output is ``Re(.)`` of the response to a
  real input): an imaginary part is dropped, which leaves the layer's output unchanged.
  (LRU/S5 always rebuild from the reduced ``H``, so this is the reduced ``D``.)
* as a last line, the transfer function of the rebuilt parameters (real part, evaluated
  in float64 before the cast) is compared with the reduced system's modal form at a few
  points (the eigenvector-conditioning guard stands for the modal form's agreement with
  ``A_r``); a relative mismatch above ``check_rtol`` (default 1e-6) is refused.

The refusal happens before anything is returned, so the module is never modified.
"""

import math
import numbers

import torch

from lti_reduce import NonFiniteError, StateSpace, DiagonalStateSpace
from ._registry import SSMAdapter, ReductionRefusedError
from .toolkit import (DiagonalAdapter, cast_parameters, check_nonzero_eigenvalues, check_same_response,
                      check_stable_eigenvalues, float64_parameters, layer_feedthrough, modal_form,
                      replace_parameter_, single_system, stack_reduced)
from .layers.lru import LRU
from .layers.s5 import S5, discretize
from .layers.s4d import S4D
from .layers.dense import DenseLTI

__all__ = ["LRUAdapter", "S5Adapter", "S4DAdapter", "DenseLTIAdapter", "BUILTIN_ADAPTERS"]

_C = torch.complex128
_R = torch.float64
_TWO_PI = 2 * math.pi


# --------------------------------------------------------------------------- LRU / S5
class _MIMOAdapter(DiagonalAdapter):
    """LRU and S5: one MIMO diagonal system ``(diag(lambda), B, C, diag(D))``."""

    def to_lti(self, module):
        with torch.no_grad():
            log_lam, B, C = module.discrete(float64_parameters(module))
            lam = torch.exp(log_lam.to(_C))
            B, C = B.to(_C), C.to(_C)
            D = torch.diag(module.D.detach().to(_R)).to(_C)
            if module.readout == "post":
                return DiagonalStateSpace(lam, B, C * lam, C @ B + D, dt=True)
            return DiagonalStateSpace(lam, B, C, D, dt=True)

    def reduction_system(self, module):
        """``H = (diag(lambda), B, C, D)`` for either readout (see the module notes).

        Raises NonFiniteError (a ValueError) naming the array if the layer's system is not
        finite."""
        with torch.no_grad():
            log_lam, B, C = module.discrete(float64_parameters(module))
            named = {"eigenvalues": torch.exp(log_lam.to(_C)), "B": B.to(_C), "C": C.to(_C),
                     "D": module.D.detach().to(_R)}
            # checked here, on the diagonal of D, in one host read: the constructor's own check
            # would scan (and copy) the dense h x h D it is given
            if not bool(torch.stack([torch.isfinite(x).all() for x in named.values()]).all()):
                bad = next(name for name, x in named.items() if not bool(torch.isfinite(x).all()))
                raise NonFiniteError(f"{self.layer}: {bad} of the layer's system contains NaN or infinity; "
                                     "a state-space system needs finite entries")
            return DiagonalStateSpace(named["eigenvalues"], named["B"], named["C"], torch.diag(named["D"]).to(_C),
                                      dt=True, check_finite=False)

    def _modal_layer(self, module, reduced):
        reduced = single_system(reduced, layer=self.layer)
        A, B, C, D = (x[0] for x in stack_reduced(reduced, layer=self.layer, device=self.device(module)))
        h = module.h
        if B.shape[-1] != h or C.shape[0] != h:
            raise ValueError(f"{self.layer}: the reduced system has {B.shape[-1]} inputs and {C.shape[0]} "
                             f"outputs; the layer has h={h}")
        lam, Bm, Cm = modal_form(A, B, C, cond_max=self.cond_max, layer=self.layer)
        # the reduced system is H_r (reduction_system): the layer's C, B are its modal ones
        # whatever the readout
        Cl, Dl = layer_feedthrough(lam, Bm, Cm, D, "pre")
        Dre = Dl.real
        off = Dre - torch.diag(torch.diagonal(Dre))
        zero = Dre.new_zeros(())
        d_size, worst = torch.stack([D.abs().max() if D.numel() else zero,
                                     off.abs().max() if off.numel() else zero]).tolist()   # one host read
        scale = max(1.0, d_size)
        if worst > self.d_tol * scale and Cl.numel():
            # the scale's third term (an h x r x h product) only matters when the first two fail
            scale = max(scale, float((Cl.abs() @ Bm.abs()).max()))
        if worst > self.d_tol * scale:
            extra = " (the reduced D is not the original diagonal D, e.g. after singular perturbation)"
            raise ReductionRefusedError(
                f"{self.layer}: the reduced feedthrough the layer must hold in D is not diagonal (largest "
                f"off-diagonal |Re D| = {worst:.3g}, tolerance {self.d_tol * scale:.3g}): the layer's D is a "
                f"real diagonal (h,) vector{extra}")
        return reduced, lam, Bm, Cl, torch.diagonal(Dre).clone()

    def rebuild(self, module, reduced):
        reduced, lam, Bl, Cl, Dvec = self._modal_layer(module, reduced)
        self._check_representable(lam)
        values = self._params_from_modal(module, lam, Bl, Cl, Dvec)
        # the reference is the modal form (diagonal: cheap probes), as for S4D; its agreement
        # with the dense reduced system is what the eigenvector-conditioning guard of
        # modal_form stands for (a dense reference costs 17 r x r factorisations per layer)
        modal = DiagonalStateSpace(lam, Bl, Cl, reduced.D.to(device=lam.device, dtype=_C), dt=True,
                                   check_finite=False)
        self._verify(module, modal, values)
        return cast_parameters(module, values, layer=self.layer)

    def _verify(self, module, reduced, values):
        P = float64_parameters(module)
        P.update(values)
        with torch.no_grad():
            log_lam, B, C = module.discrete(P)
            lam = torch.exp(log_lam.to(_C))
            D = torch.diag(P["D"]).to(_C)
            # unchecked: a non-finite value makes the response check below refuse
            sys = DiagonalStateSpace(lam, B.to(_C), C.to(_C), D, dt=True, check_finite=False)
            check_same_response(reduced, sys, rtol=self.check_rtol, layer=self.layer)


class LRUAdapter(_MIMOAdapter):
    """Adapter of :class:`~lti_reduce_torch.layers.LRU` (see the module docstring).

    Rebuild: ``nu_log = log(-log|lambda|)``, ``theta_log = log(angle)`` with the angle taken in
    ``(0, 2 pi)``, ``gamma_log = log sqrt(1 - |lambda|^2)`` (reset, as published),
    ``B_re + 1j B_im = B_modal / gamma``, ``C = C_modal`` (``'pre'``) or ``C_modal / lambda``
    (``'post'``), ``D`` = the real diagonal of the layer's feedthrough.
    """

    layer = "LRU"
    holds_positive_real_eigenvalues = False     # theta_log = log(angle): no angle 0 (output='real' skips them)
    state_axes = {"nu_log": 0, "theta_log": 0, "gamma_log": 0, "B_re": 0, "B_im": 0, "C_re": 1, "C_im": 1}

    def _check_representable(self, lam):
        real_pos = (lam.imag == 0) & (lam.real > 0)
        if not bool(((lam == 0) | real_pos).any()):          # one host read on the normal path
            return
        check_nonzero_eigenvalues(lam, layer=self.layer, why="nu_log = log(-log|lambda|) cannot hold it")
        if bool(real_pos.any()):
            i = int(torch.nonzero(real_pos)[0])
            raise ReductionRefusedError(
                f"{self.layer}: the reduced system has an exactly real positive eigenvalue "
                f"(lambda = {float(lam[i].real):.17g}); the LRU parameterisation theta_log = log(angle) "
                f"needs an angle in (0, 2 pi) and cannot hold angle 0")

    def _params_from_modal(self, module, lam, Bl, Cl, Dvec):
        angle = torch.angle(lam)
        angle = torch.where(angle <= 0, angle + _TWO_PI, angle)
        mod = lam.abs()
        gamma = torch.sqrt(1 - mod ** 2)
        return {
            "nu_log": torch.log(-torch.log(mod)),
            "theta_log": torch.log(angle),
            "gamma_log": torch.log(gamma),
            "B_re": Bl.real / gamma.unsqueeze(-1),
            "B_im": Bl.imag / gamma.unsqueeze(-1),
            "C_re": Cl.real.contiguous(),
            "C_im": Cl.imag.contiguous(),
            "D": Dvec,
        }


class S5Adapter(_MIMOAdapter):
    """Adapter of :class:`~lti_reduce_torch.layers.S5` (see the module docstring).

    Rebuild: all new modes get one step, the geometric mean of the old steps
    ``exp(mean(log_step))`` (the reduced modes are mixtures of the old ones, so no old
    step belongs to a new mode; the geometric mean keeps the time scale of the layer's
    learning-rate and initialisation conventions). The discretisation is then inverted
    exactly: ZOH ``Lambda = log(lambda) / step`` (principal log), bilinear
    ``Lambda = (2/step) (lambda - 1)/(lambda + 1)``, and ``B = B_d / f(Lambda, step)`` with the
    layer's own input factor ``f`` (so the layer recomputes ``B_d`` exactly).
    """

    layer = "S5"
    state_axes = {"log_neg_Lambda_re": 0, "Lambda_im": 0, "log_step": 0, "B_re": 0, "B_im": 0,
                  "C_re": 1, "C_im": 1}

    def _check_representable(self, lam):
        check_nonzero_eigenvalues(lam, layer=self.layer,
                                  why="the layer needs log(lambda) (ZOH inverse; powers are exp(j log lambda))")

    def _params_from_modal(self, module, lam, Bl, Cl, Dvec):
        r = lam.shape[0]
        log_step = module.log_step.detach().to(_R)
        log_step_new = log_step.mean() if log_step.numel() else torch.zeros((), dtype=_R, device=lam.device)
        step = torch.exp(log_step_new)
        if module.discretization == "zoh":
            Lambda = torch.log(lam) / step
        else:
            Lambda = (2 / step) * (lam - 1) / (lam + 1)
        _, f = discretize(Lambda, step, module.discretization)
        B = Bl / f.unsqueeze(-1)
        return {
            "log_neg_Lambda_re": torch.log(-Lambda.real),
            "Lambda_im": Lambda.imag.contiguous(),
            "log_step": log_step_new.expand(r).clone(),
            "B_re": B.real.contiguous(),
            "B_im": B.imag.contiguous(),
            "C_re": Cl.real.contiguous(),
            "C_im": Cl.imag.contiguous(),
            "D": Dvec,
        }


# --------------------------------------------------------------------------- S4D
class S4DAdapter(DiagonalAdapter):
    """Adapter of :class:`~lti_reduce_torch.layers.S4D`: h SISO systems.

    :meth:`to_lti` returns a :class:`~lti_reduce.DiagonalStateSpace` with batch shape (h,)
    (m = p = 1). :meth:`rebuild` takes a tuple of h reduced systems of one order r; every
    channel keeps its own step and the ZOH is inverted exactly (``A = log(lambda)/step_c``,
    ``B = B_d / f``); ``D_c`` is the real part of the channel's own feedthrough (always
    representable for a SISO channel). ``select_states`` takes indices of shape (r,)
    (the same for every channel) or (h, r) (per channel).
    """

    layer = "S4D"
    state_axes = {"log_neg_A_re": 1, "A_im": 1, "B_re": 1, "B_im": 1, "C_re": 1, "C_im": 1}

    def where(self, idx):
        return f" (channel {idx[0]})"

    def to_lti(self, module):
        with torch.no_grad():
            log_lam, B, C = module.discrete(float64_parameters(module))
            lam = torch.exp(log_lam.to(_C))
            B, C = B.to(_C), C.to(_C)
            D = module.D.detach().to(_R).to(_C).reshape(-1, 1, 1)
            if module.readout == "post":
                return DiagonalStateSpace(lam, B.unsqueeze(-1), (C * lam).unsqueeze(-2),
                                          (C * B).sum(-1).reshape(-1, 1, 1) + D, dt=True)
            return DiagonalStateSpace(lam, B.unsqueeze(-1), C.unsqueeze(-2), D, dt=True)

    def reduction_system(self, module):
        """``H_c = (lambda_c, B_c, C_c, D_c)`` per channel for either readout (as for LRU/S5)."""
        with torch.no_grad():
            P = float64_parameters(module)
            log_lam, B, C = module.discrete(P)
            D = P["D"].to(_C).reshape(-1, 1, 1)
            return DiagonalStateSpace(torch.exp(log_lam.to(_C)), B.to(_C).unsqueeze(-1),
                                      C.to(_C).unsqueeze(-2), D, dt=True)

    def rebuild(self, module, reduced):
        h = module.h
        systems = tuple(reduced) if isinstance(reduced, (tuple, list)) else (reduced,)
        A, B, C, D = stack_reduced(systems, batch=h, layer=self.layer, device=self.device(module))
        if B.shape[-1] != 1 or C.shape[-2] != 1:
            raise ValueError(f"{self.layer}: every channel's reduced system must be SISO, got "
                             f"B {tuple(B.shape[1:])}, C {tuple(C.shape[1:])}")
        lam, Bm, Cm = modal_form(A, B, C, cond_max=self.cond_max, layer=self.layer, where=self.where)
        check_nonzero_eigenvalues(lam, layer=self.layer, where=self.where,
                                  why="the ZOH discretisation cannot be inverted (log 0)")
        Cl, Dl = layer_feedthrough(lam, Bm, Cm, D, "pre")      # reduced H_c (reduction_system)
        step = torch.exp(module.log_step.detach().to(_R)).unsqueeze(-1)      # (h, 1)
        Acont = torch.log(lam) / step
        _, f = discretize(Acont, step, "zoh")
        Bc = Bm[..., 0] / f
        Cc = Cl[:, 0, :]
        values = {
            "log_neg_A_re": torch.log(-Acont.real),
            "A_im": Acont.imag.contiguous(),
            "B_re": Bc.real.contiguous(),
            "B_im": Bc.imag.contiguous(),
            "C_re": Cc.real.contiguous(),
            "C_im": Cc.imag.contiguous(),
            "D": Dl.real.reshape(h).clone(),
        }
        P = float64_parameters(module)
        P.update(values)
        with torch.no_grad():
            log_lam_r, B_r, C_r = module.discrete(P)
            # unchecked: a non-finite value makes the response check below refuse
            sys = DiagonalStateSpace(torch.exp(log_lam_r.to(_C)), B_r.to(_C).unsqueeze(-1),
                                     C_r.to(_C).unsqueeze(-2), P["D"].to(_C).reshape(-1, 1, 1), dt=True,
                                     check_finite=False)
            ref = DiagonalStateSpace(lam, Bm, Cm, D, dt=True, check_finite=False)
            check_same_response(ref, sys, rtol=self.check_rtol, layer=self.layer)
        return cast_parameters(module, values, layer=self.layer)

    def select_states(self, module, keep):
        keep = torch.as_tensor(keep, dtype=torch.long, device=self.device(module))
        if keep.ndim <= 1:
            return super().select_states(module, keep)
        h, n = module.h, module.n
        if keep.ndim != 2 or keep.shape[0] != h:
            raise ValueError(f"{self.layer}: keep must have shape (r,) or (h, r) = ({h}, r), got {tuple(keep.shape)}")
        if keep.numel() and (int(keep.min()) < 0 or int(keep.max()) >= n):
            raise IndexError(f"{self.layer}: state indices must lie in [0, {n})")
        if any(torch.unique(row).numel() != row.numel() for row in keep):
            raise ValueError(f"{self.layer}: state indices must be distinct within each channel")
        params = dict(module.named_parameters(recurse=False))
        return {name: torch.gather(params[name].detach(), 1, keep).clone() for name in self.state_axes}


# --------------------------------------------------------------------------- dense
class DenseLTIAdapter(SSMAdapter):
    """Adapter of :class:`~lti_reduce_torch.layers.DenseLTI` (real dense ``A, B, C, D``).

    Rebuild: ``'pre'`` takes ``(A_r, B_r, C_r, D_r)`` as they are; ``'post'`` sets
    ``C = C_r A_r^{-1}`` and ``D = D_r - C_r A_r^{-1} B_r`` (refused if ``A_r`` is singular
    or its condition number exceeds ``cond_max``). Refused: a complex reduced system with
    a non-negligible imaginary part, an eigenvalue with ``|lambda| >= 1``.
    ``select_states`` is not supported (the layer has no modal coordinates).
    """

    layer = "DenseLTI"

    def __init__(self, cond_max=1e8, imag_tol=1e-12):
        self.cond_max = float(cond_max)
        self.imag_tol = float(imag_tol)

    def state_size(self, module):
        return int(module.n)

    def to_lti(self, module):
        with torch.no_grad():
            A, B, C, D = (getattr(module, k).detach().to(_R) for k in "ABCD")
            if module.readout == "post":
                return StateSpace(A, B, C @ A, C @ B + D, dt=True)
            return StateSpace(A, B, C, D, dt=True)

    def rebuild(self, module, reduced):
        reduced = single_system(reduced, layer=self.layer)
        device = module.A.device
        mats = [torch.as_tensor(getattr(reduced, k)).to(device) for k in "ABCD"]
        if mats[1].shape[-1] != module.h or mats[2].shape[0] != module.h:
            raise ValueError(f"{self.layer}: the reduced system has {mats[1].shape[-1]} inputs and "
                             f"{mats[2].shape[0]} outputs; the layer has h={module.h}")
        if mats[0].is_complex():
            scale = max(1.0, max(float(m.abs().max()) if m.numel() else 0.0 for m in mats))
            imag = max(float(m.imag.abs().max()) if m.numel() else 0.0 for m in mats)
            if imag > self.imag_tol * scale:
                raise ReductionRefusedError(
                    f"{self.layer}: the reduced system is complex (largest |imaginary part| = {imag:.3g}); "
                    f"the layer is real")
            mats = [m.real for m in mats]
        A, B, C, D = (m.to(_R) for m in mats)
        r = A.shape[0]
        if r:
            check_stable_eigenvalues(torch.linalg.eigvals(A), layer=self.layer)
        if module.readout == "post" and r:
            cond = float(torch.linalg.cond(A))
            if not cond <= self.cond_max:
                raise ReductionRefusedError(
                    f"{self.layer}: readout='post' needs C = C_r A_r^-1, but A_r has condition number "
                    f"{cond:.3g} > {self.cond_max:.3g}")
            C = torch.linalg.solve(A.transpose(0, 1), C.transpose(0, 1)).transpose(0, 1)
            D = D - C @ B
        return cast_parameters(module, {"A": A, "B": B, "C": C, "D": D}, layer=self.layer)

    def resize_(self, module, n):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"{self.layer}: state size must be an int >= 0, got {n!r}")
        n, h = int(n), module.h
        for name, shape in (("A", (n, n)), ("B", (n, h)), ("C", (h, n))):
            p = getattr(module, name)
            replace_parameter_(module, name, torch.zeros(shape, dtype=p.dtype, device=p.device))
        return module


#: The built-in layer classes and their adapters, registered by ``lti_reduce_torch/__init__.py``.
BUILTIN_ADAPTERS = ((LRU, LRUAdapter), (S5, S5Adapter), (S4D, S4DAdapter), (DenseLTI, DenseLTIAdapter))
