"""Order selection and a-priori error bounds from Hankel singular values."""

import numbers
import warnings

import numpy as np

from ._array import to_numpy
from ._errors import InvalidParameterError, OrderAdjustedWarning

__all__ = ["select_order", "error_bound"]

# HSVs closer than this (relative to s_1) are treated as one repeated value.
EQUAL_HSV_RTOL = 1e3 * np.finfo(np.float64).eps


def _finite_hsv(hsv):
    s = np.asarray(to_numpy(hsv), dtype=np.float64)
    if s.ndim != 1:
        raise InvalidParameterError(f"hsv must be a 1-D array of Hankel singular values, got shape {s.shape}")
    if np.any(np.isnan(s)) or np.any(s < 0):
        raise InvalidParameterError("hsv must be non-negative and not NaN")
    return s


def error_bound(hsv, order):
    """A-priori bound ``2 * sum_{i>r} s_i`` on ``||G - G_r||_inf`` (BT and SPA alike).

    Parameters
    ----------
    hsv : array_like, shape (n,)
        Hankel singular values in descending order. Infinite entries (the unstable part
        kept by ``unstable='keep'``) come first and are never truncated.
    order : int
        Reduced order r, ``0 <= r <= n``.

    Returns
    -------
    float

    Examples
    --------
    >>> import lti_reduce as lr
    >>> lr.error_bound([4.0, 2.0, 1.0, 0.5, 0.01], 3)   # 2 * (0.5 + 0.01)
    1.02
    """
    s = _finite_hsv(hsv)
    r = _check_order(order, s.size)
    tail = s[r:]
    if np.any(np.isinf(tail)):
        raise InvalidParameterError(f"order={r} would truncate part of the kept unstable subsystem "
                                    f"({int(np.isinf(s).sum())} states with infinite HSV)")
    return float(2.0 * tail.sum())


def _check_order(order, n):
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise InvalidParameterError(f"order must be an integer in [0, n={n}], got {order!r}")
    if order < 0 or order > n:
        raise InvalidParameterError(f"order must be in [0, n={n}], got {order}")
    return int(order)


def check_selection_args(order, tol, energy):
    """Validate that exactly one of order/tol/energy is given, each in its range."""
    given = [name for name, v in (("order", order), ("tol", tol), ("energy", energy)) if v is not None]
    if len(given) != 1:
        raise InvalidParameterError(
            "give exactly one of order (reduced state dimension), tol (error budget, "
            f"2*sum of truncated HSVs <= tol) or energy (fraction tau in (0, 1)); got {given or 'none'}")
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not np.isfinite(tol) or tol < 0:
            raise InvalidParameterError(f"tol must be a finite number >= 0, got {tol!r}")
    if energy is not None:
        if isinstance(energy, bool) or not isinstance(energy, numbers.Real) or not 0 < energy < 1:
            raise InvalidParameterError(f"energy must be a fraction tau in the open interval (0, 1), got {energy!r}")


def select_order(hsv, *, order=None, tol=None, energy=None):
    """Reduced order from an explicit order, an error budget or an energy fraction.

    Parameters
    ----------
    hsv : array_like, shape (n,)
        Hankel singular values, descending (``inf`` first for a kept unstable part).
    order : int, optional
        Explicit order in [0, n]. Clipped, with an :class:`OrderAdjustedWarning`, to the
        numerical rank (the number of nonzero HSVs); a warning also flags an order that
        splits a group of equal HSVs (the reduced system is then not unique).
    tol : float, optional
        Error budget: the smallest r with ``2 * sum_{i>r} s_i <= tol``.
    energy : float, optional
        CompreSSM's tau in (0, 1): the smallest r with
        ``sum_{i<=r} s_i >= (1 - tau) * sum_i s_i`` (a sum of HSVs, not of their squares).

    Returns
    -------
    int

    Notes
    -----
    With ``tol`` or ``energy`` a cut that would fall inside a group of equal HSVs is moved
    up to the end of the group: the criterion still holds and the result is unique.

    Examples
    --------
    >>> import lti_reduce as lr
    >>> hsv = [4.0, 2.0, 1.0, 0.5, 0.01]
    >>> lr.select_order(hsv, tol=0.1)       # 2 * 0.01 <= 0.1 < 2 * (0.5 + 0.01)
    4
    >>> lr.select_order(hsv, energy=0.2)    # 4 + 2 < 0.8 * 7.51 <= 4 + 2 + 1
    3
    >>> lr.select_order(hsv, order=2)
    2
    """
    check_selection_args(order, tol, energy)
    s = _finite_hsv(hsv)
    n = s.size
    n_inf = int(np.isinf(s).sum())
    stable = s[n_inf:]
    rank = n_inf + int(np.count_nonzero(stable))
    if order is not None:
        r = _check_order(order, n)
        if r < n_inf:
            raise InvalidParameterError(f"order={r} is below the number of kept unstable states ({n_inf})")
        if r > rank:
            warnings.warn(f"order={r} exceeds the numerical rank {rank} of the Hankel operator "
                          f"(the other HSVs are exactly zero); using order {rank}",
                          OrderAdjustedWarning, stacklevel=3)
            return rank
        if 0 < r < n and _splits_group(s, r):
            warnings.warn(f"order={r} splits a group of equal Hankel singular values "
                          f"(s_{r} = {s[r - 1]:.6g}, s_{r + 1} = {s[r]:.6g}): the reduced system is not unique",
                          OrderAdjustedWarning, stacklevel=3)
        return r
    total = stable.sum()
    if tol is not None:
        # tail[i] = sum_{j >= i} s_j over the stable HSVs; smallest r with 2*tail[r] <= tol
        tail = np.concatenate([np.cumsum(stable[::-1])[::-1], [0.0]])
        r_stable = int(np.argmax(2.0 * tail <= tol))
    else:
        if total == 0:
            r_stable = 0
        else:
            cumulative = np.cumsum(stable)
            r_stable = int(np.argmax(cumulative >= (1.0 - energy) * total)) + 1
    r = n_inf + r_stable
    while n_inf < r < n and s[r] > 0 and _splits_group(s, r):
        r += 1
    return r


def _splits_group(s, r):
    top = s[np.isfinite(s)][0] if np.any(np.isfinite(s)) else 0.0
    return np.isfinite(s[r - 1]) and s[r - 1] - s[r] <= EQUAL_HSV_RTOL * top
