"""Square-root factors of Gramians computed directly (Hammarling's method).

A factor computed from a formed Gramian (eigh or Cholesky of P) loses the small Hankel
singular values: an absolute error ``eps ||P||`` in P becomes a relative error of order
``eps ||P|| / lambda_i`` in the small directions. Hammarling's method solves for the
triangular factor U of ``X = U U^H`` directly, so the factor is accurate to ``eps ||U||``
and the HSVs of ``Lo^H Lc`` agree with SLICOT's to about ``eps * s_1``.

Controllability form used throughout, with T upper triangular (complex Schur factor, or a
diagonal)::

    continuous:  T X + X T^H + M M^H = 0
    discrete:    T X T^H - X + M M^H = 0

Eliminating the last index (``tau = T[k,k]``, ``mu^H`` the last row of M, ``nu = ||mu||``)::

    continuous:  upsilon = nu / sqrt(-2 Re tau),   (T1 + conj(tau) I) u = -(M1 mu + t upsilon^2) / upsilon,
                 M <- M1 - u mu^H / upsilon
    discrete:    upsilon = nu / sqrt(1 - |tau|^2), (I - conj(tau) T1) u = (M1 mu + conj(tau) t upsilon^2) / upsilon,
                 w = T1 u + t upsilon,  M <- M1 H with its first column replaced by
                 sqrt(1 - |tau|^2) w - tau M1 mu / nu   (H unitary, H e1 = mu / nu up to a phase)

The observability factor uses the same code on ``J T^H J`` (J reverses the order), which is
again upper triangular.
"""

import ctypes

import numpy as np
from scipy.linalg import cython_blas

__all__ = ["triangular_factor", "diagonal_factor"]


# --------------------------------------------------------------------------------------
# direct BLAS calls: a leading block T[:k, :k] of a Fortran-ordered matrix is used in
# place through its leading dimension, so no step copies O(k^2) data
# --------------------------------------------------------------------------------------
def _blas(name):
    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    pointer = get_pointer(capsule, get_name(capsule))
    c_int_p = ctypes.POINTER(ctypes.c_int)
    prototype = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, c_int_p,
                                 ctypes.c_void_p, c_int_p, ctypes.c_void_p, c_int_p)
    return prototype(pointer)


_ZTRSV = _blas("ztrsv")
_ZTRMV = _blas("ztrmv")
_UPPER, _NOTRANS, _NONUNIT = b"U", b"N", b"N"


def _trsv(TF, k, x):
    """x <- T[:k, :k]^{-1} x in place (TF Fortran-ordered complex, x contiguous complex)."""
    _ZTRSV(_UPPER, _NOTRANS, _NONUNIT, ctypes.byref(ctypes.c_int(k)), TF.ctypes.data,
           ctypes.byref(ctypes.c_int(TF.shape[0])), x.ctypes.data, ctypes.byref(ctypes.c_int(1)))


def _trmv(TF, k, x):
    """x <- T[:k, :k] x in place."""
    _ZTRMV(_UPPER, _NOTRANS, _NONUNIT, ctypes.byref(ctypes.c_int(k)), TF.ctypes.data,
           ctypes.byref(ctypes.c_int(TF.shape[0])), x.ctypes.data, ctypes.byref(ctypes.c_int(1)))


def _reflect_first_column(M1, mu, nu, first):
    """``M1 H`` with column 0 replaced by ``first``; H is a Householder reflector with H e1 ~ mu/nu."""
    if M1.shape[1] == 1:
        return first[:, None]
    v = mu / nu
    phase = v[0] / abs(v[0]) if v[0] != 0 else 1.0
    x = v.copy()
    x[0] -= -phase          # reflector that maps v to -phase * e1 (no cancellation in x[0])
    x /= np.linalg.norm(x)
    out = M1 - 2.0 * np.outer((M1 * x).sum(axis=1), x.conj())
    out[:, 0] = first
    return out


