"""Square-root Gramian factors of a dense system by a recursive blocked Hammarling method.

One Python iteration per column (:func:`lti_reduce._hammarling.triangular_factor`) costs
far more than its arithmetic below a few hundred states. Here the triangular factor is
computed by recursive halving: the lower-right half first, then one triangular Sylvester
equation (level-3 BLAS, LAPACK ``trsyl`` on small blocks) for the coupling block, then the
upper-left half with an updated right-hand side. Only the leaves (at most :data:`LEAF`
rows) loop in Python.

Continuous-time controllability form, T upper triangular (complex Schur factor), stable::

    T X + X T^H + M M^H = 0,     X = U U^H,  U upper triangular.

Besides U the recursion returns ``Ahat`` (upper triangular, ``diag Ahat = diag T``) and
``Bhat`` with::

    U Ahat = T U,     U Bhat = M,     Ahat + Ahat^H + Bhat Bhat^H = 0.

(For invertible U, ``Ahat = U^-1 T U`` and ``Bhat = U^-1 M``; the three identities define
them without an inverse, so a rank-deficient U, e.g. m = 1, needs no special case.) The
last identity bounds the rows of Bhat: ``|Bhat_i|^2 = -2 Re t_ii``. With
``T = [[T11, T12], [0, T22]]``, ``M = [M1; M2]`` and the triple ``(U22, A22, B22)`` of
``(T22, M2)``::

    T11 U12 + U12 A22^H = -(T12 U22 + M1 B22^H)            (triangular Sylvester)
    M1' = M1 - U12 B22,   (U11, A11, B11) = triple of (T11, M1')
    A12 = -B11 B22^H,     Bhat = [B11; B22]

The recursion is Hammarling's (SLICOT SB03OT eliminates one column at a time the same
way); blocking only regroups its operations. Discrete time is reduced to continuous time
by the Cayley transform ``Tc = (T + I)^-1 (T - I)``, ``Mc = sqrt(2) (T + I)^-1 M``, which
maps ``T X T^H - X + M M^H = 0`` exactly onto ``Tc X + X Tc^H + Mc Mc^H = 0`` (T + I is
invertible for a stable T: every ``|t_ii| < 1``).
"""

import ctypes
import math

import numpy as np
import scipy.linalg as sla
from scipy.linalg import cython_blas
from scipy.linalg.lapack import ztrsyl

__all__ = ["blocked_triangular_factor", "fast_complex_schur"]

#: Largest diagonal block solved row by row in Python.
LEAF = 64
#: Largest Sylvester block handed to LAPACK ``trsyl`` (unblocked, level 2).
SYLVESTER_LEAF = 64


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
_ONE = ctypes.c_int(1)
_ITEM = np.dtype(np.complex128).itemsize
_INTS = [ctypes.c_int(i) for i in range(257)]
_SIZES = [ctypes.byref(i) for i in _INTS]


# --------------------------------------------------------------------------------------
# real Schur form -> complex Schur form without a Python loop over the 2x2 blocks
# --------------------------------------------------------------------------------------
def fast_complex_schur(A):
    """``(T, Z)`` with ``A = Z T Z^H``, T complex upper triangular.

    A real A gets a real Schur form (about a quarter of the complex QR iteration's work);
    each 2x2 block ``[[a, b], [c, d]]`` (complex pair ``l, conj l``) is then triangularised
    by the unitary ``G = [v, w]``, ``v ~ (b, l - a)`` an eigenvector, ``w`` orthogonal to it.
    The G of different blocks act on disjoint row/column pairs, so all are applied at once.
    """
    if np.iscomplexobj(A):
        return sla.schur(A, output="complex")
    T, Z = sla.schur(A, output="real")
    n = T.shape[0]
    top = np.flatnonzero(np.diag(T, -1)) if n > 1 else np.zeros(0, dtype=np.intp)
    T = T.astype(np.complex128)
    Z = Z.astype(np.complex128)
    if top.size == 0:
        return T, Z
    low = top + 1
    a, b, c, d = T[top, top], T[top, low], T[low, top], T[low, low]
    half = (a - d) / 2
    root = np.sqrt(half * half + b * c + 0j)      # b c < 0 for a complex pair: imaginary
    lam = (a + d) / 2 + 1j * np.abs(root.imag) + root.real
    v1, v2 = b, lam - a                           # (T_block - lam) v = 0 from the first row
    size = np.sqrt(np.abs(v1) ** 2 + np.abs(v2) ** 2)
    v1, v2 = v1 / size, v2 / size
    w1, w2 = -np.conj(v2), np.conj(v1)
    # rows: T <- G^H T on each pair of rows; columns: T <- T G, Z <- Z G
    rt, rl = T[top].copy(), T[low]
    T[top] = np.conj(v1)[:, None] * rt + np.conj(v2)[:, None] * rl
    T[low] = np.conj(w1)[:, None] * rt + np.conj(w2)[:, None] * rl
    for X in (T, Z):
        ct, cl = X[:, top].copy(), X[:, low]
        X[:, top] = ct * v1 + cl * v2
        X[:, low] = ct * w1 + cl * w2
    T[low, top] = 0.0           # (G^H T G)_21 = 0 up to rounding; the form is triangular by construction
    T = np.triu(T)
    return T, Z


