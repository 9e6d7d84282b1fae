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

Dense systems are factored by the recursively blocked form of this recursion
(:mod:`lti_reduce._blocked_factor`, one Python iteration per row of a small leaf instead of
one per column of the whole matrix); :func:`triangular_factor` stays as the column-by-column
reference that the tests compare it with (tests/core/test_hammarling_blocked.py).
"""

import ctypes

import numpy as np
from scipy.linalg import cython_blas

__all__ = ["triangular_factor", "diagonal_factor"]

#: Run the diagonal recursion of torch tensors on host numpy arrays: zero-copy views of CPU
#: tensors, one copy each way for an accelerator's. The loop is about 35 tiny operations per
#: state and factor: on a GPU each is a kernel launch, on the host a few microseconds. The
#: tests switch it off to exercise the pure array-API path (which the meta device and tensors
#: that require grad always take).
HOST_FAST_PATH = True


def _host_route(lam, M):
    """Whether :func:`diagonal_factor` may run on host numpy copies of ``lam`` and ``M``."""
    if not HOST_FAST_PATH or any(getattr(a, "requires_grad", False) for a in (lam, M)):
        return False
    dev = _device(M)
    if str(dev) == "cpu":
        return True
    # torch on an accelerator: two transfers instead of the loop's kernel launches; not the
    # meta device (shapes only, no values to copy)
    return hasattr(M, "detach") and getattr(dev, "type", None) not in (None, "meta")


# --------------------------------------------------------------------------------------
# direct BLAS calls: a leading block T[:k, :k] of a Fortran-ordered matrix is used in
# place through its leading dimension, so no step copies O(k^2) data
# --------------------------------------------------------------------------------------
def blas_function(name):
    """ctypes handle of the BLAS routine ``name`` (trsv/trmv signature) from scipy's cython_blas."""
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


_ZTRSV = blas_function("ztrsv")
_ZTRMV = blas_function("ztrmv")
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

    Notes
    -----
    With T diagonal, ``t = 0`` and ``S`` is elementwise, so a step is O(k m). Two facts keep
    the loop short: (1) any unit vector v may stand for ``mu / nu`` (the split
    ``Gram(T1, M1) = g S^{-1} M1 v v^H M1^H S^{-H} + Gram(T1, M1 with its v-component
    replaced by S^{-1}(T1 - tau) M1 v)`` holds for every unit v, and only the terms
    ``X12 = u upsilon``, ``X22 = upsilon^2`` depend on mu), so a negligible mu (below
    1e-150 after scaling M to unit size) takes v = e1 and upsilon = 0 instead of an
    inaccurate direction, and for m = 1 the phase v = 1 is used with the diagonal entry
    turned by the same phase; (2) for m = 1 the update is the elementwise product with the
    Blaschke factor ``(lam - tau) / S``, formed without cancellation; for m > 1 it is the
    rank-one update ``M1 + (first - y) v^H``, accurate to ``eps ||M1_i||`` per row.
    """
    from ._array import is_numpy, to_numpy
    if is_numpy(xp):
        xp = np                                        # plain numpy: far less per-call overhead
    elif _host_route(lam, M):
        # the same loop on host numpy arrays (zero-copy views of CPU tensors, one transfer each
        # way on an accelerator); the result goes back to the input's namespace and device
        return xp.asarray(diagonal_factor(np, to_numpy(lam), to_numpy(M), discrete), device=_device(M))
    n, m = M.shape[-2], M.shape[-1]
    if n == 0:      # a static gain: the factor of no states
        return xp.zeros(tuple(lam.shape[:-1]) + (0, 0), dtype=M.dtype, device=_device(M))
    if m > n:
        # only M M^H matters: an n-column factor of it (M^H = Q R, M M^H = R^H R) makes
        # every step O(k n) instead of O(k m)
        M = xp.conj(xp.matrix_transpose(xp.linalg.qr(xp.conj(xp.matrix_transpose(M)))[1]))
        m = n
    batch = tuple(lam.shape[:-1])
    dtype = M.dtype
    dev = _device(M)
    # scale M to unit size so that the negligible-mu threshold below is relative
    scale = xp.max(xp.reshape(xp.abs(M), batch + (-1,)), axis=-1)
    scale = xp.where(scale > 0, scale, xp.ones_like(scale))
    M = M / xp.astype(scale, dtype)[..., None, None]
    gain = 1.0 - xp.real(lam * xp.conj(lam)) if discrete else -2.0 * xp.real(lam)
    root = xp.astype(xp.sqrt(gain), dtype)
    lam_c = xp.conj(lam)
    U = xp.zeros(batch + (n, n), dtype=dtype, device=dev)
    if m > 1:
        e1 = xp.zeros((m,), dtype=dtype, device=dev)
        e1[0] = 1.0
    for k in range(n - 1, -1, -1):
        tau = lam[..., k:k + 1]                                  # (..., 1)
        if m == 1:
            # v = 1 stands for the phase mu/nu; the column (u, upsilon) turns by the same phase
            U[..., k, k] = M[..., k, 0] / root[..., k]
        else:
            mu = xp.conj(M[..., k, :])                          # (..., m)
            nu = xp.sqrt(xp.sum(xp.real(mu * xp.conj(mu)), axis=-1))  # (...,)
            significant = nu > 1e-150
            U[..., k, k] = xp.astype(xp.where(significant, nu, xp.zeros_like(nu)), dtype) / root[..., k]
        if k == 0:
            break
        M1 = M[..., :k, :]
        head = lam[..., :k]
        if m == 1:
            y = M1[..., 0]
        else:
            inverse = xp.where(significant, 1.0 / xp.where(significant, nu, xp.ones_like(nu)),
                               xp.zeros_like(nu))
            v = mu * xp.astype(inverse, dtype)[..., None] \
                + xp.astype(~significant, dtype)[..., None] * e1
            y = (M1 @ v[..., :, None])[..., 0]                  # (..., k)
        S = 1.0 - lam_c[..., k:k + 1] * head if discrete else head + lam_c[..., k:k + 1]
        y_over_S = y / S
        u = root[..., k:k + 1] * y_over_S
        U[..., :k, k] = u if discrete else -u
        first = (head - tau) * y_over_S                         # S^{-1} (T1 - tau I) y
        if m == 1:
            M = first[..., None]
        else:
            M = M1 + (first - y)[..., None] * xp.conj(v)[..., None, :]
    return U * xp.astype(scale, dtype)[..., None, None]


def _device(x):
    from ._array import device_of
    return device_of(x)
