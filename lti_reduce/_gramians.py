"""Controllability and observability Gramians and their square-root factors.

Equations (``^H`` is the conjugate transpose; the same for real systems)::

    continuous, kind='c':  A P + P A^H + B B^H = 0          P = int_0^inf e^{At} B B^H e^{A^H t} dt
    continuous, kind='o':  A^H Q + Q A + C^H C = 0          Q = int_0^inf e^{A^H t} C^H C e^{At} dt
    discrete,   kind='c':  A P A^H - P + B B^H = 0          P = sum_{k>=0} A^k B B^H (A^H)^k
    discrete,   kind='o':  A^H Q A - Q + C^H C = 0          Q = sum_{k>=0} (A^H)^k C^H C A^k

Finite horizon: discrete ``P_L = sum_{k<L} ... = P - A^L P (A^H)^L``; continuous
``P_T = int_0^T ... = P - e^{AT} P e^{A^H T}`` (likewise for Q).
"""

import math
import numbers

import numpy as np
import scipy.linalg as sla

from ._array import is_numpy, to_numpy, conj_t, device_of
from ._errors import InvalidParameterError, UnstableSystemError, NonFiniteError
from . import _hammarling
from ._hammarling import diagonal_factor
from ._blocked_factor import fast_complex_schur, schur_gramian_factors
from ._real_schur_factor import RealSchurForm, real_gramian_factors, real_schur
from . import _real_schur_factor
from ._statespace import DiagonalStateSpace, as_statespace, unstable_eigenvalues

__all__ = ["gramian"]


# --------------------------------------------------------------------------------------
# argument checks shared by the public functions
# --------------------------------------------------------------------------------------
def _check_kind(kind):
    if kind not in ("c", "o"):
        raise InvalidParameterError(f"kind must be 'c' (controllability) or 'o' (observability), got {kind!r}")
    return kind


def check_horizon(horizon, discrete):
    if horizon is None:
        return None
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Real) or not np.isfinite(horizon) \
            or horizon <= 0:
        raise InvalidParameterError(f"horizon must be None (infinite) or a positive number, got {horizon!r}")
    if discrete:
        if int(horizon) != horizon:
            raise InvalidParameterError(f"a discrete-time horizon counts samples and must be a positive "
                                        f"integer, got {horizon!r}")
        return int(horizon)
    return float(horizon)


# Outside this range of max |A_ij| the eigenvalue and Schur routines (scipy's rsf2csf,
# eigvals) return HSVs and norms wrong by O(1) (issue 8 item 2: from 1e138 and 1e-140 on);
# 1e120 keeps a margin of 1e18 below the first failure measured.
SCALE_LIMIT = 1e120


def check_scale(system, caller):
    """Raise :class:`InvalidParameterError` if A's entries are too large or too small to compute with."""
    lam = to_numpy(system.eigenvalues if isinstance(system, DiagonalStateSpace) else system.A)
    if lam.size == 0:
        size = 0.0
    elif np.iscomplexobj(lam):
        size = float(np.max(np.abs(lam)))
    else:       # without the temporary |A|
        size = max(float(lam.max()), -float(lam.min()))
    if size > SCALE_LIMIT or 0 < size < 1 / SCALE_LIMIT:
        raise InvalidParameterError(
            f"{caller}: A has entries of size {size:.3g}, outside the range [{1 / SCALE_LIMIT:g}, {SCALE_LIMIT:g}] "
            "where the eigenvalue computations are reliable; rescale time first (continuous time: "
            "hsv(A / a, B, C) = a * hsv(A, B, C) and ||G(A / a)||_inf = a * ||G(A)||_inf)")


def raise_unstable(bad, discrete, what="the system", alpha=None):
    if alpha is None:
        alpha = 1.0 if discrete else 0.0
    region = f"|z| < {alpha:g}" if discrete else f"Re(s) < {alpha:g}"
    shown = ", ".join(f"{complex(v):.6g}" for v in bad[:8]) + (" ..." if len(bad) > 8 else "")
    raise UnstableSystemError(
        f"{what} has {len(bad)} eigenvalue(s) outside the stability region {region} (unstable poles): {shown}. "
        "Gramians and balanced truncation need a stable system; pass unstable='keep' to "
        "balanced_truncation to keep the unstable part unreduced, or a finite horizon.")


