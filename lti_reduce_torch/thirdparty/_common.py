"""Shared machinery of the third-party diagonal adapters.

Both packaged layers (``LRU_pytorch.LRU`` and ``s5.S5SSM``) are complex diagonal MIMO
recurrences that read the state *after* the update,

    x_k = diag(lambda) x_{k-1} + B u_k,     y_k = Re(C x_k) + D u_k,     x_{-1} = 0,

so, as for the built-in layers (:mod:`lti_reduce_torch.adapters`), what is reduced is
``H = (diag(lambda), B, C, D)``: the layer computes ``z (H(z) - D) + D`` and ``|z| = 1`` on
the unit circle, so every bound on ``||H - H_r||_inf`` holds for the layer's output.
:meth:`ThirdPartyDiagonalAdapter.to_lti` returns the standard form
``(diag(lambda), B, C diag(lambda), C B + D)`` whose simulation from zero state equals the
layer's output.
"""

import torch

from lti_reduce import DiagonalStateSpace
from .._registry import ReductionRefusedError
from ..toolkit import (DiagonalAdapter, single_system, stack_reduced, modal_form, check_same_response,
                       cast_parameters)

_C = torch.complex128
_R = torch.float64


class ThirdPartyDiagonalAdapter(DiagonalAdapter):
    """Base of the adapters of packaged complex diagonal layers (``'post'`` readout).

    Subclasses define :attr:`layer` (a name for messages), :attr:`state_axes`
    (parameter name -> axis of the state index; the first entry gives the state size),
    :meth:`check_supported`, :meth:`discrete` (the layer's ``(lambda, B, C, D)`` computed
    from a parameter mapping, in complex128) and :meth:`parameters_from_modal` (the
    inverse map). ``select_states`` and ``resize_`` come from
    :class:`~lti_reduce_torch.toolkit.DiagonalAdapter`.

    Parameters
    ----------
    cond_max, d_tol, check_rtol : float
        As for :class:`~lti_reduce_torch.toolkit.DiagonalAdapter`.
    """

    # ---------------------------------------------------------------- subclass hooks
    def check_supported(self, module):
        """Raise :class:`~lti_reduce_torch.ReductionRefusedError` for configurations that are not LTI."""

    def discrete(self, module, params):
        """``(lambda (n,), B (n, m), C (p, n), D (p, m))`` complex128 from ``params`` (name -> float64/complex128)."""
        raise NotImplementedError

    def parameters_from_modal(self, module, lam, B, C, D):
        """Parameter values (complex128/float64) holding the modal system ``(lam, B, C, D)``."""
        raise NotImplementedError

    def after_resize_(self, module):
        """Fix non-parameter attributes that depend on the state size (default: nothing)."""

    # ---------------------------------------------------------------- protocol
    def state_size(self, module):
        axis_name, axis = next(iter(self.state_axes.items()))
        return int(getattr(module, axis_name).shape[axis])

    def wide_parameters(self, module):
        """The module's own parameters, detached, in float64 / complex128."""
        return {k: v.detach().to(_C if v.is_complex() else _R)
                for k, v in module.named_parameters(recurse=False)}

    def reduction_system(self, module):
        self.check_supported(module)
        with torch.no_grad():
            lam, B, C, D = self.discrete(module, self.wide_parameters(module))
        return DiagonalStateSpace(lam, B, C, D, dt=True)

    def to_lti(self, module):
        self.check_supported(module)
        with torch.no_grad():
            lam, B, C, D = self.discrete(module, self.wide_parameters(module))
        return DiagonalStateSpace(lam, B, C * lam, C @ B + D, dt=True)

    def rebuild(self, module, reduced):
        self.check_supported(module)
        reduced = single_system(reduced, layer=self.layer)
        A, B, C, D = (x[0] for x in stack_reduced(reduced, layer=self.layer, device=self.device(module)))
        lam, Bm, Cm = modal_form(A, B, C, cond_max=self.cond_max, layer=self.layer)
        values = self.parameters_from_modal(module, lam, Bm, Cm, D)
        P = self.wide_parameters(module)
        P.update(values)
        with torch.no_grad():
            rebuilt = DiagonalStateSpace(*self.discrete(module, P), dt=True)
        check_same_response(reduced, rebuilt, rtol=self.check_rtol, layer=self.layer)
        return cast_parameters(module, values, layer=self.layer)

    def select_states(self, module, keep):
        """Keep the layer's modes ``keep`` (modal truncation; D unchanged)."""
        self.check_supported(module)
        return super().select_states(module, keep)

    def resize_(self, module, n):
        super().resize_(module, n)
        self.after_resize_(module)
        return module

    # ---------------------------------------------------------------- helpers for subclasses
    def real_feedthrough(self, D, B, C, diagonal):
        """Real part of the reduced feedthrough, checked to be diagonal when ``diagonal``.

        Balanced truncation keeps ``D``, so this only refuses reductions that change it
        (e.g. singular perturbation) for layers whose D is a diagonal vector.
        """
        Dre = D.real
        if not diagonal:
            return Dre.clone()
        off = Dre - torch.diag(torch.diagonal(Dre))
        scale = max(1.0, float(D.abs().max()) if D.numel() else 0.0,
                    float((C.abs() @ B.abs()).max()) if C.numel() else 0.0)
        worst = float(off.abs().max()) if off.numel() else 0.0
        if worst > self.d_tol * scale:
            raise ReductionRefusedError(
                f"{self.layer}: the reduced feedthrough is not diagonal (largest off-diagonal |Re D| = "
                f"{worst:.3g}, tolerance {self.d_tol * scale:.3g}); the layer's D is a real diagonal vector")
        return torch.diagonal(Dre).clone()

