"""The naive published reduction step, re-written as a baseline for ``bench_core.py``.

This is what the public CompreSSM reference code does for one LRU layer (our own code,
written from the description in ``shared/spec/compressm.md`` sections 3 and 5), kept
deliberately naive: every step forms explicit dense matrices.

1. Gramians of the complex diagonal system in closed form, built from a Kronecker
   product of the eigenvalue vector with its conjugate (``vec P = vec(B B^H) / (1 - kron(l, conj l))``),
   and ``A = diag(l)`` formed as a dense matrix.
2. HSVs as ``sqrt(real(eigvals(P Q)))``, NaN turned into 0, sorted descending.
3. Order from the energy fraction tau (sum of HSVs, not of squares).
4. Balancing transform ``T`` from a matrix square root (``sqrtm``) or a Cholesky factor of
   ``P + eps I``, then an explicit ``inv(T)``; ``T^{-1} A T``, ``T^{-1} B``, ``C T``, truncation.
5. Re-diagonalisation of the reduced A: ``eig``, then an explicit ``inv`` of the
   eigenvector matrix to map B and C.

The published function's default balancing is the Cholesky variant
(``shared/spec/compressm.md`` section 5), so ``method='chol'`` is the default here too;
``'sqrtm'`` is the slower alternative it offers.

Differences from the published code, on purpose:

* it runs in the dtype passed in (complex128 for a fair timing; complex64 is what the
  published code runs in);
* the Cholesky variant uses conjugate transposes (the published one uses plain
  transposes, which is wrong for complex systems but costs the same).

Nothing here is part of ``lti_reduce``; it exists only to be timed against it.
"""

import numpy as np
import scipy.linalg as sla

__all__ = ["kron_gramian", "naive_hsv", "naive_reduce_layer", "naive_reduce_layers"]

EPS_REGULARISATION = 1e-9


def kron_gramian(lam, X):
    """Solve ``P - diag(lam) P diag(lam)^H = X`` with an explicit Kronecker denominator."""
    denominator = 1 - np.kron(lam, np.conj(lam))          # (n*n,), entry i*n + j = l_i conj(l_j)
    return (X.reshape(-1) / denominator).reshape(X.shape)


def naive_hsv(P, Q):
    """``sqrt(real(eigvals(P Q)))`` with NaN -> 0, descending (the published HSVs)."""
    ev = np.linalg.eigvals(P @ Q)
    hsv = np.nan_to_num(np.sqrt(np.real(ev)), nan=0.0)
    return np.sort(hsv)[::-1]


def _energy_order(hsv, tau):
    """Smallest r with ``sum_{i<=r} s_i >= (1 - tau) sum_i s_i``."""
    c = np.cumsum(hsv)
    return int(np.searchsorted(c, (1 - tau) * c[-1]) + 1)


def _balancing_transform(P, Q, method):
    """Dense balancing transform T and its explicit inverse (``T^{-1} P T^{-H} = T^H Q T = S``)."""
    n = P.shape[0]
    eye = np.eye(n, dtype=P.dtype)
    if method == "sqrtm":
        R = sla.sqrtm(P + EPS_REGULARISATION * eye).astype(P.dtype, copy=False)
        U, sd, _ = np.linalg.svd(R @ Q @ R)                # sd = s^2
        T = R @ U @ np.diag(sd ** -0.25).astype(P.dtype)
    elif method == "chol":
        Lp = np.linalg.cholesky(P + EPS_REGULARISATION * eye)
        Lq = np.linalg.cholesky(Q + EPS_REGULARISATION * eye)
        U, s, Vh = np.linalg.svd(Lq.conj().T @ Lp)
        T = Lp @ Vh.conj().T @ np.diag(s ** -0.5).astype(P.dtype)
    else:
        raise ValueError(f"method must be 'sqrtm' or 'chol', got {method!r}")
    return T, np.linalg.inv(T)                             # the explicit inverse


def naive_reduce_layer(lam, B, C, tau, method="chol", dtype=np.complex128):
    """One layer, as published. Returns (hsv, r, lam_r, B_r, C_r) in ``dtype``."""
    lam = np.asarray(lam, dtype=dtype)
    B = np.asarray(B, dtype=dtype)
    C = np.asarray(C, dtype=dtype)
    A = np.diag(lam)                                       # explicit dense A
    P = kron_gramian(lam, B @ B.conj().T)
    Q = kron_gramian(np.conj(lam), C.conj().T @ C)
    hsv = naive_hsv(P, Q)
    r = _energy_order(hsv, tau)
    T, T_inv = _balancing_transform(P, Q, method)
    A_b, B_b, C_b = T_inv @ A @ T, T_inv @ B, C @ T
    A_r, B_r, C_r = A_b[:r, :r], B_b[:r], C_b[:, :r]
    lam_r, V = np.linalg.eig(A_r)
    V_inv = np.linalg.inv(V)                               # the explicit inverse
    return hsv, r, lam_r, V_inv @ B_r, C_r @ V


def naive_reduce_layers(lams, Bs, Cs, tau, method="chol", dtype=np.complex128):
    """Loop over layers (how the published code treats a stack of layers)."""
    return [naive_reduce_layer(lams[i], Bs[i], Cs[i], tau, method, dtype) for i in range(len(lams))]