# --------------------------------------------------------------------------------------
# positive semidefinite square-root factor (shared by the dense and the diagonal path)
# --------------------------------------------------------------------------------------
def psd_factor(xp, P, name="Gramian", noise=None):
    """Square-root factor ``L`` with ``P = L L^H`` of a Hermitian PSD matrix (batched).

    Eigenvalues of P below ``n * eps * max(lambda_max, noise)`` are rounding noise of a
    rank-deficient Gramian (m < n, or an uncontrollable/unobservable direction): their
    columns of L are exactly zero, which gives exact-zero Hankel singular values
    downstream. A negative eigenvalue beyond that level means P is not a Gramian of a
    stable system and raises. ``noise`` is the size of the data P was computed from when
    that is larger than P (a finite-horizon Gramian formed as ``P - A^L P A^LH``).

    Returns
    -------
    L : array, shape (..., n, n)
    rank : array of int, shape (...)
    """
    n = P.shape[-1]
    w, U = xp.linalg.eigh(P)
    top = xp.max(xp.abs(w), axis=-1, keepdims=True)
    eps = float(np.finfo(np.float64).eps)
    level = max(n, 1) * eps * (top if noise is None else xp.maximum(top, xp.asarray(noise, dtype=top.dtype)))
    if bool(xp.any(w < -1e3 * level)):
        worst = float(xp.min(w / xp.where(top > 0, top, xp.ones_like(top))))
        raise UnstableSystemError(
            f"the {name} is not positive semidefinite (smallest eigenvalue {worst:.3g} relative to the "
            "largest): the system is unstable or too ill-conditioned for a Gramian")
    keep = w > level
    root = xp.sqrt(xp.where(keep, w, xp.zeros_like(w)))
    L = U * xp.astype(root, U.dtype)[..., None, :]
    rank = xp.sum(xp.astype(keep, xp.int64), axis=-1)
    return L, rank


def _hermitian_part(xp, P):
    return (P + conj_t(xp, P)) / 2


# --------------------------------------------------------------------------------------
# diagonal systems: closed form, array-API (numpy, torch, ...)
# --------------------------------------------------------------------------------------
def diagonal_gramian(system, kind, horizon=None, hermitian=True):
    """Closed-form Gramian of a DiagonalStateSpace, shape (..., n, n), in its namespace.

    ``P_ij = (B B^H)_ij / (1 - l_i conj(l_j))`` (discrete), ``-(B B^H)_ij / (l_i + conj(l_j))``
    (continuous); ``Q`` likewise with ``C^H C`` and ``conj(l_i) l_j``. Cost O(n^2 (m + p)).
    ``hermitian=False`` is for a consumer that reads the lower triangle only (a Cholesky
    factorisation): no symmetrisation, and on numpy only that triangle of ``B B^H``
    (``C^H C``) is formed, by BLAS ``herk`` (half the work); the upper one is then zero.
    """
    xp = system._xp
    lam = xp.astype(system.eigenvalues, xp.complex128, copy=False)
    if kind == "c":
        X = xp.astype(system.B, xp.complex128, copy=False)
        outer = _lower_outer(X, False) if not hermitian and is_numpy(xp) else X @ conj_t(xp, X)
        left, right = lam[..., :, None], xp.conj(lam)[..., None, :]
    else:
        X = xp.astype(system.C, xp.complex128, copy=False)
        outer = _lower_outer(X, True) if not hermitian and is_numpy(xp) else conj_t(xp, X) @ X
        left, right = xp.conj(lam)[..., :, None], lam[..., None, :]
    if system.is_discrete:
        prod = left * right
        denom = 1 - prod
        if horizon is None:
            P = outer / denom
        else:
            # sum_{k<L} prod^k, written so that prod == 1 exactly gives L instead of 0/0
            safe = xp.where(denom == 0, xp.ones_like(denom), denom)
            geometric = xp.where(denom == 0, xp.full_like(denom, float(horizon)),
                                 (1 - prod ** horizon) / safe)
            P = outer * geometric
    else:
        total = left + right
        if horizon is None:
            P = -outer / total
        else:
            safe = xp.where(total == 0, xp.ones_like(total), total)
            integral = xp.where(total == 0, xp.full_like(total, float(horizon)),
                                xp.expm1(total * horizon) / safe)
            P = outer * integral
    if hermitian:
        P = _hermitian_part(xp, P)
    real = not system.is_complex
    return xp.real(P) if real else P


