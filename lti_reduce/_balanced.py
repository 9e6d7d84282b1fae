"""Hankel singular values and balanced truncation (square-root, balancing-free, SPA).

One code path serves dense and diagonal, real and complex, numpy and torch systems:
Gramian factors (closed form for diagonal A, one Schur form for dense A), the SVD of
``Lo^H Lc``, and the projection ``W = Lo U_r S_r^{-1/2}``, ``V = Lc V_r S_r^{-1/2}``.
"""

import dataclasses
from dataclasses import dataclass, field
import functools
import math
import numbers

import numpy as np
import scipy.linalg as sla

from ._array import elementwise, is_numpy, to_numpy, conj_t, device_of
from . import _gramians
from ._errors import InvalidParameterError, LTIReduceError, ShapeError, UnstableSystemError
from ._gramians import (SchurLyapunov, check_horizon, check_scale, dense_factors, dense_schur, dense_gramians,
                        diagonal_factors, diagonal_gramian, host_view, psd_factor, quasi_triangular_eigenvalues,
                        raise_unstable)
from ._statespace import unstable_eigenvalues
from ._order import Criterion, check_criterion, choose_order, error_bound, order_choice, tail_bound, warn_order_notes
from ._statespace import StateSpace, DiagonalStateSpace, as_statespace

__all__ = ["BalancedTruncationResult", "HankelFactors", "hankel_factors", "hankel_singular_values",
           "balanced_truncation", "rounding_allowance"]

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class BalancedTruncationResult:
    """Outcome of :func:`balanced_truncation`.

    Attributes
    ----------
    system : StateSpace
        Reduced system of order r (same time base; same namespace/device as the input).
    hsv : array, shape (n,)
        Hankel singular values of the full system, descending; ``inf`` for the states of
        an unstable part kept whole (``unstable='keep'``), listed first.
    order : int
        Reduced order r (unstable states included).
    error_bound : float or None
        ``2 * sum_{i>r} s_i``, an a-priori bound on ``||G - G_r||_inf`` for BT and SPA;
        None for finite-horizon Gramians, where no such bound holds.
    V, W : array, shape (n, r)
        Projections with ``W^H V = I``; for ``match='truncate'``
        ``A_r = W^H A V, B_r = W^H B, C_r = C V``. For SPA they span the kept balanced
        coordinates (the reduced matrices add the singular-perturbation correction).
    method : {'sr', 'bfsr'}
    match : {'truncate', 'dc'}
    notes : tuple of str
        What was adjusted about the requested order (clipped to the numerical rank) or
        why the result is not unique (an order splitting equal HSVs); issued as
        :class:`OrderAdjustedWarning` unless ``warn=False``.
    rounding_allowance : float or None
        What floating-point arithmetic may add to ``error_bound`` for the returned
        matrices: ``||G - G_r||_inf <= error_bound + rounding_allowance`` is the promise
        (docs page "What is guaranteed"; :func:`rounding_allowance`); ``inf`` when the
        returned reduced system is not stable to working precision; None with
        ``error_bound``. Computed on first access (it costs two H-infinity norms of the
        reduced system), then cached.
    """

    system: StateSpace
    hsv: object
    order: int
    error_bound: object
    V: object
    W: object
    method: str
    match: str
    notes: tuple = ()
    #: float, None, or a zero-argument callable evaluated by the first read of ``rounding_allowance``
    _rounding_allowance: object = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def rounding_allowance(self):
        source = self._rounding_allowance
        return source() if callable(source) else source


@dataclass(frozen=True)
class HankelFactors:
    """Square-root factors and the SVD ``Lo^H Lc = U diag(hsv) Vh`` (batched, any namespace).

    Attributes
    ----------
    Lc, Lo : array, shape (..., n, n)
        Factors with ``P = Lc Lc^H``, ``Q = Lo Lo^H``.
    U : array, shape (..., n, n)
    hsv : array, shape (..., n)
        Hankel singular values, descending (numerically-zero ones exactly zero).
    Vh : array, shape (..., n, n)
    source : tuple or None
        ``(system, horizon)`` when :func:`hankel_factors` computed them: passing them back
        with that very system object skips :func:`balanced_truncation`'s check that the
        factors belong to the system (and its host reads); None for factors built by hand.
    host : tuple or None
        Internal: ``(system, factors)`` as host numpy views when the factors of CPU tensors
        were computed on the host; :func:`balanced_truncation` then projects there too
        (numpy's BLAS, no transfers back). None otherwise.
    """

    Lc: object
    Lo: object
    U: object
    hsv: object
    Vh: object
    source: object = field(default=None, repr=False, compare=False)
    host: object = field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------------------
# factors and HSVs
# --------------------------------------------------------------------------------------
def _diagonal_factors(system, horizon):
    xp = system._xp
    host = host_view(system) if horizon is None else None
    if host is not None:        # factors and SVD on host views, returned as the caller's tensors
        factors, dev = _diagonal_factors(host, None), device_of(system.B)
        return HankelFactors(*(xp.asarray(a, device=dev) for a in
                               (factors.Lc, factors.Lo, factors.U, factors.hsv, factors.Vh)), host=(host, factors))
    if horizon is None:
        Lc, Lo = diagonal_factors(system)
        return _svd_of_factors(xp, Lc, Lo)
    Lc, rank_c = psd_factor(xp, diagonal_gramian(system, "c", horizon), "controllability Gramian")
    Lo, rank_o = psd_factor(xp, diagonal_gramian(system, "o", horizon), "observability Gramian")
    return _svd_of_factors(xp, Lc, Lo, xp.minimum(rank_c, rank_o))


def _dense_factors(system, horizon, schur=None):
    if horizon is None:
        Lc, Lo = dense_factors(system, schur=schur)
        return _svd_of_factors(np, Lc, Lo)
    noise = []
    P, Q = dense_gramians(system, ("c", "o"), horizon, noise=noise)
    Lc, rank_c = psd_factor(np, P, "controllability Gramian", noise=noise[0])
    Lo, rank_o = psd_factor(np, Q, "observability Gramian", noise=noise[1])
    return _svd_of_factors(np, Lc, Lo, np.minimum(rank_c, rank_o))


def _svd(xp, X):
    """Thin SVD ``X = U diag(s) Vh``; one host numpy matrix goes to LAPACK ``gesdd`` directly
    (numpy's wrapper costs a tenth of the solver itself at 50 states), with the optimal
    workspace numpy's batched call uses too, so that both give the same vectors."""
    if not (is_numpy(xp) and X.ndim == 2 and X.dtype in (np.float64, np.complex128)):
        return xp.linalg.svd(X, full_matrices=False)
    complex_ = X.dtype == np.complex128
    U, s, Vh, info = _GESDD[complex_](X, compute_uv=1, full_matrices=0, lwork=_gesdd_workspace(X.shape, complex_))
    if info != 0:
        raise np.linalg.LinAlgError(f"SVD did not converge (LAPACK gesdd info={info})")
    return U, s, Vh


