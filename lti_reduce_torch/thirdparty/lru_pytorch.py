"""Adapter of ``LRU_pytorch.LRU`` (PyPI ``lru-pytorch``), registered when the package is importable.

The layer (read from its source, version 0.1.3)::

    lambda = exp(-exp(nu_log)) * exp(1j * exp(theta_log))               (n,)
    x_k = lambda * x_{k-1} + exp(gamma_log) * (B @ u_k)                  B complex (n, in)
    y_k = Re(C @ x_k) + D @ u_k                                          C complex (out, n), D real (out, in)

It reads the state after the update, so the reduced system is
``H = (diag(lambda), diag(gamma) B, C, D)`` (see :mod:`lti_reduce_torch.thirdparty`).

Rebuild (exact or refused): ``nu_log = log(-log|lambda|)``; ``theta_log = log(angle)`` with
the angle taken in ``(0, 2 pi]`` (the package's ``cos``/``sin`` of ``exp(theta_log)`` make
angle ``2 pi`` a real positive eigenvalue, so none is refused); ``gamma_log`` reset to
``log sqrt(1 - |lambda|^2)`` (the package's initialisation) and ``B = B_modal / gamma``;
``C = C_modal``; ``D = Re(D_r)`` (a full real matrix, so any real feedthrough fits).
Refused: an eigenvalue 0 (``nu_log`` would be infinite) and everything the shared modal
rebuild refuses (instability, ill-conditioned eigenvectors, a mismatch of the rebuilt
transfer function).

The layer keeps its running state in a plain tensor attribute ``state`` of shape (n,)
(neither parameter nor buffer; ``forward`` resets it to zeros after every sequence).
:meth:`LRUPytorchAdapter.resize_` resizes it at once; after :func:`~lti_reduce_torch.reduce_`
a forward pre-hook, installed by :meth:`~LRUPytorchAdapter.rebuild` and
:meth:`~LRUPytorchAdapter.select_states`, replaces it by zeros of the new size before the
next forward pass (the hook does nothing while the sizes agree, so it never changes a
full-size layer's output).
"""

import math

import torch
from LRU_pytorch import LRU as PackagedLRU

from ..toolkit import check_nonzero_eigenvalues
from ._common import ThirdPartyDiagonalAdapter

__all__ = ["LRUPytorchAdapter", "PackagedLRU"]

_TWO_PI = 2 * math.pi
_HOOK_FLAG = "_lti_reduce_state_hook"


def _resize_running_state(module, args=()):
    """Forward pre-hook: the running state follows the state size (it is zero between sequences)."""
    n = module.nu_log.shape[0]
    state = getattr(module, "state", None)
    if not isinstance(state, torch.Tensor) or state.shape != (n,):
        module.state = torch.zeros(n, dtype=module.B.dtype, device=module.B.device)


class LRUPytorchAdapter(ThirdPartyDiagonalAdapter):
    """Adapter of :class:`LRU_pytorch.LRU` (see the module docstring).

    Examples
    --------
    >>> import torch
    >>> from LRU_pytorch import LRU
    >>> import lti_reduce_torch as ltr
    >>> layer = LRU(3, 2, 8)
    >>> report = ltr.reduce_(torch.nn.Sequential(layer), order=4)
    >>> tuple(layer.nu_log.shape), tuple(layer.B.shape), tuple(layer.C.shape)
    ((4,), (4, 3), (2, 4))
    """

    layer = "LRU_pytorch.LRU"
    state_axes = {"nu_log": 0, "theta_log": 0, "gamma_log": 0, "B": 0, "C": 1}

    def discrete(self, module, params):
        modulus = torch.exp(-torch.exp(params["nu_log"]))
        lam = torch.polar(modulus, torch.exp(params["theta_log"]))
        B = torch.exp(params["gamma_log"]).unsqueeze(-1) * params["B"]
        return lam, B, params["C"], params["D"].to(torch.complex128)

    def parameters_from_modal(self, module, lam, B, C, D):
        check_nonzero_eigenvalues(lam, layer=self.layer, why="nu_log = log(-log|lambda|) cannot hold it")
        modulus = lam.abs()
        angle = torch.angle(lam)
        angle = torch.where(angle <= 0, angle + _TWO_PI, angle)
        gamma = torch.sqrt(1 - modulus ** 2)
        return {"nu_log": torch.log(-torch.log(modulus)), "theta_log": torch.log(angle),
                "gamma_log": torch.log(gamma), "B": B / gamma.unsqueeze(-1), "C": C.contiguous(),
                "D": self.real_feedthrough(D, B, C, diagonal=False)}

    def _install_state_hook(self, module):
        if not getattr(module, _HOOK_FLAG, False):
            module.register_forward_pre_hook(_resize_running_state)
            setattr(module, _HOOK_FLAG, True)

    def rebuild(self, module, reduced):
        values = super().rebuild(module, reduced)
        self._install_state_hook(module)
        return values

    def select_states(self, module, keep):
        values = super().select_states(module, keep)
        self._install_state_hook(module)
        return values

    def after_resize_(self, module):
        _resize_running_state(module)
        self._install_state_hook(module)
