"""Balanced truncation of large sparse / descriptor systems from low-rank Gramian factors.

With ``P ~ Zc Zc^H`` and ``Q_E ~ Zo Zo^H`` (see :mod:`lti_reduce._lowrank`) the square-root
method runs on the small matrix ``Zo^H E Zc = U S V^H``: ``W = Zo U_r S_r^{-1/2}``,
``V = Zc V_r S_r^{-1/2}`` give ``W^H E V = I`` and the reduced standard system
``(W^H A V, W^H B, C V, D)``.
"""

from dataclasses import dataclass
import numbers

import numpy as np
import scipy.linalg as sla

from ._balanced import BalancedTruncationResult
from ._descriptor import SparseStateSpace, MatrixLU, STANDARD_FORM_CONDITION
from ._errors import InvalidParameterError
from ._lowrank import LowRankGramian, lowrank_gramian_factor, lowrank_gramian_factors
from ._order import select_order, error_bound, check_criterion
from ._statespace import StateSpace

__all__ = ["LowRankBalancedTruncationResult", "lowrank_balanced_truncation", "lowrank_hankel_singular_values",
           "sampled_error"]

_EPS = float(np.finfo(np.float64).eps)
#: systems up to this size get the sampled error estimate by default (one sparse LU per
#: frequency point)
AUTO_SAMPLE_MAX_N = 20000
#: dense systems (ndarray A) up to this size go to the dense path
DENSE_PATH_MAX_N = 3000


@dataclass(frozen=True)
class LowRankBalancedTruncationResult(BalancedTruncationResult):
    """Outcome of :func:`lowrank_balanced_truncation` (a :class:`BalancedTruncationResult`).

    Attributes
    ----------
    system : StateSpace
        Reduced system of order r, standard form (``E_r = W^H E V = I``).
    hsv : numpy.ndarray, shape (k,)
        Approximate Hankel singular values, descending: the singular values of
        ``Zo^H E Zc`` above the rounding level (k is at most the factors' ranks, much less
        than n).
    order : int
    error_bound : float
        ``2 * sum_{i>r} hsv_i`` from the approximate HSVs (see Notes of
        :func:`lowrank_balanced_truncation` for what it means).
    V, W : numpy.ndarray, shape (n, r)
        ``W^H E V = I``; ``A_r = W^H A V``, ``B_r = W^H B``, ``C_r = C V``.
    method : {'sr', 'bfsr'}
    match : {'truncate'}
    controllability, observability : LowRankGramian
        The factors, with the residuals reached and their histories.
    error_estimate : float or None
        ``max_k ||G(s_k) - G_r(s_k)||_2`` over ``error_frequencies``: a lower bound on
        ``||G - G_r||_inf`` up to sampling; None when not computed.
    error_frequencies : numpy.ndarray or None
        The frequencies sampled (rad/s, or rad/sample times 1/dt in discrete time).
    """

    controllability: LowRankGramian = None
    observability: LowRankGramian = None
    error_estimate: object = None
    error_frequencies: object = None


def _svd_of_factors(system, gc, go):
    """SVD of ``Zo^H E Zc``, singular values below ``k eps max(s_1, ||Zo|| ||E Zc||)`` dropped."""
    EZc = system.apply_E(gc.Z)
    M = go.Z.conj().T @ EZc
    if M.size == 0:
        return np.zeros((go.Z.shape[1], 0)), np.zeros(0), np.zeros((0, gc.Z.shape[1]))
    U, s, Vh = sla.svd(M, full_matrices=False, lapack_driver="gesvd")
    level = max(M.shape) * _EPS * max(s[0], np.linalg.norm(go.Z, 2) * np.linalg.norm(EZc, 2))
    k = int(np.count_nonzero(s > level))
    return U[:, :k], s[:k], Vh[:k]