_GESDD = [sla.get_lapack_funcs("gesdd", dtype=dtype) for dtype in (np.float64, np.complex128)]
_GESDD_LWORK = [sla.get_lapack_funcs("gesdd_lwork", dtype=dtype) for dtype in (np.float64, np.complex128)]


@functools.lru_cache(maxsize=64)
def _gesdd_workspace(shape, complex_):
    """LAPACK's optimal ``gesdd`` workspace for this shape (one query per shape)."""
    work, info = _GESDD_LWORK[complex_](*shape, compute_uv=1, full_matrices=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK gesdd workspace query failed (info={info}) for shape {shape}")
    return max(1, int(work.real))


def _svd_of_factors(xp, Lc, Lo, rank=None):
    """SVD of ``Lo^H Lc``; singular values below the numerical rank level
    ``n * eps * max(s_1, max_i ||Lo_i|| max_i ||Lc_i||)`` (or beyond the factors' rank) are
    exactly zero."""
    n = Lc.shape[-1]
    if n == 0:      # a static gain: no states, no HSVs (LAPACK's SVD rejects empty input)
        empty = xp.zeros(tuple(Lc.shape[:-2]) + (0, 0), dtype=Lc.dtype, device=device_of(Lc))
        return HankelFactors(Lc, Lo, empty, xp.zeros(tuple(Lc.shape[:-2]) + (0,), dtype=xp.float64,
                                                     device=device_of(Lc)), empty)
    U, s, Vh = _svd(xp, _factor_times(xp, Lc, conj_t(xp, Lo), right=True))
    # the level is set by the factors' size, not by s_1 alone: when the transfer function
    # is (numerically) zero, s_1 itself is rounding noise. max row norms bound ||L||_2
    # from below within sqrt(n)
    row_c, row_o = _largest_row_norm(xp, Lc), _largest_row_norm(xp, Lo)
    ops = elementwise(xp)
    level = max(n, 1) * _EPS * ops.maximum(s[..., 0], row_c * row_o)[..., None]
    keep = s > level
    if rank is not None:
        keep = keep & (xp.arange(n, device=device_of(s)) < rank[..., None])
    s = ops.where(keep, s, ops.zeros_like(s))
    return HankelFactors(Lc, Lo, U, s, Vh)


def _largest_row_norm(xp, L):
    """``max_i ||L_i||`` over the rows of each matrix of the batch L."""
    if is_numpy(xp):       # one einsum instead of the namespace wrapper's several array passes
        if L.dtype.kind == "c":
            return np.sqrt(np.max(np.einsum("...ij,...ij->...i", L, L.conj()).real, axis=-1))
        return np.sqrt(np.max(np.einsum("...ij,...ij->...i", L, L), axis=-1))
    return xp.max(xp.linalg.vector_norm(L, axis=-1), axis=-1)


# A residual above this (relative to the sizes of the terms) means the factors were not
# computed for this system: correct factors leave O(n eps) (Hammarling's method is
# backward stable), factors of another system O(1).
_FACTORS_RTOL = 1e-6


def _check_factors(system, factors, horizon):
    """Raise unless ``factors`` (a HankelFactors) belongs to ``system`` (unbatched or a flat batch).

    Cheap: shapes, then, on one fixed random probe vector x, the residuals of the Lyapunov
    (Stein) equations ``A P + P A^H + B B^H = 0`` (``A P A^H - P + B B^H = 0``) for
    ``P = Lc Lc^H`` and likewise for ``Q = Lo Lo^H``, and of ``Lo^H Lc = U diag(hsv) Vh``.
    O(n^2) per system. The equations are not checked for finite-horizon factors.
    """
    if not isinstance(factors, HankelFactors):
        raise InvalidParameterError(f"factors must be the HankelFactors that hankel_factors returned for this "
                                    f"system, got {type(factors).__name__}")
    n = system.n
    batch = tuple(getattr(system, "batch_shape", ()))
    expected = {"Lc": batch + (n, n), "Lo": batch + (n, n), "U": batch + (n, n), "hsv": batch + (n,),
                "Vh": batch + (n, n)}
    for name, shape in expected.items():
        got = tuple(getattr(factors, name).shape)
        if got != shape:
            raise ShapeError(f"factors.{name} has shape {got} but this system (batch {batch}, n={n}) needs "
                             f"{shape}: the factors were computed for another system")
    flat = 1 if not batch else math.prod(batch)
    Lc, Lo, U, hsv, Vh = (to_numpy(a).reshape((flat,) + tuple(a.shape[len(batch):]))
                          for a in (factors.Lc, factors.Lo, factors.U, factors.hsv, factors.Vh))
    if isinstance(system, DiagonalStateSpace):
        lam = to_numpy(system.eigenvalues).reshape(flat, n)
        A = lam[:, :, None] * np.eye(n)
    else:
        A = to_numpy(system.A)[None]
    B = to_numpy(system.B).reshape(flat, n, -1)
    C = to_numpy(system.C).reshape(flat, -1, n)
    x = np.random.default_rng(0).standard_normal((n, 1))
    norm = np.linalg.norm
    for i in range(flat):
        Ai = A[min(i, A.shape[0] - 1)]
        checks = [(Lo[i].conj().T @ (Lc[i] @ x) - U[i] @ (hsv[i][:, None] * (Vh[i] @ x)),
                   norm(Lo[i]) * norm(Lc[i]) * norm(x), "Lo^H Lc = U diag(hsv) Vh")]
        if horizon is None:
            for X, Y, L, what in ((Ai, B[i], Lc[i], "controllability"), (Ai.conj().T, C[i].conj().T, Lo[i],
                                                                          "observability")):
                LLx, LLXhx = L @ (L.conj().T @ x), L @ (L.conj().T @ (X.conj().T @ x))
                if system.is_discrete:
                    residual = X @ LLXhx - LLx + Y @ (Y.conj().T @ x)
                    scale = (norm(X) ** 2 + 1) * norm(L) ** 2 + norm(Y) ** 2
                else:
                    residual = X @ LLx + LLXhx + Y @ (Y.conj().T @ x)
                    scale = 2 * norm(X) * norm(L) ** 2 + norm(Y) ** 2
                checks.append((residual, scale * norm(x), f"{what} Gramian equation"))
        for residual, scale, what in checks:
            if not norm(residual) <= _FACTORS_RTOL * scale:
                where = f" (batch element {i})" if batch else ""
                raise InvalidParameterError(
                    f"factors do not belong to this system{where}: the {what} has relative residual "
                    f"{norm(residual) / max(scale, 1e-300):.3g} > {_FACTORS_RTOL:g}; pass the HankelFactors "
                    "that hankel_factors returned for this very system (and horizon)")


def _check_stable(system, alpha=None):
    lam = to_numpy(system.eigenvalues).ravel() if isinstance(system, DiagonalStateSpace) else system.poles()
    bad = unstable_eigenvalues(lam, system.is_discrete, alpha)
    if len(bad):
        raise_unstable(bad, system.is_discrete, alpha=alpha)


def hankel_factors(system, *, horizon=None):
    """Gramian factors and the SVD behind the HSVs, for reuse by :func:`balanced_truncation`.

    Parameters
    ----------
    system : StateSpace or DiagonalStateSpace
        Stable unless ``horizon`` is given; batched DiagonalStateSpace and torch tensors
        are supported (results keep the namespace and device).
    horizon : int or float, optional
        Finite horizon, as for :func:`gramian`.

    Returns
    -------
    HankelFactors
        Batched like the system.
    """
    system = as_statespace(system)
    horizon = check_horizon(horizon, system.is_discrete)
    check_scale(system, "hankel_factors")
    if isinstance(system, DiagonalStateSpace):
        if horizon is None:
            _check_stable(system)
        factors = _diagonal_factors(system, horizon)
    else:
        factors = _dense_factors(system.to_numpy(), horizon)
        if not is_numpy(system._xp):
            xp, dev = system._xp, device_of(system.B)
            factors = HankelFactors(*(xp.asarray(a, device=dev) for a in
                                      (factors.Lc, factors.Lo, factors.U, factors.hsv, factors.Vh)))
    return dataclasses.replace(factors, source=(system, horizon))


def hankel_singular_values(system, *, horizon=None):
    """Hankel singular values, descending.

    Parameters
    ----------
    system : StateSpace or DiagonalStateSpace
        Stable, continuous or discrete, real or complex; a DiagonalStateSpace may be
        batched and hold torch tensors (the result keeps its namespace and device).
    horizon : int or float, optional
        Finite-horizon Gramians (samples in discrete time, time in continuous time).

    Returns
    -------
    hsv : array, shape (..., n), float64
        Singular values of ``Lo^H Lc`` where ``P = Lc Lc^H``, ``Q = Lo Lo^H``. Never NaN,
        never complex; directions that are uncontrollable or unobservable to working
        precision give exact zeros.

    Notes
    -----
    The HSVs are the square roots of the eigenvalues of ``P Q`` but are never computed
    that way (squaring loses half the digits of the small ones).

    Examples
    --------
    >>> import lti_reduce as lr
    >>> lr.hankel_singular_values(lr.StateSpace([[-2.0]], [[1.0]], [[1.0]]))   # 1 / (s + 2)
    array([0.25])
    >>> G = lr.StateSpace([[-1.0, 0.0], [0.0, -2.0]], [[1.0], [1.0]], [[1.0, 1.0]])
    >>> lr.hankel_singular_values(G)
    array([0.73100016, 0.01899984])
    """
    from ._lowrank_bt import is_sparse_system, lowrank_hankel_singular_values   # issue 11 (lazy: imports us)
    if is_sparse_system(system) and horizon is None:
        return lowrank_hankel_singular_values(system)
    return hankel_factors(system, horizon=horizon).hsv


# --------------------------------------------------------------------------------------
# projection (array-API; one system, not batched)
# --------------------------------------------------------------------------------------
def _apply_A(system, X):
    """A @ X, without forming A for a diagonal system."""
    if isinstance(system, DiagonalStateSpace):
        return system.eigenvalues[..., :, None] * X
    return system.A @ X


def _triangle(L):
    """'lower' or 'upper' if every matrix of the (host numpy) batch L is triangular that way, else None."""
    flat = L.reshape((-1,) + L.shape[-2:])
    if flat[:, 0, -1].any() and flat[:, -1, 0].any():    # both corners: not triangular (O(1) test)
        return None
    if _zero_above(flat):
        return "lower"
    if _zero_above(flat.swapaxes(-1, -2)):
        return "upper"
    return None


def _zero_above(flat):
    """True if every matrix of the batch ``flat`` is zero above its diagonal: row by row on
    views (np.triu would copy the whole batch, 11 ms for six 384 x 384 complex factors),
    stopping at the first nonzero row."""
    n = flat.shape[-1]
    return not any(flat[:, i, i + 1:].any() for i in range(n - 1))


def _factor_times(xp, L, X, right=False):
    """``L @ X`` (``X @ L`` with ``right=True``) for Gramian factors L (..., n, n); BLAS ``trmm``
    (half the work) for host numpy factors that are triangular, as the Cholesky route's (lower),
    the recursion's and the real QR-compressed ones are."""
    def product():
        return X @ L if right else L @ X
    if not is_numpy(xp) or L.shape[-1] < 2 or 0 in X.shape[-2:]:
        return product()
    triangle = _triangle(L)
    if triangle is None:
        return product()
    trmm, = sla.get_blas_funcs(("trmm",), (L, X))
    flat = L.reshape((-1,) + L.shape[-2:])
    rhs = np.broadcast_to(X, L.shape[:-2] + X.shape[-2:]).reshape((flat.shape[0],) + X.shape[-2:])
    out = np.empty(rhs.shape, dtype=np.result_type(flat, rhs))
    for i in range(flat.shape[0]):
        # L^T is the Fortran-ordered view of a C-ordered L: op(L^T) = L with trans_a=1, no copy
        out[i] = trmm(1.0, flat[i].T, rhs[i], side=int(right), lower=triangle == "upper", trans_a=1)
    return out.reshape(L.shape[:-2] + X.shape[-2:])


def _projections(xp, factors, r, method):
    """V, W (..., n, r) with W^H V = I from the factors' SVD (square-root or balancing-free).

    For 'bfsr' also returns ``(W0, M)``: W0 orthonormal with ``W = W0 M^{-H}``,
    ``M = W0^H V``; 'sr' returns None there."""
    s = factors.hsv[..., :r]
    U_r = factors.U[..., :, :r]
    V_r = conj_t(xp, factors.Vh[..., :r, :])
    if method == "sr":
        # exact-zero HSVs (beyond an element's rank, in a batch projected at the largest order)
        # get zero columns, not inf: the columns below each element's order are unaffected
        positive = s > 0
        ops = elementwise(xp)
        root = ops.sqrt(ops.where(positive, s, ops.ones_like(s)))
        scale = ops.astype(ops.where(positive, 1.0 / root, ops.zeros_like(s)), U_r.dtype)[..., None, :]
        W = _factor_times(xp, factors.Lo, U_r) * scale
        V = _factor_times(xp, factors.Lc, V_r) * scale
        return V, W, None
    # balancing-free square root (Varga): orthonormal bases of the same subspaces, then
    # W is re-scaled so that W^H V = I (a solve, no explicit inverse)
    V, _ = xp.linalg.qr(factors.Lc @ V_r)
    W0, _ = xp.linalg.qr(factors.Lo @ U_r)
    WhV = conj_t(xp, W0) @ V
    W = conj_t(xp, xp.linalg.solve(WhV, conj_t(xp, W0)))
    return V, W, (W0, WhV)


def _reduce_one(system, factors, r, method, match):
    """Reduced (A_r, B_r, C_r, D_r), V, W for one stable system (array API)."""
    xp = system._xp
    B, C, D = system.B, system.C, system.D
    if match == "truncate":
        V, W, oblique = _projections(xp, factors, r, method)
        if oblique is None:
            Wh = conj_t(xp, W)
            return (Wh @ _apply_A(system, V), Wh @ B, C @ V, D), V, W
        # balancing-free: A_r = M^{-1} (W0^H A V), B_r = M^{-1} (W0^H B) with M = W0^H V.
        # Not W^H A V with the formed W = W0 M^{-H}: W's rows are as large as 1/sigma_min(M),
        # and the product then errs by eps ||W|| ||A V|| in every entry, which in this
        # (unbalanced, often highly non-normal) basis moves lightly damped poles by far more
        # than the truncation error (issue 8 item 1: up to 6e3 x the bound). The LU solve is
        # backward stable in M, i.e. its error is a slightly different oblique projection.
        W0, M = oblique
        W0h = conj_t(xp, W0)
        reduced = xp.linalg.solve(M, xp.concat([W0h @ _apply_A(system, V), W0h @ B], axis=-1))
        return (reduced[..., :r], reduced[..., r:], C @ V, D), V, W
    # singular perturbation: balanced realisation of the minimal part (k nonzero HSVs), then
    # eliminate the fast states x2 by setting x2' = 0 (continuous) / x2[k+1] = x2[k] (discrete)
    k = int(xp.sum(xp.astype(factors.hsv > 0, xp.int64)))
    V_k, W_k, _ = _projections(xp, factors, k, "sr")
    Wh = conj_t(xp, W_k)
    A_b = Wh @ _apply_A(system, V_k)
    B_b, C_b = Wh @ B, C @ V_k
    A11, A12, A21, A22 = A_b[:r, :r], A_b[:r, r:], A_b[r:, :r], A_b[r:, r:]
    B1, B2, C1, C2 = B_b[:r], B_b[r:], C_b[:, :r], C_b[:, r:]
    if k == r:
        system_r = (A11, B1, C1, D)
    else:
        eye = xp.eye(k - r, dtype=A22.dtype, device=device_of(A22))
        # continuous: x2 = -A22^{-1}(A21 x1 + B2 u); discrete: x2 = (I - A22)^{-1}(A21 x1 + B2 u)
        M = -A22 if not system.is_discrete else eye - A22
        sol = xp.linalg.solve(M, xp.concat([A21, B2], axis=1))
        S_A, S_B = sol[:, :r], sol[:, r:]
        system_r = (A11 + A12 @ S_A, B1 + A12 @ S_B, C1 + C2 @ S_A, D + C2 @ S_B)
    if method == "bfsr":
        V, W, _ = _projections(xp, factors, r, "bfsr")
    else:
        V, W = V_k[:, :r], W_k[:, :r]
    return system_r, V, W


# --------------------------------------------------------------------------------------
# additive stable/unstable split (dense, numpy)
# --------------------------------------------------------------------------------------
def _split_unstable(system, alpha):
    """Stable part (eigenvalues inside the alpha region) and the rest, decoupled.

    Ordered Schur form ``A = Z [[T11, T12], [0, T22]] Z^H``, then ``T11 X - X T22 = -T12``
    gives ``S = Z [[I, X], [0, I]]`` with ``S^{-1} A S = diag(T11, T22)``.
    Returns (stable StateSpace, (A_u, B_u, C_u), S-factors for the projections).
    """
    A, B, C = system.A, system.B, system.C
    discrete = system.is_discrete
    # Which eigenvalues go to the stable part is decided once, on the unordered Schur form,
    # and then the form is reordered (LAPACK trsen). schur(sort=...) would re-test the
    # condition on the reordered eigenvalues, which rounding moves: an eigenvalue within
    # rounding of alpha then fails with "Leading eigenvalues do not satisfy sort condition".
    complex_ = np.iscomplexobj(A)
    T, Z = sla.schur(A, output="complex" if complex_ else "real")
    poles = np.diag(T) if complex_ else quasi_triangular_eigenvalues(T)
    select = np.abs(poles) < alpha if discrete else poles.real < alpha
    if not complex_:    # both eigenvalues of a 2x2 block go together (conjugates: same test)
        pair = np.nonzero(np.diag(T, -1))[0]
        select[pair + 1] = select[pair]
    trsen, = sla.get_lapack_funcs(("trsen",), (T,))
    out = trsen(select.astype(np.int32), T, Z, job="N")
    T, Z, k, info = out[0], out[1], int(out[-4]), out[-1]
    if info != 0:
        raise UnstableSystemError(f"the eigenvalues of A could not be split at alpha={alpha:g} (LAPACK trsen "
                                  f"info={info}): eigenvalues too close to each other across the boundary")
    T11, T12, T22 = T[:k, :k], T[:k, k:], T[k:, k:]
    trsyl, = sla.get_lapack_funcs(("trsyl",), (T11, T22, T12))
    X, scale, info = trsyl(T11, T22, -T12, isgn=-1)
    if info < 0:
        raise RuntimeError(f"LAPACK trsyl failed with info={info}")
    X = X / scale
    ZhB, CZ = Z.conj().T @ B, C @ Z
    stable = StateSpace(T11, ZhB[:k] - X @ ZhB[k:], CZ[:, :k], system.D, dt=system.dt) if k else None
    unstable = (T22, ZhB[k:], CZ[:, k:] + CZ[:, :k] @ X)
    return stable, unstable, (Z, X, k)


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
_METHODS = ("sr", "bfsr")
_MATCHES = ("truncate", "dc")
_UNSTABLE = ("error", "keep")


def _check_options(method, match, unstable, alpha, discrete):
    if method not in _METHODS:
        raise InvalidParameterError(f"method must be one of {_METHODS} (square root, balancing-free square "
                                    f"root), got {method!r}")
    if match not in _MATCHES:
        raise InvalidParameterError(f"match must be 'truncate' (balanced truncation) or 'dc' (singular "
                                    f"perturbation, keeps the DC gain), got {match!r}")
    if unstable not in _UNSTABLE:
        raise InvalidParameterError(f"unstable must be 'error' or 'keep', got {unstable!r}")
    if alpha is None:
        return 1.0 if discrete else 0.0
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not np.isfinite(alpha):
        raise InvalidParameterError(f"alpha must be a finite real number, got {alpha!r}")
    if discrete and not 0 <= alpha <= 1:
        raise InvalidParameterError(f"alpha bounds the modulus of the kept-stable eigenvalues in discrete "
                                    f"time and must be in [0, 1], got {alpha}")
    if not discrete and alpha > 0:
        raise InvalidParameterError(f"alpha bounds the real part of the kept-stable eigenvalues in continuous "
                                    f"time and must be <= 0, got {alpha}")
    return float(alpha)


def balanced_truncation(system, order=None, *, tol=None, energy=None, method="sr", match="truncate",
                        unstable="error", alpha=None, horizon=None, factors=None, warn=True, output="complex"):
    """Balanced truncation (or singular perturbation approximation) of a stable LTI system.

    Parameters
    ----------
    system : StateSpace, DiagonalStateSpace, or a python-control / scipy.signal system
        Continuous or discrete, real or complex. A batched DiagonalStateSpace is reduced
        element by element after one batched factorisation; torch tensors stay torch
        tensors on their device.
    order : int or sequence of int, optional
        Reduced order r in [0, n] (one per batch element for a batched system).
    tol : float, optional
        Error budget: smallest r with ``2 * sum_{i>r} s_i <= tol``.
    energy : float, optional
        CompreSSM's tau in (0, 1): smallest r with ``sum_{i<=r} s_i >= (1 - tau) sum_i s_i``.
        Exactly one of ``order``, ``tol``, ``energy`` is required.
    method : {'sr', 'bfsr'}
        Square-root (balanced result) or balancing-free square-root (Varga; better
        conditioned projection, same transfer function).
    match : {'truncate', 'dc'}
        'dc' is singular perturbation approximation: keeps ``G(0)`` (continuous) or
        ``G(1)`` (discrete) exactly.
    unstable : {'error', 'keep'}
        'error' raises :class:`UnstableSystemError` naming the eigenvalues outside the
        alpha region; 'keep' splits the system additively and keeps that part whole
        (its HSVs are reported as ``inf``).
    alpha : float, optional
        Stability boundary: real part (continuous, default 0, must be <= 0) or modulus
        (discrete, default 1, in [0, 1]).
    horizon : int or float, optional
        Finite-horizon Gramians (no a-priori error bound then: ``error_bound`` is None).
    factors : HankelFactors, optional
        What :func:`hankel_factors` returned for this system with this horizon, to reuse
        the factorisation after inspecting the HSVs (stable part only; not with
        ``unstable='keep'``).
    warn : bool
        Issue :class:`OrderAdjustedWarning` for an adjusted or non-unique order (default);
        with False the same notes are only in ``result.notes`` (for callers that report
        them, as :func:`lti_reduce_torch.reduce_` does).
    output : {'complex', 'real'}
        ``'complex'`` (default): reduce the system as given. ``'real'``: the system's output is
        taken as ``Re(C x + D u)`` of a real input (LRU, S5, S4D layers); the real 2n-state
        map is reduced and returned in complex diagonal form by
        :func:`real_output_balanced_truncation` (its result type, orders counting complex
        states; ``unstable`` and ``alpha`` are not supported there).

    Returns
    -------
    BalancedTruncationResult, or a tuple of them (row-major) for a batched system.

    Notes
    -----
    With ``Lo^H Lc = U S V^H`` the projections are ``W = Lo U_r S_r^{-1/2}`` and
    ``V = Lc V_r S_r^{-1/2}`` (``W^H V = I``), and for ``match='truncate'``
    ``A_r = W^H A V``, ``B_r = W^H B``, ``C_r = C V``, ``D_r = D``. For a stable system
    with ``s_r > s_{r+1}`` the result is stable and
    ``s_{r+1} <= ||G - G_r||_inf <= 2 sum_{i>r} s_i`` (BT and SPA). With ``method='sr'``
    the projection balances the system (``W^H P W = V^H Q V = diag(s_1..s_r)``) and, in
    continuous time, the truncated system's own Gramians are ``diag(s_1..s_r)``; 'bfsr'
    gives the same transfer function in a well-conditioned, not balanced, basis
    (``A_r = M^{-1} (W_0^H A V)``, ``B_r = M^{-1} W_0^H B`` with orthonormal ``V``, ``W_0`` and
    ``M = W_0^H V``, one LU solve). SPA (discrete) uses
    ``A_r = A11 + A12 (I - A22)^{-1} A21`` etc., continuous ``A11 - A12 A22^{-1} A21``.

    The bound is a statement about exact arithmetic. For the matrices actually returned the
    promise is ``||G - G_r||_inf <= error_bound + rounding_allowance``; the allowance is
    computed by :func:`rounding_allowance` (tiny for well-conditioned systems, large when
    the balancing transformation is ill-conditioned, the reduced poles are lightly damped,
    or the order is near the numerical rank). It covers the stable part with
    ``unstable='keep'``.

    Examples
    --------
    >>> import numpy as np
    >>> import lti_reduce as lr
    >>> G = lr.StateSpace(np.diag([-1.0, -2.0, -30.0]), np.ones((3, 1)), np.ones((1, 3)))
    >>> result = lr.balanced_truncation(G, order=2)
    >>> result.order, result.system
    (2, StateSpace(n=2, m=1, p=1, continuous, dtype=float64))
    >>> print(f"{result.error_bound:.6g}")            # 2 * hsv[2]
    0.0174773
    >>> lr.balanced_truncation(G, tol=0.05).order     # the smallest r with a bound <= 0.05
    2
    >>> spa = lr.balanced_truncation(G, order=1, match="dc")
    >>> bool(np.allclose(spa.system.dc_gain(), G.dc_gain()))
    True
    """
    if output == "real":
        if unstable != "error" or alpha is not None:
            raise InvalidParameterError(f"output='real' supports unstable='error' and alpha=None only, got "
                                        f"unstable={unstable!r}, alpha={alpha!r}")
        from ._real_output import real_output_balanced_truncation   # lazy: it imports this module
        return real_output_balanced_truncation(system, order, tol=tol, energy=energy, method=method, match=match,
                                               horizon=horizon, factors=factors)
    if output != "complex":
        raise InvalidParameterError(f"output must be 'complex' or 'real', got {output!r}")
    from ._lowrank_bt import is_sparse_system, balanced_truncation_sparse   # issue 11 (lazy: imports us)
    if is_sparse_system(system):
        return balanced_truncation_sparse(system, order, tol=tol, energy=energy, method=method, match=match,
                                          unstable=unstable, alpha=alpha, horizon=horizon, factors=factors)
    system = as_statespace(system)
    batch = tuple(getattr(system, "batch_shape", ()))
    criterion = check_criterion(order=order, tol=tol, energy=energy, n=system.n, batch=batch)
    alpha = _check_options(method, match, unstable, alpha, system.is_discrete)
    horizon = check_horizon(horizon, system.is_discrete)
    # factors that hankel_factors made for this very system object need no check (and no
    # host reads: on a GPU each is a synchronisation)
    trusted = isinstance(factors, HankelFactors) and factors.source is not None \
        and factors.source[0] is system and factors.source[1] == horizon
    if not trusted:
        check_scale(system, "balanced_truncation")
    if system.n == 0:
        raise InvalidParameterError("the system has no states (n = 0): there is nothing to reduce")
    if criterion.kind != "order":
        orders = [None] * (math.prod(batch) if batch else 1)
    else:
        orders = list(criterion.value) if batch else [criterion.value]
    if batch:
        count = math.prod(batch)
        flat = DiagonalStateSpace(*(_flatten(system._xp, a, len(batch)) for a in
                                    (system.eigenvalues, system.B, system.C, system.D)), dt=system.dt,
                                  check_finite=False)     # the same, already checked, arrays
        if unstable == "keep":
            return tuple(balanced_truncation(flat[i], orders[i], tol=tol, energy=energy, method=method,
                                             match=match, unstable=unstable, alpha=alpha, horizon=horizon,
                                             warn=warn)
                         for i in range(count))
        if factors is None:
            if horizon is None:
                _check_stable(flat, alpha)
            factors = _diagonal_factors(flat, horizon)
        else:
            if not trusted:
                _check_factors(system, factors, horizon)
                factors = dataclasses.replace(factors, host=None)     # a host copy only from hankel_factors
            factors = _flatten_factors(system._xp, factors, len(batch))
        if factors.host is not None:
            host_system, host_factors = factors.host
            results = _finish_batch(host_system, host_factors, orders, tol, energy, method, match, horizon, warn)
            return tuple(_from_host(res, system._xp, device_of(system.B), factors.hsv[i])
                         for i, res in enumerate(results))
        return _finish_batch(flat, factors, orders, tol, energy, method, match, horizon, warn)
    schur = None
    if horizon is None:
        if isinstance(system, DiagonalStateSpace):
            poles = to_numpy(system.eigenvalues)
        else:   # the Schur form that gives the poles also serves the factors below
            schur = dense_schur(to_numpy(system.A))
            poles = schur.eigenvalues
        outside = unstable_eigenvalues(poles, system.is_discrete, alpha)
        if len(outside):
            if unstable == "error":
                raise_unstable(outside, system.is_discrete, alpha=alpha)
            return _reduce_with_unstable_part(system, alpha, orders[0], tol, energy, method, match, warn)
    if factors is not None and not trusted:
        _check_factors(system, factors, horizon)
    if isinstance(system, DiagonalStateSpace):
        if factors is None:
            factors = _diagonal_factors(system, horizon)
        return _finish(system, factors, orders[0], tol, energy, method, match, horizon, warn)
    xp, dev = system._xp, device_of(system.B)
    dense = system.to_numpy()
    if factors is None:
        factors = _dense_factors(dense, horizon, schur)
    else:
        factors = HankelFactors(*(to_numpy(a) for a in (factors.Lc, factors.Lo, factors.U, factors.hsv,
                                                        factors.Vh)))
    result = _finish(dense, factors, orders[0], tol, energy, method, match, horizon, warn)
    return result if is_numpy(xp) else _to_namespace(result, xp, dev)


def _flatten(xp, a, nbatch):
    return xp.reshape(a, (-1,) + tuple(a.shape[nbatch:]))


def _flatten_factors(xp, factors, nbatch):
    host = factors.host
    if host is not None:
        system = host[0]
        host = (DiagonalStateSpace(*(_flatten(np, a, nbatch) for a in (system.eigenvalues, system.B, system.C,
                                                                      system.D)), dt=system.dt, check_finite=False),
                _flatten_factors(np, host[1], nbatch))
    return HankelFactors(*(_flatten(xp, a, nbatch) for a in
                           (factors.Lc, factors.Lo, factors.U, factors.hsv, factors.Vh)), host=host)


def _from_host(result, xp, dev, hsv):
    """A result computed on host numpy views, in the caller's namespace (zero-copy on the CPU)."""
    def conv(a):
        return xp.asarray(a, device=dev)
    s = result.system
    reduced = StateSpace(conv(s.A), conv(s.B), conv(s.C), conv(s.D), dt=s.dt, check_finite=False)  # checked there
    return dataclasses.replace(result, system=reduced, hsv=hsv, V=conv(result.V), W=conv(result.W))


def _element(factors, i):
    return HankelFactors(*(a[i] for a in (factors.Lc, factors.Lo, factors.U, factors.hsv, factors.Vh)))


def _finish(system, factors, order, tol, energy, method, match, horizon, warn):
    xp = system._xp
    hsv_host = np.asarray(to_numpy(factors.hsv), dtype=np.float64)    # computed here: no check needed
    # an order here was checked against n by the caller (balanced_truncation's check_criterion)
    criterion = Criterion("order", order) if order is not None else \
        check_criterion(tol=tol, energy=energy, n=hsv_host.size)
    choice = order_choice(hsv_host, criterion)
    if warn:
        warn_order_notes(choice.notes, stacklevel=3)
    r = choice.order
    (A_r, B_r, C_r, D_r), V, W = _reduce_one(system, factors, r, method, match)
    reduced = StateSpace(A_r, B_r, C_r, D_r, dt=system.dt) if r else _static(xp, system, D_r)
    bound = allowance = None
    if horizon is None:
        bound = tail_bound(hsv_host, r)
        allowance = functools.partial(rounding_allowance, system, factors, r, match)
    return BalancedTruncationResult(reduced, factors.hsv, r, bound, V, W, method, match, choice.notes, allowance)


def _frobenius(a):
    return float(np.linalg.norm(to_numpy(a)))


def _sensitivities(reduced):
    """``(h_x, h_y)``: ``||(zI - A_r)^{-1} B_r||_inf`` and ``||C_r (zI - A_r)^{-1}||_inf`` (upper ends
    of their brackets), or ``(inf, inf)`` if ``A_r`` is not stable to working precision."""
    from ._norms import hinf_norm          # _norms imports this module (hankel_norm)
    A, B, C = (to_numpy(a) for a in (reduced.A, reduced.B, reduced.C))
    eye = np.eye(A.shape[0], dtype=A.dtype)
    try:
        h_x = hinf_norm(StateSpace(A, B, eye, dt=reduced.dt), rtol=_SENSITIVITY_RTOL).norm
        h_y = hinf_norm(StateSpace(A, eye, C, dt=reduced.dt), rtol=_SENSITIVITY_RTOL).norm
    except (UnstableSystemError, LTIReduceError, np.linalg.LinAlgError):
        return math.inf, math.inf
    return h_x * (1 + _SENSITIVITY_RTOL), h_y * (1 + _SENSITIVITY_RTOL)


# the sensitivities enter the allowance as factors; a 1e-3 bracket is ample and cheap
_SENSITIVITY_RTOL = 1e-3


def rounding_allowance(system, factors, r, match):
    """Rounding allowance on top of ``error_bound`` for one reduced system (a float).

    ``(eps + f / (2 n)) [4 n (n - r) ||Lc|| ||Lo|| + 4 n ||W_b|| ||V_b|| (h_y ||A|| h_x + h_y ||B|| + ||C|| h_x)]``
    (2-norms; ``A`` of a diagonal system is its largest eigenvalue modulus). ``W_b``,
    ``V_b`` are the square-root (balancing) projections of order r, and ``h_x``, ``h_y``
    the H-infinity norms of the balanced reduced system's input-to-state map
    ``(zI - A_r)^{-1} B_r`` and state-to-output map ``C_r (zI - A_r)^{-1}``
    (for ``match='dc'``, of the returned SPA system).

    The first term bounds the error of the truncated HSVs: each is a singular value of
    ``Lo^H Lc``, computed with an absolute error of order ``n eps ||Lc|| ||Lo||``, which
    exceeds ``eps s_1`` by the condition number of the balancing transformation. The
    second is the first-order effect on ``G_r`` of rounding errors of relative size
    ``n eps`` in the projected matrices ``W^H A V``, ``W^H B``, ``C V``, measured in the
    balanced basis (the balancing-free result has the same transfer function, and its
    solve-based projection has errors of the same order there). It is large exactly when
    the problem is ill-conditioned: a non-normal full system (large ``||Lc|| ||Lo|| / s_1``),
    lightly damped reduced poles (large ``h_x h_y``), or an order near the numerical rank
    (large ``||W_b|| ||V_b|| ~ ||Lc|| ||Lo|| / s_r``).

    ``f`` is the relative error of the factors themselves beyond rounding: 0 for Hammarling's
    method, and for a diagonal system whose factor may come from the closed-form Gramian and
    its Cholesky factor (:func:`lti_reduce._gramians.diagonal_factors`, more than one input
    resp. output) ``CHOLESKY_ROUTE_TOL / 2`` per such factor, the most that route accepts
    (each HSV moves by that much relative at most). Without it a two-state SPA measured
    ``||G - G_r|| - error_bound = 4.3e-15`` against an allowance of ``6.6e-16``.
    """
    n = system.n
    relative = _EPS + _factor_error(system) / (2 * max(n, 1))
    norm_Lc, norm_Lo = (float(np.linalg.norm(to_numpy(L), 2)) if n else 0.0 for L in (factors.Lc, factors.Lo))
    # 2 (n - r) truncated HSVs, each off by up to n eps ||Lc|| ||Lo||; the factor 2 more covers the
    # rounding of the bound's own sum (a first-order system at r = 0 has error = bound exactly)
    hsv_term = 4 * n * (n - r) * norm_Lc * norm_Lo
    if r == 0:
        return float(relative * hsv_term)
    (A_b, B_b, C_b, D_b), V_b, W_b = _reduce_one(system, factors, r, "sr", match)
    h_x, h_y = _sensitivities(StateSpace(A_b, B_b, C_b, D_b, dt=system.dt))
    if not (math.isfinite(h_x) and math.isfinite(h_y)):
        return math.inf
    if isinstance(system, DiagonalStateSpace):
        norm_A = float(np.max(np.abs(to_numpy(system.eigenvalues))))
    else:
        norm_A = float(np.linalg.norm(to_numpy(system.A), 2))
    norm_B, norm_C = (float(np.linalg.norm(to_numpy(X), 2)) for X in (system.B, system.C))
    norm_W, norm_V = (float(np.linalg.norm(to_numpy(X), 2)) for X in (W_b, V_b))
    # 4 n: n-term inner products, complex arithmetic (a factor up to 2 sqrt 2 per operation), and
    # W^H V = I only to rounding (the projection itself is rounded, not just the products)
    projection = 4 * n * norm_W * norm_V * (h_y * norm_A * h_x + h_y * norm_B + norm_C * h_x)
    return float(relative * (hsv_term + projection))


def _factor_error(system):
    """``f`` of :func:`rounding_allowance`: the relative factor error the closed-form Cholesky
    route may leave (it serves a factor with more than one input resp. output column)."""
    if not isinstance(system, DiagonalStateSpace) or not _gramians.CHOLESKY_ROUTE:
        return 0.0
    return ((system.m > 1) + (system.p > 1)) * _gramians.CHOLESKY_ROUTE_TOL / 2


def _finish_batch(system, factors, orders, tol, energy, method, match, horizon, warn):
    """:func:`_finish` for each element of a flat batch, with the truncations of equal order batched.

    One host transfer of the HSVs and one finiteness check for the whole batch (on a GPU each
    is a synchronisation), instead of several per element."""
    xp = system._xp
    if match != "truncate":           # SPA: each element has its own minimal order
        return tuple(_finish(system[i], _element(factors, i), orders[i], tol, energy, method, match, horizon,
                             warn) for i in range(len(orders)))
    hsv_host = to_numpy(factors.hsv)
    choices = [choose_order(h, order=o, tol=tol, energy=energy) for h, o in zip(hsv_host, orders)]
    if warn:
        for choice in choices:
            warn_order_notes(choice.notes, stacklevel=3)
    by_order = {}
    for i, choice in enumerate(choices):
        by_order.setdefault(choice.order, []).append(i)
    dev = device_of(system.B)
    out = [None] * len(choices)
    nonzero = [r for r in by_order if r]
    if method == "sr" and nonzero:
        # one batched projection at the largest order: column j of V and W depends on j only,
        # so each element's matrices are leading blocks (views) of the batch's
        (A_all, B_all, C_all, D_all), V_all, W_all = _reduce_one(system, factors, max(nonzero), method, match)
        finite = bool(xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in (A_all, B_all, C_all)])))
        for i, choice in enumerate(choices):
            r = choice.order
            if r:
                reduced = StateSpace(A_all[i, :r, :r], B_all[i, :r, :], C_all[i, :, :r], D_all[i], dt=system.dt,
                                     check_finite=not finite)
                out[i] = _batch_result(system, factors, hsv_host, i, r, reduced, V_all[i, :, :r], W_all[i, :, :r],
                                       method, match, horizon, choice.notes)
    else:
        parts, flags = {}, []
        for r in nonzero:
            members = by_order[r]
            if len(members) == len(choices):
                sub, sub_factors = system, factors
            else:
                index = xp.asarray(members, device=dev)
                sub = DiagonalStateSpace(*(xp.take(a, index, axis=0) for a in
                                           (system.eigenvalues, system.B, system.C, system.D)),
                                         dt=system.dt, check_finite=False)
                sub_factors = HankelFactors(*(xp.take(a, index, axis=0) for a in
                                              (factors.Lc, factors.Lo, factors.U, factors.hsv, factors.Vh)))
            matrices, V, W = _reduce_one(sub, sub_factors, r, method, match)
            parts[r] = (members, matrices, V, W)
            flags += [xp.all(xp.isfinite(a)) for a in matrices[:3]]
        # the projections of checked data can still overflow: one read checks every reduced matrix
        finite = bool(xp.all(xp.stack(flags))) if flags else True
        for r, (members, (A_r, B_r, C_r, D_r), V, W) in parts.items():
            for j, i in enumerate(members):
                reduced = StateSpace(A_r[j], B_r[j], C_r[j], D_r[j], dt=system.dt, check_finite=not finite)
                out[i] = _batch_result(system, factors, hsv_host, i, r, reduced, V[j], W[j], method, match,
                                       horizon, choices[i].notes)
    for i in by_order.get(0, ()):
        bound = None if horizon is not None else error_bound(hsv_host[i], 0)
        empty = xp.zeros((system.n, 0), dtype=system.B.dtype, device=dev)
        allowance = None if horizon is not None else \
            functools.partial(rounding_allowance, system[i], _element(factors, i), 0, match)
        out[i] = BalancedTruncationResult(_static(xp, system[i], system.D[i]), factors.hsv[i], 0, bound, empty,
                                          empty, method, match, choices[i].notes, allowance)
    return tuple(out)