def _lower_outer(X, adjoint_first):
    """Lower triangle of ``X X^H`` (or ``X^H X``), upper triangle zero, by BLAS ``zherk`` (numpy, batched)."""
    herk, = sla.get_blas_funcs(("herk",), (X,))
    flat = X.reshape((math.prod(X.shape[:-2]),) + X.shape[-2:])
    k = X.shape[-1] if adjoint_first else X.shape[-2]
    out = np.zeros((flat.shape[0], k, k), dtype=np.complex128)
    if 0 in X.shape:          # no states, inputs or outputs: an empty or zero Gramian
        return out.reshape(X.shape[:-2] + (k, k))
    for i in range(flat.shape[0]):
        out[i] = herk(1.0, flat[i], trans=2 if adjoint_first else 0, lower=1)
    return out.reshape(X.shape[:-2] + (k, k))


# --------------------------------------------------------------------------------------
# dense systems: one Schur form, Bartels-Stewart / Stein recursion on it (numpy/scipy)
# --------------------------------------------------------------------------------------
class SchurLyapunov:
    """One Schur form of A reused for both Gramians.

    Real systems use the real Schur form ``A = Z T Z^T`` (T quasi-triangular) and stay in
    real arithmetic; complex systems the complex one (T triangular). Continuous time
    solves with LAPACK ``trsyl``, discrete time with a blocked Stein recursion.
    """

    def __init__(self, A, discrete):
        self.discrete = discrete
        self.real = not np.iscomplexobj(A)
        if self.real:
            self.T, self.Z = sla.schur(A, output="real")
        else:
            self.T, self.Z = sla.schur(A.astype(np.complex128), output="complex")
        self.eigenvalues = quasi_triangular_eigenvalues(self.T)

    def solve(self, rhs, kind):
        """Solve the Lyapunov/Stein equation of ``kind`` with ``rhs`` (= B B^H or C^H C) in the original basis."""
        Z = self.Z
        W = Z.conj().T @ rhs @ Z
        X = self._stein(W, kind) if self.discrete else self._lyap(W, kind)
        P = Z @ X @ Z.conj().T
        return (P + P.conj().T) / 2

    def _lyap(self, W, kind):
        """Solve T X + X T^H = -W (kind 'c') or T^H X + X T = -W (kind 'o')."""
        return self._triangular(-W, kind, discrete=False)

    def _stein(self, W, kind):
        """Solve X - T X T^H = W (kind 'c') or X - T^H X T = W (kind 'o')."""
        return self._triangular(W, kind, discrete=True)

    def _triangular(self, W, kind, discrete):
        T = self.T
        if kind == "c":
            return _sylvester_blocked(T, T, W, discrete)
        # the kind-'o' equations use T^H in place of T; reversing rows and columns
        # (J T^H J is upper (quasi-)triangular) brings them to the kind-'c' form
        S = np.ascontiguousarray(T.conj().T[::-1, ::-1])
        X = _sylvester_blocked(S, S, np.ascontiguousarray(W[::-1, ::-1]), discrete)
        return X[::-1, ::-1]


_BLOCK = 48


def _split_point(T, h):
    """A split index near h that does not cut a 2x2 diagonal block of a real Schur factor."""
    return h + 1 if h < T.shape[0] and T[h, h - 1] != 0 else h