def lowrank_hankel_singular_values(system, *, residual_tol=1e-10, maxiter=200, shifts="projection"):
    """Approximate Hankel singular values of a large sparse system from LR-ADI factors.

    Parameters
    ----------
    system : SparseStateSpace
        Stable, continuous or discrete.
    residual_tol, maxiter, shifts
        As for :func:`lowrank_gramian_factors`.

    Returns
    -------
    hsv : numpy.ndarray, shape (k,)
        Singular values of ``Zo^H E Zc``, descending, above the rounding level.
    """
    gc, go = lowrank_gramian_factors(system, residual_tol=residual_tol, maxiter=maxiter, shifts=shifts)
    return _svd_of_factors(system, gc, go)[1]


def _frequency_grid(system, gc, go, samples):
    """``samples`` frequencies spanning the shifts' moduli (a proxy for the spectrum's range)."""
    if system.is_discrete:
        period = 1.0 if system.dt is True else system.dt
        theta = np.concatenate([[0.0], np.geomspace(1e-4, np.pi, samples - 1)])
        return theta / period
    moduli = np.abs(np.concatenate([gc.shifts, go.shifts]))
    moduli = moduli[moduli > 0]
    low, high = (moduli.min() / 10, moduli.max() * 10) if moduli.size else (1e-3, 1e3)
    return np.concatenate([[0.0], np.geomspace(low, high, samples - 1)])


def sampled_error(system, reduced, frequencies):
    """``max_k ||G(j w_k) - G_r(j w_k)||_2`` (discrete: ``z = exp(j w_k dt)``) over a grid.

    Parameters
    ----------
    system : SparseStateSpace
    reduced : StateSpace
    frequencies : array_like, shape (k,)

    Returns
    -------
    float
        A lower bound on the H-infinity norm of the error (exact up to the sampling).
    """
    w = np.asarray(frequencies, dtype=np.float64).reshape(-1)
    diff = system.frequency_response(w) - np.asarray(reduced.frequency_response(w))
    return float(max(np.linalg.norm(d, 2) for d in diff)) if w.size else 0.0