def _batch_result(system, factors, hsv_host, i, r, reduced, V, W, method, match, horizon, notes):
    """The BalancedTruncationResult of element i of a flat batch reduced to order r > 0."""
    bound = None if horizon is not None else error_bound(hsv_host[i], r)
    allowance = None if horizon is not None else \
        functools.partial(rounding_allowance, system[i], _element(factors, i), r, match)
    return BalancedTruncationResult(reduced, factors.hsv[i], r, bound, V, W, method, match, notes, allowance)


def _static(xp, system, D):
    """Order-0 result: the static gain D (truncation: D; SPA: G(0) or G(1))."""
    dev = device_of(system.B)
    A = xp.zeros((0, 0), dtype=system.B.dtype, device=dev)
    return StateSpace(A, xp.zeros((0, system.m), dtype=system.B.dtype, device=dev),
                      xp.zeros((system.p, 0), dtype=system.B.dtype, device=dev), D, dt=system.dt)


def _to_namespace(result, xp, dev):
    def conv(a):
        return xp.asarray(a, device=dev)
    s = result.system
    reduced = StateSpace(conv(s.A), conv(s.B), conv(s.C), conv(s.D), dt=s.dt)
    return BalancedTruncationResult(reduced, conv(result.hsv), result.order, result.error_bound,
                                    conv(result.V), conv(result.W), result.method, result.match, result.notes,
                                    result._rounding_allowance)