# --------------------------------------------------------------------------------------
# triangular Sylvester equation  S X + X R^H = W  (S, R upper triangular, complex)
# --------------------------------------------------------------------------------------
def _sylvester(S, R, W):
    k, l = W.shape
    if k <= SYLVESTER_LEAF and l <= SYLVESTER_LEAF:
        X, scale, info = ztrsyl(S, R, W, trana="N", tranb="C")
        if info < 0:
            raise RuntimeError(f"LAPACK ztrsyl failed with info={info}")
        return X / scale if scale != 1.0 else X
    if k >= l:
        h = k // 2
        X2 = _sylvester(S[h:, h:], R, W[h:])
        X1 = _sylvester(S[:h, :h], R, W[:h] - S[:h, h:] @ X2)
        return np.vstack([X1, X2])
    h = l // 2
    X2 = _sylvester(S, R[h:, h:], W[:, h:])
    X1 = _sylvester(S, R[:h, :h], W[:, :h] - X2 @ R[:h, h:].conj().T)
    return np.hstack([X1, X2])


# --------------------------------------------------------------------------------------
# the recursion
# --------------------------------------------------------------------------------------


def _leaf(T, M, U, Ah, Bh):
    """Fill U, Ah, Bh (views) for a small block, one row at a time from the bottom.

    Row j joins the solved rows below it as a 1 x 1 upper-left block of the recursion:
    ``u (tau I + A_t^H) = -(t U_t + m_j B_t^H)`` is solved as the upper-triangular system
    ``(conj(A_t) + tau I) u^T = rhs^T``, so the leaf keeps ``conj(Ah)`` (Fortran order, for
    BLAS ``ztrsv``), ``W = [U; Bh^H]`` (the right-hand side is then one product) and
    ``-Bh`` (the signs fold into the products). Every operation is on a few dozen numbers,
    so the loop's cost is its count of numpy calls, kept small (a batched form over both
    Gramians measured slower: numpy's stacked products cost more per call).
    """
    b, width = M.shape
    diag = T.diagonal()
    roots = (-2.0 * diag.real) ** 0.5
    cdiag = diag.conj()
    W = np.zeros((b + width, b), dtype=np.complex128, order="F")   # [U; Bh^H]
    rows = -np.hstack([T, M])                                      # -[t_j, m_j] against W
    Ac = np.zeros((b, b), dtype=np.complex128, order="F")          # conj(Ah)
    negB = np.zeros((b, width), dtype=np.complex128)               # -Bh
    step = (b + 1) * _ITEM
    diag_view = np.lib.stride_tricks.as_strided(Ac, shape=(b,), strides=(step,))
    diag_view[:] = cdiag
    base = Ac.ctypes.data
    lda = ctypes.byref(_INTS[b])
    one = ctypes.byref(_ONE)
    buffer = np.empty(b, dtype=np.complex128)
    address = buffer.ctypes.data
    roots_list, diag_list = roots.tolist(), diag.tolist()
    for j in range(b - 1, -1, -1):
        root = roots_list[j]
        if j < b - 1:
            t = slice(j + 1, b)
            rhs = rows[j].dot(W[:, t], out=buffer[:b - 1 - j])
            diag_view[t] = cdiag[t] + diag_list[j]
            _ZTRSV(b"U", b"N", b"N", _SIZES[b - 1 - j], base + (j + 1) * step, lda, address, one)
            diag_view[t] = cdiag[t]
            W[j, t] = rhs
            m1 = M[j] + rhs.dot(negB[t])
        else:
            m1 = M[j]
        nu = math.sqrt(np.vdot(m1, m1).real)
        if nu > 1e-150:
            negB[j] = m1 * (-root / nu)
        else:
            nu = _tiny_row(m1, root, negB[j])
        W[j, j] = nu / root
        crow = W[b:, j]
        np.negative(negB[j].conj(), out=crow)
        if j < b - 1:
            Ac[j, t] = negB[t].dot(crow)
    U[...] = W[:b]
    Ah[...] = Ac.conj()
    np.negative(negB, out=Bh)