def triangular_factor(T, M, discrete):
    """Upper-triangular U with ``X = U U^H`` for the controllability-form equation above.

    Parameters
    ----------
    T : ndarray, shape (n, n)
        Complex upper triangular, stable (``Re diag < 0`` or ``|diag| < 1``).
    M : ndarray, shape (n, m)
    discrete : bool

    Returns
    -------
    U : ndarray, shape (n, n), complex128, upper triangular
    """
    n = T.shape[0]
    TF = np.array(T, dtype=np.complex128, order="F")  # own copy: its diagonal is shifted in place
    diagonal = np.diag(TF).copy()
    M = np.array(M, dtype=np.complex128)
    U = np.zeros((n, n), dtype=np.complex128, order="F")
    diagonal_view = TF.ravel(order="K")[::n + 1]     # writable view of TF's diagonal
    for k in range(n - 1, -1, -1):
        tau = diagonal[k]
        mu = M[k].conj()
        M1 = M[:k]
        nu = np.linalg.norm(mu)
        if nu == 0.0:        # nothing enters through this coordinate: u = 0, M unchanged
            M = M1
            continue
        gain = 1.0 - abs(tau) ** 2 if discrete else -2.0 * tau.real
        upsilon = nu / np.sqrt(gain)
        U[k, k] = upsilon
        if k == 0:
            break
        t = TF[:k, k]
        # small mat-vecs as elementwise sums: a threaded BLAS gemv stalls on them under load
        M1mu = (M1 * mu).sum(axis=1)
        if discrete:
            rhs = (M1mu + tau.conjugate() * t * upsilon ** 2) / upsilon
            if tau == 0:
                u = rhs
            else:
                # (I - c T1) u = rhs  <=>  (T1 - I/c) u = -rhs/c, with c = conj(tau)
                c = tau.conjugate()
                diagonal_view[:k] = diagonal[:k] - 1.0 / c
                u = np.ascontiguousarray(-rhs / c)
                _trsv(TF, k, u)
                diagonal_view[:k] = diagonal[:k]
            w = u.copy()
            _trmv(TF, k, w)
            w += t * upsilon
            first = np.sqrt(gain) * w - tau * M1mu / nu
            M = _reflect_first_column(M1, mu, nu, first)
        else:
            diagonal_view[:k] = diagonal[:k] + tau.conjugate()
            u = np.ascontiguousarray(-(M1mu + t * upsilon ** 2) / upsilon)
            _trsv(TF, k, u)
            diagonal_view[:k] = diagonal[:k]
            M = M1 - np.outer(u, mu.conj()) / upsilon
        U[:k, k] = u
    return U


# --------------------------------------------------------------------------------------
# diagonal T: the same recursion, O(n^2 m), array-API and batched
# --------------------------------------------------------------------------------------
def diagonal_factor(xp, lam, M, discrete):
    """Factor ``U`` (..., n, n) with ``X = U U^H`` for ``T = diag(lam)`` (batched, any namespace).

    ``lam`` has shape (..., n), ``M`` (..., n, m). Each step is a handful of vectorised
    operations over the batch, so a stack of layers is factored in one pass.
    """
    n, m = M.shape[-2], M.shape[-1]
    batch = tuple(lam.shape[:-1])
    dtype = M.dtype
    dev = _device(M)
    U = xp.zeros(batch + (n, n), dtype=dtype, device=dev)
    columns = []
    for k in range(n - 1, -1, -1):
        tau = lam[..., k]
        mu = xp.conj(M[..., k, :])                    # (..., m)
        M1 = M[..., :k, :]                            # (..., k, m)
        nu = xp.sqrt(xp.sum(xp.real(mu * xp.conj(mu)), axis=-1))   # (...,)
        active = nu > 0
        safe_nu = xp.where(active, nu, xp.ones_like(nu))
        gain = 1.0 - xp.real(tau * xp.conj(tau)) if discrete else -2.0 * xp.real(tau)
        upsilon = xp.where(active, nu / xp.sqrt(gain), xp.zeros_like(nu))
        safe_ups = xp.where(active, upsilon, xp.ones_like(upsilon))
        M1mu = xp.sum(M1 * mu[..., None, :], axis=-1)            # (..., k)
        head = lam[..., :k]
        ups_c = xp.astype(safe_ups, dtype)[..., None]
        if discrete:
            u = (M1mu / ups_c) / (1.0 - xp.conj(tau)[..., None] * head)
            w = head * u
            first = xp.astype(xp.sqrt(gain), dtype)[..., None] * w \
                - tau[..., None] * M1mu / xp.astype(safe_nu, dtype)[..., None]
            M_next = _diagonal_reflect(xp, M1, mu, safe_nu, first, m)
        else:
            u = -(M1mu / ups_c) / (head + xp.conj(tau)[..., None])
            M_next = M1 - u[..., :, None] * xp.conj(mu)[..., None, :] / ups_c[..., None]
        keep = active[..., None]
        u = xp.where(keep, u, xp.zeros_like(u))
        M = xp.where(keep[..., None], M_next, M1)
        columns.append((k, u, xp.astype(upsilon, dtype)))
    for k, u, upsilon in columns:
        U[..., :k, k] = u
        U[..., k, k] = upsilon
    return U


def _diagonal_reflect(xp, M1, mu, nu, first, m):
    if m == 1:
        return first[..., None]
    dtype = M1.dtype
    v = mu / xp.astype(nu, dtype)[..., None]
    v0 = v[..., 0]
    mag = xp.abs(v0)
    phase = xp.where(mag > 0, v0 / xp.astype(xp.where(mag > 0, mag, xp.ones_like(mag)), dtype),
                     xp.ones_like(v0))
    shift = xp.zeros_like(v)
    shift[..., 0] = phase
    x = v + shift
    norm = xp.sqrt(xp.sum(xp.real(x * xp.conj(x)), axis=-1))
    x = x / xp.astype(norm, dtype)[..., None]
    Mx = xp.sum(M1 * x[..., None, :], axis=-1)          # (..., k)
    out = M1 - 2.0 * Mx[..., :, None] * xp.conj(x)[..., None, :]
    out[..., 0] = first
    return out


def _device(x):
    from ._array import device_of
    return device_of(x)