def _reduce_with_unstable_part(system, alpha, order, tol, energy, method, match, warn):
    """Additive split at alpha; the stable part is reduced, the rest kept whole."""
    xp, dev = system._xp, device_of(system.B)
    dense = (system.to_dense() if isinstance(system, DiagonalStateSpace) else system).to_numpy()
    stable, (A_u, B_u, C_u), (Z, X, k) = _split_unstable(dense, alpha)
    n, n_u = dense.n, dense.n - k
    if order is not None and order < n_u:
        raise InvalidParameterError(f"order={order} is below the number of kept unstable states ({n_u})")
    if stable is None:
        raise InvalidParameterError(f"all {n} eigenvalues are outside the alpha region: nothing to reduce")
    factors = _dense_factors(stable, None)
    hsv_host = np.concatenate([np.full(n_u, np.inf), factors.hsv])
    choice = choose_order(hsv_host, order=order, tol=tol, energy=energy)
    if warn:
        warn_order_notes(choice.notes, stacklevel=3)
    r = choice.order
    (A_s, B_s, C_s, D_r), V_s, W_s = _reduce_one(stable, factors, r - n_u, method, match)
    r_s = r - n_u
    dtype = np.result_type(A_s, A_u)
    A_r = np.zeros((r, r), dtype=dtype)
    A_r[:r_s, :r_s], A_r[r_s:, r_s:] = A_s, A_u
    reduced = StateSpace(A_r, np.vstack([B_s, B_u]), np.hstack([C_s, C_u]), D_r, dt=dense.dt)
    # full projections: V = S diag(V_s, I), W = S^{-H} diag(W_s, I), S = Z [[I, X], [0, I]]
    V_hat = np.zeros((n, r), dtype=dtype)
    V_hat[:k, :r_s], V_hat[k:, r_s:] = V_s, np.eye(n_u)
    V_hat[:k, r_s:] += X
    W_hat = np.zeros((n, r), dtype=dtype)
    W_hat[:k, :r_s], W_hat[k:, r_s:] = W_s, np.eye(n_u)
    W_hat[k:, :r_s] -= X.conj().T @ W_s
    allowance = functools.partial(rounding_allowance, stable, factors, r_s, match)
    result = BalancedTruncationResult(reduced, hsv_host, r, error_bound(hsv_host, r), Z @ V_hat,
                                      Z @ W_hat, method, match, choice.notes, allowance)
    return result if is_numpy(xp) else _to_namespace(result, xp, dev)