def _tiny_row(m1, root, out):
    """Norm of a tiny row and ``out = -root m1 / |m1|`` without squaring it into underflow; a
    zero row takes any direction (every row of norm ``sqrt(-2 Re tau)`` keeps the identities)."""
    top = np.max(np.abs(m1)) if m1.size else 0.0
    if top == 0.0:
        out[...] = 0.0
        if out.size:
            out[0] = -root
        return 0.0
    scaled = m1 / top
    size = np.linalg.norm(scaled)
    out[...] = scaled * (-root / size)
    return top * size


def _recurse(T, M, U, Ah, Bh):
    n = T.shape[0]
    if n <= LEAF:
        _leaf(T, M, U, Ah, Bh)
        return
    h = n // 2
    _recurse(T[h:, h:], M[h:], U[h:, h:], Ah[h:, h:], Bh[h:])
    U22, A22, B22 = U[h:, h:], Ah[h:, h:], Bh[h:]
    B22h = B22.conj().T
    rhs = T[:h, h:] @ U22
    rhs += M[:h] @ B22h
    np.negative(rhs, out=rhs)
    U12 = _sylvester(T[:h, :h], A22, rhs)
    U[:h, h:] = U12
    M1 = M[:h] - U12 @ B22
    _recurse(T[:h, :h], M1, U[:h, :h], Ah[:h, :h], Bh[:h])
    np.matmul(Bh[:h], B22h, out=Ah[:h, h:])
    np.negative(Ah[:h, h:], out=Ah[:h, h:])


def triangular_factors(problems, discrete):
    """Upper-triangular factors ``U`` (``X = U U^H``) of several equations of one size at once.

    Parameters
    ----------
    problems : sequence of (T, M)
        T complex upper triangular (n, n), stable (``Re diag < 0``, resp. ``|diag| < 1``);
        M (n, m_i). The equations are ``T X + X T^H + M M^H = 0`` (continuous) or
        ``T X T^H - X + M M^H = 0`` (discrete).
    discrete : bool

    Returns
    -------
    list of ndarray, shape (n, n), complex128, upper triangular

    Notes
    -----
    Same equations and result as :func:`lti_reduce._hammarling.triangular_factor` (one
    column per Python iteration), computed by recursive blocking (module notes).
    """
    n = problems[0][0].shape[0]
    if n == 0:
        return [np.zeros((0, 0), dtype=np.complex128) for _ in problems]
    Ts, Ms = [], []
    eye = np.eye(n)
    for T, M in problems:
        T = np.asarray(T, dtype=np.complex128)
        M = np.asarray(M, dtype=np.complex128)
        if M.shape[1] > n:
            # only M M^H matters: its n-column factor R^H (M^H = Q R) makes every step cheaper
            M = sla.qr(M.conj().T, mode="r", check_finite=False)[0][:n].conj().T
        if discrete:
            shifted = T + eye
            T = np.triu(sla.solve_triangular(shifted, T - eye, check_finite=False))
            M = np.sqrt(2.0) * sla.solve_triangular(shifted, M, check_finite=False)
        Ts.append(T)
        Ms.append(M)
    out = []
    for T, M in zip(Ts, Ms):
        U = np.zeros((n, n), dtype=np.complex128, order="F")
        Ah = np.zeros((n, n), dtype=np.complex128, order="F")
        Bh = np.zeros((n, M.shape[1]), dtype=np.complex128)
        _recurse(T, M, U, Ah, Bh)
        out.append(U)
    return out


def blocked_triangular_factor(T, M, discrete):
    """:func:`triangular_factors` of one equation."""
    return triangular_factors([(T, M)], discrete)[0]