def _check_samples(error_samples, n):
    if isinstance(error_samples, str):
        if error_samples != "auto":
            raise InvalidParameterError(f"error_samples must be 'auto', a count >= 2, 0, or an array of "
                                        f"frequencies, got {error_samples!r}")
        return 48 if n <= AUTO_SAMPLE_MAX_N else 0
    if isinstance(error_samples, numbers.Integral) and not isinstance(error_samples, bool):
        if error_samples != 0 and error_samples < 2:
            raise InvalidParameterError(f"error_samples must be 0 (none) or at least 2, got {error_samples}")
        return int(error_samples)
    grid = np.asarray(error_samples, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise InvalidParameterError("error_samples as frequencies must be finite and >= 0")
    return grid


def lowrank_balanced_truncation(system, order=None, *, tol=None, energy=None, method="sr", match="truncate",
                                residual_tol=1e-10, maxiter=200, shifts="projection", error_samples="auto",
                                factors=None):
    """Balanced truncation of a large sparse or descriptor system from low-rank Gramian factors.

    Parameters
    ----------
    system : SparseStateSpace
        Stable (``Re(eig(A, E)) < 0``, or ``|eig(A, E)| < 1`` in discrete time).
    order, tol, energy
        Exactly one: reduced order, error budget (``2 * sum_{i>r} hsv_i <= tol``), or
        CompreSSM's energy fraction; as for :func:`balanced_truncation`, applied to the
        approximate HSVs.
    method : {'sr', 'bfsr'}
        Square-root (balanced result) or balancing-free square root (orthonormal bases;
        same transfer function).
    match : {'truncate'}
        Only truncation ('dc', singular perturbation, needs the full balanced
        realisation and is not available from low-rank factors).
    residual_tol, maxiter, shifts
        LR-ADI settings, as for :func:`lowrank_gramian_factors`.
    error_samples : 'auto', int, or array_like
        A posteriori estimate ``max ||G - G_r||_2`` over frequencies: 'auto' samples 48
        points (0, and log-spaced over the range of the shifts' moduli) when
        n <= 20000, else none; an int gives the count (0 for none); an array the
        frequencies. Each point costs one sparse LU of ``s E - A``.
    factors : tuple of LowRankGramian, optional
        ``(controllability, observability)`` from :func:`lowrank_gramian_factors`, to reuse.

    Returns
    -------
    LowRankBalancedTruncationResult

    Notes
    -----
    HSVs are the singular values of ``Zo^H E Zc`` and the projections
    ``W = Zo U_r S_r^{-1/2}``, ``V = Zc V_r S_r^{-1/2}`` (no balancing transform is
    inverted). The reduced system is in standard form (``W^H E V = I``).

    What the bound means: with exact Gramians, ``||G - G_r||_inf <= 2 sum_{i>r} s_i``.
    Here the Gramians solve their equations only up to the residuals reported in
    ``controllability.residual`` and ``observability.residual``: the computed HSVs are
    those of nearby Gramians, the tail sum omits the HSVs below the factors' rank, and
    ``error_bound`` is therefore an estimate of the bound, not a certificate. It is close
    to the true bound when the residuals are small and the HSVs decay well past r. The
    sampled ``error_estimate`` (a lower bound of the true error up to sampling) checks it
    a posteriori: an ``error_estimate`` above ``error_bound`` by more than rounding means
    the factors are not accurate enough for this r (tighten ``residual_tol``). For
    relaxation-type systems (symmetric A and E, like the heat equation below) the bound
    is attained at ``s = 0``, so the two agree to rounding there.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> import lti_reduce as lr
    >>> n = 200
    >>> A = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]) * n ** 2
    >>> sys = lr.SparseStateSpace(A, np.ones((n, 1)), np.ones((1, n)) / n)
    >>> res = lr.lowrank_balanced_truncation(sys, order=4)
    >>> res.system.n, bool(res.controllability.residual <= 1e-10)
    (4, True)
    >>> bool(abs(res.error_estimate - res.error_bound) <= 1e-6 * res.error_bound)   # attained at s = 0
    True

    See Also
    --------
    lowrank_gramian_factors, balanced_truncation, SparseStateSpace
    """
    if not isinstance(system, SparseStateSpace):
        raise InvalidParameterError(f"system must be a SparseStateSpace, got {type(system).__name__}")
    check_criterion(order=order, tol=tol, energy=energy)
    if method not in ("sr", "bfsr"):
        raise InvalidParameterError(f"method must be 'sr' or 'bfsr', got {method!r}")
    if match != "truncate":
        raise InvalidParameterError(f"match={match!r} is not available from low-rank factors: only 'truncate' "
                                    "(singular perturbation needs the full balanced realisation)")
    samples = _check_samples(error_samples, system.n)
    if factors is None:
        gc, go = lowrank_gramian_factors(system, residual_tol=residual_tol, maxiter=maxiter, shifts=shifts)
    else:
        gc, go = factors
        if gc.kind != "c" or go.kind != "o" or gc.Z.shape[0] != system.n or go.Z.shape[0] != system.n:
            raise InvalidParameterError("factors must be (controllability, observability) LowRankGramian "
                                        f"of this system (n={system.n})")
    U, s, Vh = _svd_of_factors(system, gc, go)
    r = select_order(s, order=order, tol=tol, energy=energy)
    if method == "sr":
        scale = 1.0 / np.sqrt(s[:r])
        W = (go.Z @ U[:, :r]) * scale
        V = (gc.Z @ Vh[:r].conj().T) * scale
    else:
        V = np.linalg.qr(gc.Z @ Vh[:r].conj().T)[0]
        W0 = np.linalg.qr(go.Z @ U[:, :r])[0]
        # W = W0 (W0^H E V)^{-H}: a solve, no inverse
        W = np.linalg.solve(W0.conj().T @ system.apply_E(V), W0.conj().T).conj().T
    Wh = W.conj().T
    reduced = StateSpace(Wh @ (system.A @ V), Wh @ system.B, system.C @ V, system.D, dt=system.dt) if r else \
        StateSpace(np.zeros((0, 0)), np.zeros((0, system.m)), np.zeros((system.p, 0)), system.D, dt=system.dt)
    grid = samples if isinstance(samples, np.ndarray) else \
        (_frequency_grid(system, gc, go, samples) if samples else None)
    estimate = sampled_error(system, reduced, grid) if grid is not None else None
    return LowRankBalancedTruncationResult(reduced, s, r, error_bound(s, r), V, W, method, match,
                                           controllability=gc, observability=go, error_estimate=estimate,
                                           error_frequencies=grid)


# --------------------------------------------------------------------------------------
# entry from the core's balanced_truncation
# --------------------------------------------------------------------------------------
def balanced_truncation_sparse(system, order=None, *, tol=None, energy=None, method="sr", match="truncate",
                               unstable="error", alpha=None, horizon=None, factors=None):
    """What :func:`balanced_truncation` does with a :class:`SparseStateSpace`.

    Dense A with ``n <= 3000``: the dense path (every option of
    :func:`balanced_truncation`), on ``(E^{-1} A, E^{-1} B)`` when E is absent or
    ``cond_1(E) <= 1e6``; the result's W is mapped to ``E^{-H} W`` so that ``W^H E V = I``
    and ``A_r = W^H A V``, ``B_r = W^H B``. Otherwise (sparse A, a larger dense A, or an
    ill-conditioned E, which is then kept throughout):
    :func:`lowrank_balanced_truncation` with its default LR-ADI settings, which supports
    neither ``unstable='keep'``, ``alpha``, ``horizon`` nor ``match='dc'``.
    """
    from ._balanced import balanced_truncation
    options = dict(unstable=unstable, alpha=alpha, horizon=horizon)
    lowrank_factors = isinstance(factors, tuple) and all(isinstance(f, LowRankGramian) for f in factors)
    if not system.is_sparse and system.n <= DENSE_PATH_MAX_N and not lowrank_factors:
        if system.E is None:
            return balanced_truncation(system.to_dense(), order, tol=tol, energy=energy, method=method,
                                       match=match, factors=factors, **options)
        lu = MatrixLU(system.E)
        if lu.condition_1(system.E) <= STANDARD_FORM_CONDITION:
            standard = StateSpace(lu.solve(system.A), lu.solve(system.B), system.C, system.D, dt=system.dt)
            res = balanced_truncation(standard, order, tol=tol, energy=energy, method=method, match=match,
                                      factors=factors, **options)
            W = lu.solve(res.W, adjoint=True)
            return BalancedTruncationResult(res.system, res.hsv, res.order, res.error_bound, res.V, W,
                                            res.method, res.match)
    if unstable != "error" or alpha is not None or horizon is not None:
        raise InvalidParameterError(f"unstable={unstable!r}, alpha={alpha!r}, horizon={horizon!r}: the low-rank "
                                    "path (sparse A, n > 3000, or an ill-conditioned E) supports only "
                                    "unstable='error', alpha=None and horizon=None")
    if factors is not None and not lowrank_factors:
        raise InvalidParameterError("factors for a sparse system must be the (controllability, observability) "
                                    "LowRankGramian pair from lowrank_gramian_factors")
    return lowrank_balanced_truncation(system, order, tol=tol, energy=energy, method=method, match=match,
                                       factors=factors)


def gramian_sparse(system, kind, factor, horizon):
    """What :func:`gramian` does with a :class:`SparseStateSpace`: a low-rank factor L
    (``factor=True``, shape (n, k)) or ``L L^H`` (n x n; small systems only) of the
    standard form's Gramian, as for a :class:`StateSpace`: ``P`` (kind 'c', ``L = Zc``) or
    ``Q = E^H Q_E E`` (kind 'o', ``L = E^H Zo``)."""
    if horizon is not None:
        raise InvalidParameterError(f"horizon={horizon!r}: finite-horizon Gramians of a SparseStateSpace are not "
                                    "supported")
    Z = lowrank_gramian_factor(system, kind).Z
    if kind == "o" and system.E is not None:
        Z = system.E.conj().T @ Z
    return Z if factor else Z @ Z.conj().T


def is_sparse_system(system):
    """True for a :class:`SparseStateSpace` (the dispatch test of the core functions)."""
    return isinstance(system, SparseStateSpace)
