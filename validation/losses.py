"""Losses of the baselines: knowledge distillation and the Hankel nuclear-norm regulariser.

Knowledge distillation (Hinton et al. 2015), exactly::

    L_KD = alpha * CE(s, y) + (1 - alpha) * T**2 * KL( softmax(t / T) || softmax(s / T) )

with ``s`` the student's logits, ``t`` the teacher's (no gradient), ``y`` the labels, ``CE`` the
mean cross-entropy and ``KL(p || q) = sum_c p_c (log p_c - log q_c)`` averaged over the batch.

The Hankel nuclear-norm regulariser (the sum of a layer's Hankel singular values) must be
*differentiable*, which the core's square-root HSVs (:func:`lti_reduce.hankel_singular_values`,
computed on the host) are not. For a complex diagonal discrete system ``(lambda, B, C)``::

    P_ij = (B B^H)_ij / (1 - lambda_i conj(lambda_j))        (controllability Gramian)
    Q_ij = (C^H C)_ij / (1 - conj(lambda_i) lambda_j)        (observability Gramian)
    ||G||_H,* = sum of the singular values of Q^{1/2} P^{1/2}

in complex128. This route loses the *small* HSVs to rounding (their sum, the regulariser,
is accurate to ``eps * sigma_1 * n``), so it serves the loss only: every HSV that is
analysed or reported comes from the core. ``P^{1/2}`` is the PSD square root through
``eigh`` with a custom backward that solves the Sylvester equation ``S dS + dS S = dP`` in
the eigenbasis (``dS_ij = dP_ij / (s_i + s_j)``), which stays finite for repeated
eigenvalues; ``torch.linalg.svdvals`` has a stable backward.
"""

import torch
import torch.nn.functional as F

from .errors import ConfigError

__all__ = ["kd_loss", "psd_sqrt", "diagonal_gramians", "diagonal_hankel_nuclear_norm",
           "differentiable_system", "hankel_nuclear_norm_regulariser"]


def kd_loss(student_logits, teacher_logits, targets, alpha=0.5, temperature=2.0):
    """``alpha*CE(s, y) + (1-alpha)*T^2*KL(softmax(t/T) || softmax(s/T))`` (batch mean)."""
    T = float(temperature)
    ce = F.cross_entropy(student_logits, targets)
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=-1),
                  F.log_softmax(teacher_logits.detach() / T, dim=-1),
                  log_target=True, reduction="batchmean")
    return alpha * ce + (1.0 - alpha) * T * T * kl


class _PSDSqrt(torch.autograd.Function):
    @staticmethod
    def forward(ctx, P):
        P = 0.5 * (P + P.mH)
        w, V = torch.linalg.eigh(P)
        s = torch.sqrt(torch.clamp(w, min=0.0))
        ctx.save_for_backward(V, s)
        return (V * s.to(V.dtype).unsqueeze(-2)) @ V.mH

    @staticmethod
    def backward(ctx, G):
        V, s = ctx.saved_tensors
        denom = s.unsqueeze(-1) + s.unsqueeze(-2)
        top = torch.clamp(s.amax(-1, keepdim=True), min=torch.finfo(s.dtype).tiny).unsqueeze(-1)
        K = 1.0 / torch.maximum(denom, torch.finfo(s.dtype).eps * top)
        Gt = V.mH @ G @ V
        return V @ (Gt * K.to(Gt.dtype)) @ V.mH


def psd_sqrt(P):
    """Square root of Hermitian PSD matrices (..., n, n) (negative rounding eigenvalues -> 0), differentiable."""
    return _PSDSqrt.apply(P)


def diagonal_gramians(lam, B, C):
    """Closed-form Gramians ``(P, Q)`` of ``x+ = diag(lam) x + B u, y = C x`` (|lam| < 1), batched."""
    ll = lam.unsqueeze(-1) * lam.conj().unsqueeze(-2)
    P = (B @ B.mH) / (1.0 - ll)
    Q = (C.mH @ C) / (1.0 - ll.conj())
    return P, Q


def diagonal_hankel_nuclear_norm(lam, B, C):
    """Sum of the HSVs of diagonal systems ``lam (..., n), B (..., n, m), C (..., p, n)``, differentiable.

    Summed over the batch dimensions too (a channel-batched layer is block diagonal).
    """
    P, Q = diagonal_gramians(lam, B, C)
    return torch.linalg.svdvals(psd_sqrt(Q) @ psd_sqrt(P)).sum()


def differentiable_system(layer, dtype=torch.complex128):
    """``(lambda, B, C)`` of a built-in diagonal layer from its own ``discrete()``, with gradients.

    The layer's ``discrete()`` returns ``(log lambda, B, C)``: shapes (n,), (n, h), (h, n)
    for a MIMO layer (LRU, S5) or (h, n) each for a channel-batched one (S4D, whose
    channels become a batch of SISO systems). This is the system the adapter reduces
    (``reduction_system``), before ``torch.no_grad``.

    Raises
    ------
    ConfigError
        A layer without ``discrete()`` (e.g. DenseLTI): the regulariser needs a diagonal layer.
    """
    if not callable(getattr(layer, "discrete", None)):
        raise ConfigError(f"the Hankel nuclear-norm regulariser needs a diagonal layer with a differentiable "
                          f"discrete() (LRU, S5, S4D); {type(layer).__name__} has none")
    log_lam, B, C = layer.discrete()
    lam = torch.exp(log_lam.to(dtype))
    B, C = B.to(dtype), C.to(dtype)
    if log_lam.ndim == 2:                               # (h, n): h SISO channels
        return lam, B.unsqueeze(-1), C.unsqueeze(-2)
    return lam, B, C


def hankel_nuclear_norm_regulariser(layers):
    """Sum over ``layers`` of the sum of their HSVs, a differentiable float64 scalar (the loss term)."""
    total = None
    for layer in layers:
        value = diagonal_hankel_nuclear_norm(*differentiable_system(layer))
        total = value if total is None else total + value
    return total
