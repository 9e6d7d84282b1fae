"""An H-infinity oracle independent of :func:`lti_reduce.hinf_norm`, for the error bound tests.

``true_hinf(A, B, C, D, discrete)`` returns ``sup sigma_max(G)`` on the imaginary axis or the
unit circle from two independent computations:

* SLICOT's ``AB13DD`` (through slycot) on the *realified* system: a complex system
  ``(A, B, C, D)`` is run as ``([[Re A, -Im A], [Im A, Re A]], ...)``, whose transfer
  function at ``jw`` is unitarily equivalent to ``diag(G(jw), conj(G(-jw)))``, so both
  norms are equal;
* a dense frequency sweep (a grid plus the pole frequencies), refined locally around
  its best points (bounded scalar maximisation).

Where the two differ by more than ``1e-7`` relative, the gain is re-evaluated in 40-digit
arithmetic (mpmath, LU of ``zI - A``) at both peak frequencies, and the larger value is
the answer. The sweep alone is a lower bound; AB13DD and the mpmath values are evaluated
at the frequencies the two methods report.
"""

import numpy as np
import scipy.optimize as so

import mpmath
import slycot

__all__ = ["true_hinf", "true_error", "mp_gain", "ORACLE_COUNTS"]

ORACLE_COUNTS = {"calls": 0, "adjudicated": 0}

_AGREE_RTOL = 1e-7


def _realify(A, B, C, D):
    def big(X):
        return np.block([[X.real, -X.imag], [X.imag, X.real]])
    return big(A), big(B), big(C), big(D)


def _gains(A, B, C, D, points):
    n = A.shape[0]
    if n == 0:
        G = np.broadcast_to(D, (points.size,) + D.shape)
    else:
        pencils = points[:, None, None] * np.eye(n) - A
        G = C @ np.linalg.solve(pencils, np.broadcast_to(B.astype(complex), (points.size,) + B.shape)) + D
    return np.linalg.svd(G, compute_uv=False)[:, 0]


def _points(frequencies, discrete):
    frequencies = np.asarray(frequencies, dtype=float)
    return np.exp(1j * frequencies) if discrete else 1j * frequencies


def _sweep(A, B, C, D, discrete):
    """Best gain on a grid plus pole frequencies, refined around the 4 best points."""
    poles = np.linalg.eigvals(A) if A.size else np.zeros(0, complex)
    if discrete:
        grid = np.concatenate([np.linspace(-np.pi, np.pi, 721), np.angle(poles)])
    else:
        scale = max(1.0, float(np.abs(poles).max(initial=0.0)))
        w = np.logspace(-4, 2, 400) * scale
        grid = np.concatenate([-w[::-1], [0.0], w, poles.imag])
    grid = np.unique(grid)
    gains = _gains(A, B, C, D, _points(grid, discrete))
    best_gain, best_freq = float(gains.max()), float(grid[int(np.argmax(gains))])
    for i in np.argsort(gains)[-4:]:
        lo = grid[max(i - 1, 0)]
        hi = grid[min(i + 1, grid.size - 1)]
        if hi <= lo:
            continue
        res = so.minimize_scalar(lambda f: -_gains(A, B, C, D, _points([f], discrete))[0], bounds=(lo, hi),
                                 method="bounded", options={"xatol": 1e-12 * max(1.0, abs(hi))})
        if -res.fun > best_gain:
            best_gain, best_freq = float(-res.fun), float(res.x)
    return best_gain, best_freq


def _ab13dd(A, B, C, D, discrete):
    if np.iscomplexobj(A) or np.iscomplexobj(B) or np.iscomplexobj(C) or np.iscomplexobj(D):
        A, B, C, D = _realify(A.astype(complex), B.astype(complex), C.astype(complex), D.astype(complex))
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    if n == 0:
        return float(np.linalg.norm(D, 2)), 0.0
    gain, freq = slycot.ab13dd("D" if discrete else "C", "I", "N", "D", n, m, p, A.copy(), np.eye(n), B.copy(),
                               C.copy(), D.copy(), tol=1e-12)
    return float(gain), float(freq)


def _mp_response(A, B, C, D, frequency, discrete):
    """G at one frequency as an mpmath matrix, in the current mpmath precision."""
    z = mpmath.expjpi(mpmath.mpf(frequency) / mpmath.pi) if discrete else mpmath.mpc(0, frequency)
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    G = mpmath.matrix([[mpmath.mpc(complex(d)) for d in row] for row in np.asarray(D)])
    if n == 0:
        return G
    M = mpmath.matrix(n, n)
    for i in range(n):
        for j in range(n):
            M[i, j] = (z if i == j else 0) - mpmath.mpc(complex(A[i, j]))
    Cm = mpmath.matrix([[mpmath.mpc(complex(c)) for c in row] for row in C])
    for j in range(m):      # mpmath's lu_solve takes one right-hand side (LU cached on M)
        y = Cm * mpmath.lu_solve(M, mpmath.matrix([mpmath.mpc(complex(b)) for b in B[:, j]]))
        for i in range(p):
            G[i, j] += y[i]
    return G


def mp_gain(parts, frequency, discrete, dps=30):
    """sigma_max(sum_k sign_k G_k) at one frequency; each ``G_k = (A, B, C, D)`` of ``parts``
    (a list of ``(sign, (A, B, C, D))``) is evaluated and summed in ``dps``-digit arithmetic,
    then rounded once."""
    if not np.isfinite(frequency):       # AB13DD reports a peak at infinite frequency: G(inf) = D
        return float(np.linalg.norm(sum(sign * np.asarray(system[3]) for sign, system in parts), 2))
    with mpmath.workdps(dps):
        total = None
        for sign, system in parts:
            G = _mp_response(*system, frequency, discrete) * sign
            total = G if total is None else total + G
        values = np.array([[complex(total[i, j]) for j in range(total.cols)] for i in range(total.rows)])
    return float(np.linalg.norm(values, 2))


def true_hinf(A, B, C, D, discrete, parts=None):
    """``(norm, how)``: the H-infinity norm and 'agree' or 'mpmath' (see the module docstring).

    ``parts`` (optional): the same transfer function as ``[(sign, (A_k, B_k, C_k, D_k)), ...]``
    (e.g. ``G`` and ``-G_r`` of an error system), which the mpmath adjudication evaluates
    separately: two small LU factorisations instead of one of the block-diagonal whole.
    """
    ORACLE_COUNTS["calls"] += 1
    A, B, C, D = (np.asarray(X) for X in (A, B, C, D))
    g_slicot, f_slicot = _ab13dd(A, B, C, D, discrete)
    g_sweep, f_sweep = _sweep(A, B, C, D, discrete)
    top = max(g_slicot, g_sweep)
    if abs(g_slicot - g_sweep) <= _AGREE_RTOL * top:
        return top, "agree"
    ORACLE_COUNTS["adjudicated"] += 1
    parts = parts if parts is not None else [(1, (A, B, C, D))]
    candidates = [f_sweep, f_slicot] + ([-f_slicot] if np.iscomplexobj(A) else [])
    return max(mp_gain(parts, f, discrete) for f in candidates), "mpmath"


def true_error(full, reduced):
    """``(||G - G_r||_inf, how)`` for two systems (StateSpace / DiagonalStateSpace) by :func:`true_hinf`."""
    from .strategies import dense_matrices, error_system
    return true_hinf(*dense_matrices(error_system(full, reduced)), full.is_discrete,
                     parts=[(1, dense_matrices(full)), (-1, dense_matrices(reduced))])