def _sylvester_blocked(S, R, W, discrete):
    """Solve ``X - S X R^H = W`` (discrete) or ``S X + X R^H = W`` (continuous).

    S, R are upper (quasi-)triangular Schur factors. Recursive blocking (halve the larger
    dimension, update the other half with one matrix product) keeps the O(k l (k + l))
    work in level-3 BLAS; blocks never cut a 2x2 block of a real Schur factor, so real
    systems stay in real arithmetic. Small blocks: LAPACK ``trsyl`` (continuous) or a
    column recursion (discrete).
    """
    k, l = W.shape
    if k <= _BLOCK and l <= _BLOCK:
        return _stein_small(S, R, W) if discrete else _trsyl(S, R, W)
    sign = -1.0 if discrete else 1.0
    if k >= l:
        h = _split_point(S, k // 2)
        X2 = _sylvester_blocked(S[h:, h:], R, W[h:], discrete)
        update = S[:h, h:] @ (X2 @ R.conj().T) if discrete else S[:h, h:] @ X2
        X1 = _sylvester_blocked(S[:h, :h], R, W[:h] - sign * update, discrete)
        return np.vstack([X1, X2])
    h = _split_point(R, l // 2)
    X2 = _sylvester_blocked(S, R[h:, h:], W[:, h:], discrete)
    update = S @ (X2 @ R[:h, h:].conj().T) if discrete else X2 @ R[:h, h:].conj().T
    X1 = _sylvester_blocked(S, R[:h, :h], W[:, :h] - sign * update, discrete)
    return np.hstack([X1, X2])


def _trsyl(S, R, W):
    trsyl, = sla.get_lapack_funcs(("trsyl",), (S, R, W))
    X, scale, info = trsyl(S, R, W, trana="N", tranb="T" if trsyl.typecode in "sd" else "C")
    if info < 0:
        raise RuntimeError(f"LAPACK trsyl failed with info={info}")
    return X / scale


def _stein_small(S, R, W):
    """Column(-pair) recursion from the last column: for each diagonal block J of R,
    ``X_J - S X_J R_JJ^H = W_J + S sum_{K>J} X_K R_JK^H``, solved as
    ``(I - conj(R_JJ) kron S) vec X_J``; a triangular solve for 1x1 blocks of complex S."""
    k, l = W.shape
    X = np.zeros((k, l), dtype=np.result_type(S, R, W))
    eye = np.eye(k)
    triangular = np.iscomplexobj(S) or not np.any(np.diag(S, -1)) if k > 1 else True
    j = l
    while j > 0:
        size = 2 if j >= 2 and R[j - 1, j - 2] != 0 else 1
        J = slice(j - size, j)
        rhs = W[:, J] + S @ (X[:, j:] @ R[J, j:].conj().T)
        if size == 1 and triangular:
            X[:, J] = sla.solve_triangular(eye - R[j - 1, j - 1].conj() * S, rhs, lower=False,
                                           check_finite=False)
        else:
            M = np.eye(k * size) - np.kron(R[J, J].conj(), S)
            X[:, J] = np.linalg.solve(M, rhs.reshape(-1, order="F")).reshape(k, size, order="F")
        j -= size
    return X


def quasi_triangular_eigenvalues(T):
    """Eigenvalues of a (quasi-)upper-triangular Schur factor, read off its 1x1 and 2x2 blocks."""
    n = T.shape[0]
    if np.iscomplexobj(T):
        return np.diag(T).copy()
    out = np.empty(n, dtype=np.complex128)
    i = 0
    while i < n:
        if i + 1 < n and T[i + 1, i] != 0:
            out[i:i + 2] = np.linalg.eigvals(T[i:i + 2, i:i + 2])
            i += 2
        else:
            out[i] = T[i, i]
            i += 1
    return out


def _finite_horizon(P, A, horizon, discrete, transpose):
    """``P - F P F^H`` with F = A^L (discrete) or e^{AT} (continuous); F -> F^H for kind 'o'.

    Returns the finite-horizon Gramian and the size of the terms it is the difference of
    (its rounding noise is eps times that, not eps times its own size)."""
    F = np.linalg.matrix_power(A, horizon) if discrete else sla.expm(A * horizon)
    if transpose:
        F = F.conj().T
    FPF = F @ P @ F.conj().T
    Ph = P - FPF
    noise = max(np.linalg.norm(P, 2), np.linalg.norm(FPF, 2))
    return (Ph + Ph.conj().T) / 2, noise


def complex_schur(A):
    """``(T, Z)`` with ``A = Z T Z^H``, T upper triangular (real A: real Schur, then its 2x2
    blocks triangularised, which is cheaper than a complex QR iteration)."""
    return fast_complex_schur(A)


def dense_schur(A):
    """The Schur form that serves both dense factors and the stability check: a
    :class:`~lti_reduce._real_schur_factor.RealSchurForm` for a real A where the compiled real
    Hammarling kernel is built (and n <= its ``LARGEST``), else the complex form of
    :func:`complex_schur`. Both have ``eigenvalues``."""
    if (not np.iscomplexobj(A) and _real_schur_factor.compiled is not None
            and A.shape[0] <= _real_schur_factor.LARGEST):
        return real_schur(A)
    return complex_schur(A)


def dense_factors(system, kinds=("c", "o"), schur=None):
    """Square-root factors ``L`` (``P = L L^H``) for each kind, by Hammarling's method.

    One Schur form (``schur``, if already computed by :func:`dense_schur`) serves both
    factors and the stability check. A real system with the compiled kernel gets real
    factors in real arithmetic from its real Schur form
    (:func:`lti_reduce._real_schur_factor.real_gramian_factors`); otherwise the complex
    Schur form and the recursively blocked complex factors
    (:func:`lti_reduce._blocked_factor.schur_gramian_factors`), made real there for a real
    system: ``[Re L, Im L]`` is an exact real factor, compressed by a QR factorisation (in
    the real Schur basis).
    """
    A = system.A
    if A.shape[0] == 0:
        return [np.zeros((0, 0), dtype=A.dtype) for _ in kinds]
    schur_form = dense_schur(A) if schur is None else schur
    bad = unstable_eigenvalues(schur_form.eigenvalues, system.is_discrete)
    if len(bad):
        raise_unstable(bad, system.is_discrete)
    if isinstance(schur_form, RealSchurForm):
        factors = real_gramian_factors(schur_form, system.B, system.C, system.is_discrete, kinds)
    else:
        factors = schur_gramian_factors(schur_form, system.B, system.C, system.is_discrete, kinds)
    for L in factors:
        if not np.all(np.isfinite(L)):
            raise NonFiniteError("the Gramian factor is not finite: the system is too ill-conditioned "
                                 "(eigenvalues too close to the stability boundary)")
    return factors


#: Largest estimate ``||F||`` accepted from the closed-form Gramian + Cholesky route. The HSVs
#: move by ``(||F_c|| + ||F_o||) / 2`` relative at most, so 3e-11 per factor keeps them a
#: factor 3 inside the promise (1e-10 against SLICOT for ``s_i >= 1e-6 s_1``); measured
#: errors are two to three orders of magnitude below the estimate (tests/core/test_cholesky_route.py).
CHOLESKY_ROUTE_TOL = 3e-11
#: The tests switch the Cholesky route off to compare it with the exact recursion.
CHOLESKY_ROUTE = True


def host_view(system):
    """The same DiagonalStateSpace on zero-copy host numpy views, or None.

    Host tensors of another namespace (CPU torch without autograd) are computed on as numpy
    arrays: the factor recursion and the SVD are faster there than through per-call dispatch
    (and OpenBLAS's ``gesdd`` than MKL's at these sizes, measured in
    ``benchmarks/bench_reduce.py``). None for numpy input, another device, tensors that
    require grad, or with ``_hammarling.HOST_FAST_PATH`` off (the tests' switch)."""
    xp = system._xp
    if is_numpy(xp) or not _hammarling.HOST_FAST_PATH or str(device_of(system.B)) != "cpu" or any(
            getattr(a, "requires_grad", False) for a in (system.eigenvalues, system.B, system.C)):
        return None
    return DiagonalStateSpace(*(to_numpy(a) for a in (system.eigenvalues, system.B, system.C, system.D)),
                              dt=system.dt, check_finite=False)


def diagonal_factors(system):
    """Controllability and observability factors of a (batched) DiagonalStateSpace.

    Each factor is the Cholesky factor of the closed-form (Cauchy-structured) Gramian where
    an a-posteriori estimate says it is accurate (:func:`_cholesky_route`), else the exact
    recursion of :func:`diagonal_factor`. Host tensors of other namespaces (CPU torch
    without autograd) are computed on zero-copy numpy views.
    """
    xp = system._xp
    host = host_view(system)
    if host is not None:
        return tuple(xp.asarray(L, device=device_of(system.B)) for L in diagonal_factors(host))
    lam = system.eigenvalues
    discrete = system.is_discrete
    out = []
    for kind, lam_k, M in (("c", lam, system.B), ("o", xp.conj(lam), conj_t(xp, system.C))):
        # one input/output: the exact recursion is an O(n^2) elementwise update, cheaper than
        # the Cholesky factorisation alone (and the Cauchy Gramian of one column is too
        # ill-conditioned for the route beyond a few dozen states)
        use_route = CHOLESKY_ROUTE and M.shape[-1] > 1
        # Cholesky reads the lower triangle only: no symmetrisation pass
        L, accurate = _cholesky_route(xp, diagonal_gramian(system, kind, hermitian=False), M.shape[-1]) \
            if use_route else (None, None)
        if L is None:
            L = diagonal_factor(xp, lam_k, M, discrete)
        elif not bool(xp.all(accurate)):        # one host read: the exact recursion where needed
            flat_ok = to_numpy(xp.reshape(accurate, (-1,)))
            redo = np.flatnonzero(~flat_ok)
            if lam.ndim == 1:
                L = diagonal_factor(xp, lam_k, M, discrete)
            else:
                n = lam.shape[-1]
                L = xp.reshape(L, (-1, n, n))
                index = xp.asarray(redo, device=device_of(M))
                exact = diagonal_factor(xp, xp.take(xp.reshape(lam_k, (-1, n)), index, axis=0),
                                        xp.take(xp.reshape(M, (-1,) + tuple(M.shape[-2:])), index, axis=0),
                                        discrete)
                L[index] = xp.astype(exact, L.dtype)
                L = xp.reshape(L, tuple(lam.shape) + (n,))
        out.append(L)
    return tuple(out)


def _cholesky_route(xp, P, m):
    """Cholesky factor of a closed-form Gramian and, per batch element, whether it is accurate.

    With ``P = D H D`` (``D = diag(P)^(1/2)``, H of unit diagonal) and ``H = R R^H``, the
    computed factor satisfies ``L L^H = P + E`` with ``E`` the rounding of forming P (dot
    products of length m) and of the Cholesky factorisation (length n), of relative size
    about ``sqrt(n + m) eps`` entrywise in the scaled form. Then ``L = L_exact (I + F)^(1/2) Q``
    with Q unitary and ``||F|| <= ||H^-1|| ||D^-1 E D^-1||``, and every HSV moves by the
    relative amount ``||F|| / 2`` at most (a multiplicative perturbation of a factor). The
    estimate ``4 sqrt(n + m) eps * 2 ||R^-1||_2^2`` (the norm by six power steps, doubled)
    must stay below :data:`CHOLESKY_ROUTE_TOL`. Rank deficiency (m < n with clustered
    eigenvalues) shows as a failed or badly conditioned Cholesky: then the exact route.

    Returns ``(None, None)`` when the factorisation fails for any element of the batch.
    """
    n = P.shape[-1]
    if n == 0:
        return None, None
    d = xp.sqrt(xp.real(xp.linalg.diagonal(P)))
    if not bool(xp.all(d > 0)):
        return None, None
    scale = xp.astype(d, P.dtype)
    inv = 1.0 / d              # real: scaling by a real outer product, not a complex division
    try:
        R = xp.linalg.cholesky(P * xp.astype(inv[..., :, None] * inv[..., None, :], P.dtype))
    except (ValueError, RuntimeError):         # numpy's / torch's LinAlgError: not positive definite
        return None, None
    if is_numpy(xp):        # triangular solves with one vector: O(n^2) per power step
        # LAPACK trtrs on Fortran copies made once: scipy's solve_triangular would re-check and
        # re-copy R on each of the 13 calls per element (a tenth of a small event's time)
        trtrs, = sla.get_lapack_funcs(("trtrs",), (R,))
        fortran = [np.asfortranarray(Ri) for Ri in R.reshape((-1, n, n))]

        def solve(x, trans):
            rhs = x.reshape((-1, n, 1))
            out = np.empty(rhs.shape, dtype=R.dtype)
            for i, Ri in enumerate(fortran):
                out[i] = trtrs(Ri, rhs[i], lower=1, trans=trans)[0]
            return out.reshape(x.shape)

        def inverse(x):
            return solve(x, 0)

        def inverse_h(x):
            return solve(x, 2)
    else:                   # the array API has no triangular solve: one explicit inverse
        R_inv = xp.linalg.solve(R, xp.broadcast_to(xp.eye(n, dtype=P.dtype, device=device_of(P)), R.shape))
        R_inv_h = conj_t(xp, R_inv)

        def inverse(x):
            return R_inv @ x

        def inverse_h(x):
            return R_inv_h @ x
    # ||R^-1||_2^2 = ||H^-1||_2 from below by power steps on R^-H R^-1, from a fixed start
    x = xp.astype(1.0 + 0.5 * xp.sin(xp.arange(n, dtype=xp.float64, device=device_of(P))), P.dtype)
    x = xp.broadcast_to(x, R.shape[:-1])[..., :, None]
    for _ in range(6):
        y = inverse_h(inverse(x))
        size = xp.sqrt(xp.sum(xp.real(y * xp.conj(y)), axis=(-2, -1)))
        x = y / xp.astype(size, y.dtype)[..., None, None]
    y = inverse(x)
    inverse_norm = xp.sum(xp.real(y * xp.conj(y)), axis=(-2, -1))
    eps = float(np.finfo(np.float64).eps)
    estimate = 4.0 * math.sqrt(n + m) * eps * 2.0 * inverse_norm
    accurate = xp.isfinite(estimate) & (estimate <= CHOLESKY_ROUTE_TOL)
    return R * scale[..., :, None], accurate


def dense_gramians(system, kinds=("c", "o"), horizon=None, schur=None, noise=None):
    """Dense Gramians for each kind in ``kinds`` (numpy), reusing one Schur form.

    ``noise``, if a list, receives for each Gramian the size of the data it was formed
    from (see :func:`psd_factor`)."""
    A, B, C = system.A, system.B, system.C
    discrete = system.is_discrete
    if schur is None:
        schur = SchurLyapunov(A, discrete)
    lam = schur.eigenvalues
    bad = unstable_eigenvalues(lam, discrete)
    if len(bad) and horizon is None:
        raise_unstable(bad, discrete)
    if len(bad):
        # finite horizon, unstable A: the difference formula needs the Lyapunov/Stein
        # equation to be uniquely solvable (no l_i conj(l_j) = 1, resp. l_i + conj(l_j) = 0)
        pair = np.multiply.outer(lam, lam.conj()) - 1 if discrete else np.add.outer(lam, lam.conj())
        scale = max(1.0, float(np.max(np.abs(lam))) ** (2 if discrete else 1))
        if np.any(np.abs(pair) < 1e-8 * scale):
            raise UnstableSystemError(
                "finite-horizon Gramians of this unstable system need the Lyapunov equation to be "
                "uniquely solvable, but two eigenvalues are (nearly) "
                + ("reciprocal conjugates (l_i conj(l_j) = 1)" if discrete else
                   "mirror images across the imaginary axis (l_i + conj(l_j) = 0)")
                + "; use a diagonal realisation (closed form) instead")
    out = []
    for kind in kinds:
        rhs = B @ B.conj().T if kind == "c" else C.conj().T @ C
        P = schur.solve(rhs, kind)
        size = None
        if horizon is not None:
            P, size = _finite_horizon(P, A, horizon, discrete, transpose=(kind == "o"))
        if noise is not None:
            noise.append(size)
        if not np.all(np.isfinite(P)):
            raise NonFiniteError("the Lyapunov solver returned non-finite values: the system is too "
                                 "ill-conditioned (eigenvalues too close to the stability boundary)")
        out.append(P)
    return out


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def gramian(system, kind="c", *, factor=False, horizon=None):
    """Controllability or observability Gramian, or its square-root factor.

    Parameters
    ----------
    system : StateSpace or DiagonalStateSpace
        Stable (``Re(eig A) < 0`` continuous, ``|eig A| < 1`` discrete) unless a finite
        horizon is given; with a horizon, unstable systems work too (dense ones need no
        two eigenvalues with ``l_i + conj(l_j) = 0``, resp. ``l_i conj(l_j) = 1``). A DiagonalStateSpace may carry batch dimensions and torch
        tensors; the result stays in its namespace and on its device.
    kind : {'c', 'o'}
        'c' controllability Gramian P, 'o' observability Gramian Q.
    factor : bool, optional
        If True return ``L`` with ``P = L L^H`` (shape (..., n, n)), computed directly by
        Hammarling's method (never by a Cholesky factorisation of a formed Gramian, which
        fails for rank-deficient Gramians such as m=1, n=1000, and loses the small
        directions). With a finite horizon the factor comes from an eigendecomposition of
        ``P_L`` whose numerically-zero directions give exactly zero columns.
    horizon : int or float, optional
        Finite horizon: number of samples L (discrete) or time T (continuous).

    Returns
    -------
    P : array, shape (..., n, n)
        Hermitian positive semidefinite (real for real systems), or its factor.

    Notes
    -----
    Equations and sign conventions::

        continuous:  A P + P A^H + B B^H = 0,     A^H Q + Q A + C^H C = 0
        discrete:    A P A^H - P + B B^H = 0,     A^H Q A - Q + C^H C = 0
        finite horizon:  P_L = P - A^L P (A^H)^L,  P_T = P - e^{AT} P e^{A^H T}

    Dense systems: one Schur form of A, then Bartels-Stewart (LAPACK ``trsyl``) in
    continuous time or a column recursion on the triangular factor in discrete time.
    Diagonal systems: the closed forms ``P_ij = (B B^H)_ij / (1 - l_i conj l_j)``
    (discrete) and ``-(B B^H)_ij / (l_i + conj l_j)`` (continuous), O(n^2 (m + p)).

    Examples
    --------
    >>> import numpy as np
    >>> import lti_reduce as lr
    >>> G = lr.StateSpace([[-1.0, 0.0], [0.0, -2.0]], [[1.0], [1.0]], [[1.0, 1.0]])
    >>> P = lr.gramian(G, "c")            # P_ij = -(B B^H)_ij / (l_i + conj l_j)
    >>> P
    array([[0.5       , 0.33333333],
           [0.33333333, 0.25      ]])
    >>> L = lr.gramian(G, "c", factor=True)
    >>> bool(np.allclose(L @ L.T, P))
    True
    >>> Gd = lr.StateSpace([[0.5]], [[1.0]], [[1.0]], dt=True)
    >>> lr.gramian(Gd, "o")               # 1 / (1 - 0.5**2)
    array([[1.33333333]])
    """
    from ._lowrank_bt import is_sparse_system, gramian_sparse   # issue 11 (lazy: imports the core)
    if is_sparse_system(system):
        return gramian_sparse(system, _check_kind(kind), factor, horizon)
    system = as_statespace(system)
    kind = _check_kind(kind)
    check_scale(system, "gramian")
    horizon = check_horizon(horizon, system.is_discrete)
    if isinstance(system, DiagonalStateSpace):
        if horizon is None:
            bad = unstable_eigenvalues(to_numpy(system.eigenvalues).ravel(), system.is_discrete)
            if len(bad):
                raise_unstable(bad, system.is_discrete)
        xp = system._xp
        if factor and horizon is None:
            return diagonal_factors(system)[0 if kind == "c" else 1]
        P = diagonal_gramian(system, kind, horizon)
        return psd_factor(xp, P)[0] if factor else P
    xp = system._xp
    if system.n == 0:   # a static gain: the Gramian of no states (LAPACK's Schur rejects empty input)
        return xp.zeros((0, 0), dtype=system.B.dtype if system.is_complex else xp.float64,
                        device=device_of(system.B))
    dense = system.to_numpy()
    if factor and horizon is None:
        P, = dense_factors(dense, kinds=(kind,))
    else:
        noise = []
        P, = dense_gramians(dense, kinds=(kind,), horizon=horizon, noise=noise)
        if factor:
            P = psd_factor(np, P, noise=noise[0])[0]
    if not is_numpy(xp):
        P = xp.asarray(P, device=device_of(system.B))
    return P
