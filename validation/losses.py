"""Losses of the baselines: knowledge distillation and the Hankel nuclear-norm regulariser.

Knowledge distillation (Hinton et al. 2015), exactly::

    L_KD = alpha * CE(s, y) + (1 - alpha) * T**2 * KL( softmax(t / T) || softmax(s / T) )

with ``s`` the student's logits, ``t`` the teacher's (no gradient), ``y`` the labels, ``CE`` the
mean cross-entropy and ``KL(p || q) = sum_c p_c (log p_c - log q_c)`` averaged over the batch.

Hankel nuclear norm of a complex diagonal discrete system ``(lambda, B, C)``::

    P_ij = (B B^H)_ij / (1 - lambda_i conj(lambda_j))        (controllability Gramian)
    Q_ij = (C^H C)_ij / (1 - conj(lambda_i) lambda_j)        (observability Gramian)
    HSVs = singular values of Q^{1/2} P^{1/2}                 (= sqrt(eig(P Q)))
    ||G||_H,* = sum of the HSVs

computed in complex128. ``P^{1/2}`` is the PSD square root through ``eigh`` with a
custom backward that solves the Sylvester equation ``S dS + dS S = dP`` in the eigenbasis
(``dS_ij = dP_ij / (s_i + s_j)``), which stays finite for repeated eigenvalues (unlike
autograd through ``eigh``'s eigenvectors); ``torch.linalg.svdvals`` has a stable backward.
The regulariser is recomputed from the parameters at every step.
"""

import torch
import torch.nn.functional as F

__all__ = ["kd_loss", "psd_sqrt", "diagonal_gramians", "diagonal_hsv", "lru_system",
           "hankel_nuclear_norm", "modal_energy", "hankel_norm_of_difference"]


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
        return (V * s.to(V.dtype)) @ V.mH

    @staticmethod
    def backward(ctx, G):
        V, s = ctx.saved_tensors
        denom = s[:, None] + s[None, :]
        floor = torch.finfo(s.dtype).eps * torch.clamp(s.max(), min=torch.finfo(s.dtype).tiny)
        K = 1.0 / torch.clamp(denom, min=floor)
        Gt = V.mH @ G @ V
        return V @ (Gt * K.to(Gt.dtype)) @ V.mH


def psd_sqrt(P):
    """Square root of a Hermitian PSD matrix (negative eigenvalues from rounding -> 0), differentiable."""
    return _PSDSqrt.apply(P)


def diagonal_gramians(lam, B, C):
    """Closed-form Gramians ``(P, Q)`` of ``x+ = diag(lam) x + B u, y = C x`` (|lam| < 1)."""
    ll = lam[:, None] * lam.conj()[None, :]
    P = (B @ B.mH) / (1.0 - ll)
    Q = (C.mH @ C) / (1.0 - ll.conj())
    return P, Q


def diagonal_hsv(lam, B, C):
    """Hankel singular values (descending, real) of the complex diagonal system, differentiable."""
    P, Q = diagonal_gramians(lam, B, C)
    return torch.linalg.svdvals(psd_sqrt(Q) @ psd_sqrt(P))


def lru_system(layer, dtype=torch.complex128):
    """``(lambda, B, C)`` of an LRU layer in ``dtype`` (differentiable in its parameters).

    The published parameterisation: ``lambda = exp(-exp(nu_log) + 1j exp(theta_log))``,
    ``B = (B_re + 1j B_im) * exp(gamma_log)[:, None]``, ``C = C_re + 1j C_im``.
    """
    rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
    nu, th = layer.nu_log.to(rdtype), layer.theta_log.to(rdtype)
    lam = torch.exp(torch.complex(-torch.exp(nu), torch.exp(th)))
    B = torch.complex(layer.B_re.to(rdtype), layer.B_im.to(rdtype)) * torch.exp(layer.gamma_log.to(rdtype))[:, None]
    C = torch.complex(layer.C_re.to(rdtype), layer.C_im.to(rdtype))
    return lam.to(dtype), B.to(dtype), C.to(dtype)


def hankel_nuclear_norm(layers):
    """Sum over ``layers`` (LRU modules) of the sum of their HSVs, as a differentiable float64 scalar."""
    total = None
    for layer in layers:
        value = diagonal_hsv(*lru_system(layer)).sum()
        total = value if total is None else total + value
    return total


def modal_energy(lam, B, C):
    """Per-mode score ``sqrt(P_ii Q_ii) = |b_i| |c_i| / (1 - |lambda_i|^2)`` (numpy or torch).

    The HSV of mode i taken alone; it ties an energy to each modal coordinate, so that
    rankings of states can be compared across training (the HSVs themselves have no identity).
    """
    lib = torch if isinstance(lam, torch.Tensor) else __import__("numpy")
    b = (abs(B) ** 2).sum(-1)
    c = (abs(C) ** 2).sum(-2)
    return lib.sqrt(b * c) / (1.0 - abs(lam) ** 2)


def hankel_norm_of_difference(sys1, sys0):
    """``sigma_1(G1 - G0)``: Hankel norm of the difference of two diagonal systems ``(lam, B, C)``.

    Realised as ``A = diag(lam1, lam0)``, ``B = [B1; B0]``, ``C = [C1, -C0]``. By Weyl's inequality
    for singular values of the Hankel operators, ``|sigma_i(G1) - sigma_i(G0)| <= sigma_1(G1 - G0)``.
    """
    (l1, B1, C1), (l0, B0, C0) = sys1, sys0
    lam = torch.cat([l1, l0])
    B = torch.cat([B1, B0], dim=0)
    C = torch.cat([C1, -C0], dim=1)
    return diagonal_hsv(lam, B, C)[0]
