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

Eliminating the last index (``tau = T[k,k]``, ``t = T[:k,k]``, ``mu^H`` the last row of M,
``nu = ||mu||``, ``y = M1 mu / nu``, ``g = -2 Re tau`` (continuous) or ``1 - |tau|^2``
(discrete), ``S = T1 + conj(tau) I`` (continuous) or ``I - conj(tau) T1`` (discrete))::

    upsilon = nu / sqrt(g)                                  (diagonal entry of U)
    continuous:  u = -S^{-1} (sqrt(g) y + upsilon t)         (column above it)
    discrete:    u =  S^{-1} (sqrt(g) y + conj(tau) upsilon t)
    M <- M1 H with its first column replaced by S^{-1} ((T1 - tau I) y + nu t)

where H is unitary with ``H e1 = mu / nu`` up to a phase. This update is the textbook
``M1 - u mu^H / upsilon`` rearranged so that no difference of nearly equal terms is formed:
for eigenvalues close to tau the textbook form cancels and loses the small HSVs.

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


def _unit(v, norm):
    """``v / norm`` part by part: a complex division by a subnormal norm overflows."""
    return v.real / norm + 1j * (v.imag / norm)


def _scaled_norm(v):
    """2-norm without squaring tiny entries into underflow (the RHS decays like a Blaschke
    product, 1e-160 and below after a few hundred steps)."""
    top = np.max(np.abs(v))
    return top * np.sqrt(np.sum((np.abs(v) / top) ** 2)) if top > 0 else 0.0


def _reflect_first_column(M1, mu, nu, first):
    """``M1 H`` with column 0 replaced by ``first``; H is a Householder reflector with H e1 ~ mu/nu."""
    if M1.shape[1] == 1:
        return first[:, None]
    v = _unit(mu, nu)
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
    diagonal_view = TF.ravel(order="K")[::n + 1]     # writable view of TF's diagonal
    M = np.array(M, dtype=np.complex128)
    U = np.zeros((n, n), dtype=np.complex128, order="F")

    def solve_shifted(k, rhs, tau):
        """S^{-1} rhs with S = T1 + conj(tau) I (continuous) or I - conj(tau) T1 (discrete)."""
        x = np.array(rhs, dtype=np.complex128)
        if discrete:
            if tau == 0:
                return x
            c = tau.conjugate()
            diagonal_view[:k] = diagonal[:k] - 1.0 / c      # (I - c T1) = -c (T1 - I/c)
            x *= -1.0 / c
        else:
            diagonal_view[:k] = diagonal[:k] + tau.conjugate()
        _trsv(TF, k, x)
        diagonal_view[:k] = diagonal[:k]
        return x

    for k in range(n - 1, -1, -1):
        tau = diagonal[k]
        mu = M[k].conj()
        M1 = M[:k]
        nu = _scaled_norm(mu)
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
        y = (M1 * _unit(mu, nu)).sum(axis=1)          # M1 mu / nu
        if discrete:
            u = solve_shifted(k, np.sqrt(gain) * y + tau.conjugate() * upsilon * t, tau)
        else:
            u = -solve_shifted(k, np.sqrt(gain) * y + upsilon * t, tau)
        U[:k, k] = u
        # the new right-hand-side column S^{-1} [(T1 - tau I) y + nu t], with (T1 - tau I)
        # applied through a shifted diagonal: written as M1 - (correction) it would cancel
        # catastrophically for eigenvalues close to tau and lose the small HSVs
        diagonal_view[:k] = diagonal[:k] - tau
        shifted = np.ascontiguousarray(y)
        _trmv(TF, k, shifted)
        diagonal_view[:k] = diagonal[:k]
        first = solve_shifted(k, shifted + nu * t, tau)
        M = _reflect_first_column(M1, mu, nu, first)
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
        magnitude = xp.abs(mu)
        top = xp.max(magnitude, axis=-1)
        safe_top = xp.where(top > 0, top, xp.ones_like(top))
        nu = top * xp.sqrt(xp.sum((magnitude / safe_top[..., None]) ** 2, axis=-1))  # no underflow
        active = nu > 0
        safe_nu = xp.where(active, nu, xp.ones_like(nu))
        gain = 1.0 - xp.real(tau * xp.conj(tau)) if discrete else -2.0 * xp.real(tau)
        upsilon = xp.where(active, nu / xp.sqrt(gain), xp.zeros_like(nu))
        safe_ups = xp.where(active, upsilon, xp.ones_like(upsilon))
        v = _diagonal_unit(xp, mu, safe_nu[..., None])
        y = xp.sum(M1 * v[..., None, :], axis=-1)     # M1 mu / nu, (..., k)
        head = lam[..., :k]
        root_gain = xp.astype(xp.sqrt(gain), dtype)[..., None]
        if discrete:
            S = 1.0 - xp.conj(tau)[..., None] * head
            u = root_gain * y / S
        else:
            S = head + xp.conj(tau)[..., None]
            u = -root_gain * y / S
        first = (head - tau[..., None]) * y / S      # S^{-1} (T1 - tau I) y, no cancellation
        M_next = _diagonal_reflect(xp, M1, mu, safe_nu, first, m)
        keep = active[..., None]
        u = xp.where(keep, u, xp.zeros_like(u))
        M = xp.where(keep[..., None], M_next, M1)
        columns.append((k, u, xp.astype(upsilon, dtype)))
    for k, u, upsilon in columns:
        U[..., :k, k] = u
        U[..., k, k] = upsilon
    return U


def _diagonal_unit(xp, v, norm):
    """``v / norm`` part by part (see :func:`_unit`)."""
    if xp.isdtype(v.dtype, "complex floating"):
        return xp.real(v) / norm + 1j * (xp.imag(v) / norm)
    return v / norm


def _diagonal_reflect(xp, M1, mu, nu, first, m):
    if m == 1:
        return first[..., None]
    dtype = M1.dtype
    v = _diagonal_unit(xp, mu, nu[..., None])
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
