"""Order criteria, order selection and a-priori error bounds from Hankel singular values.

:func:`check_criterion` is the one place where ``order``, ``tol`` and ``energy`` are
checked (the core, :func:`lti_reduce_torch.reduce_` and the ``Compressor`` call it), and
:func:`choose_order` the one place where an order is clipped to the numerical rank.
"""

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ._array import to_numpy
from ._errors import InvalidParameterError, OrderAdjustedWarning

__all__ = ["select_order", "choose_order", "error_bound", "check_criterion", "check_order", "Criterion",
           "OrderChoice", "CriterionTypeError", "warn_order_notes"]

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
    return tail_bound(s, check_order(order, s.size))


def tail_bound(s, r):
    """:func:`error_bound` for HSVs and an order already checked (as for :func:`order_choice`)."""
    tail = s[r:]
    if r < s.size and s[r] == math.inf:     # infinite HSVs come first: only s[r] can tell
        raise InvalidParameterError(f"order={r} would truncate part of the kept unstable subsystem "
                                    f"({int(np.isinf(s).sum())} states with infinite HSV)")
    return float(2.0 * tail.sum())


class CriterionTypeError(InvalidParameterError, TypeError):
    """A criterion (``order``, ``tol``, ``energy``) of the wrong type, e.g. ``order=2.0`` or ``True``.

    Both an :class:`InvalidParameterError` (a ``ValueError``) and a ``TypeError``, so that
    either ``except`` clause catches it (as ``numpy.exceptions.AxisError`` is both a
    ``ValueError`` and an ``IndexError``).
    """


class Criterion(NamedTuple):
    """A checked, normalised order criterion (what :func:`check_criterion` returns).

    Attributes
    ----------
    kind : {'order', 'tol', 'energy'}
    value : int, tuple of int, dict of str to int, or float
        ``order``: an int in [0, n], a tuple of them (one per batch element, row-major)
        or ``{name: int}`` (only with ``by_name=True``); ``tol``: a float >= 0;
        ``energy``: a float in (0, 1).
    """

    kind: str
    value: object

    def keywords(self):
        """``{kind: value}``, to pass on as a keyword argument."""
        return {self.kind: self.value}

    def __str__(self):
        if isinstance(self.value, dict):
            inner = ", ".join(f"{k!r}: {v}" for k, v in sorted(self.value.items()))
            return f"order={{{inner}}}"
        return f"{self.kind}={self.value}"


class OrderChoice(NamedTuple):
    """What :func:`choose_order` decided.

    Attributes
    ----------
    order : int
        The reduced order r.
    notes : tuple of str
        Why r differs from a requested order, or why it is not unique (empty otherwise):
        what :func:`select_order` issues as :class:`OrderAdjustedWarning`.
    """

    order: int
    notes: tuple


def _is_integer(x):
    # numpy integers are numbers.Integral; bool and numpy.bool_ are excluded on purpose
    return type(x) is int or (isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_)))


def check_order(order, n=None, *, name="order"):
    """Check one reduced order: an integer (not a bool) in ``[0, n]``.

    Parameters
    ----------
    order : int
    n : int, optional
        The full order; without it only ``order >= 0`` is checked.
    name : str
        How the message names the argument (e.g. ``"order for layer 'ssm'"``).

    Returns
    -------
    int

    Raises
    ------
    CriterionTypeError
        Not an integer (floats, strings and bools included).
    InvalidParameterError
        Outside ``[0, n]``.
    """
    interval = f"[0, n={n}]" if n is not None else "[0, n]"
    if not _is_integer(order):
        raise CriterionTypeError(f"{name} must be an integer in {interval}, got {order!r}")
    order = int(order)
    if order < 0 or (n is not None and order > n):
        raise InvalidParameterError(f"{name} must be in {interval}, got {order}")
    return order


def check_criterion(*, order=None, tol=None, energy=None, n=None, batch=None, by_name=False):
    """The one check of an order criterion, used by every function that takes one.

    Parameters
    ----------
    order : int, sequence of int, or mapping of str to int, optional
        Reduced order in ``[0, n]``. A sequence (list, tuple, array) gives one order per
        batch element of a batched system (``batch`` must then be given); a mapping
        ``{name: order}`` is accepted only with ``by_name=True`` (per-layer orders of
        :func:`lti_reduce_torch.reduce_`; each name's range is checked by the caller
        with :func:`check_order`, who knows that layer's n).
    tol : float, optional
        Error budget: a finite number ``>= 0``. ``tol=0`` asks for an exact reduction,
        the numerical rank of the Hankel operator (the smallest r whose truncated HSVs
        are all exactly zero).
    energy : float, optional
        CompreSSM's tau, in the open interval (0, 1).
    n : int, optional
        The full order, to check ``order <= n``.
    batch : tuple of int, optional
        Batch shape of the system (``()`` or None: unbatched).
    by_name : bool
        Accept ``order`` as a mapping of names to orders.

    Returns
    -------
    Criterion
        ``(kind, value)`` with value normalised: ``int``, ``tuple`` of int (one per batch
        element, row-major; a scalar order given for a batched system is repeated),
        ``dict`` or ``float``.

    Raises
    ------
    InvalidParameterError
        Not exactly one of the three given, or a value out of range (the message names
        the argument and the accepted range).
    CriterionTypeError
        A value of the wrong type; bools are rejected everywhere, inside sequences too.

    Examples
    --------
    >>> from lti_reduce import check_criterion
    >>> check_criterion(energy=0.1)
    Criterion(kind='energy', value=0.1)
    >>> check_criterion(order=[2, 3], n=4, batch=(2,))
    Criterion(kind='order', value=(2, 3))
    """
    given = [k for k, v in (("order", order), ("tol", tol), ("energy", energy)) if v is not None]
    if len(given) != 1:
        raise InvalidParameterError(
            "give exactly one of order (reduced state dimension, an integer in [0, n]), tol (error budget "
            f">= 0: 2*sum of truncated HSVs <= tol) or energy (fraction tau in (0, 1)); got {given or 'none'}")
    if tol is not None:
        if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
            raise CriterionTypeError(f"tol must be a finite number >= 0, got {tol!r}")
        if not (math.isfinite(float(tol)) and float(tol) >= 0):
            raise InvalidParameterError(f"tol must be a finite number >= 0, got {tol!r}")
        return Criterion("tol", float(tol))
    if energy is not None:
        if isinstance(energy, (bool, np.bool_)) or not isinstance(energy, numbers.Real):
            raise CriterionTypeError(f"energy must be a fraction tau in the open interval (0, 1), got {energy!r}")
        if not 0 < float(energy) < 1:
            raise InvalidParameterError(f"energy must be a fraction tau in the open interval (0, 1), got {energy!r}")
        return Criterion("energy", float(energy))
    batch = tuple(batch or ())
    count = math.prod(batch)
    if isinstance(order, Mapping):
        if not by_name:
            raise CriterionTypeError(f"order must be an integer in [0, n], got a mapping {order!r}")
        out = {}
        for key, value in order.items():
            if not isinstance(key, str):
                raise CriterionTypeError(f"order: mapping keys must be names (str), got {key!r}")
            out[key] = check_order(value, None, name=f"order[{key!r}]")
        return Criterion("order", out)
    if _is_integer(order):
        value = check_order(order, n)
        return Criterion("order", (value,) * count if batch else value)
    if isinstance(order, str) or not hasattr(order, "__len__"):
        return Criterion("order", check_order(order, n))          # raises: not an integer
    if not batch:
        raise InvalidParameterError(f"order must be an integer for an unbatched system, got {order!r}")
    # nested lists as objects (a numeric dtype would turn [True, 3] into [1, 3]); arrays and
    # tensors through numpy, whose bool dtype stays bool
    nested = isinstance(order, (list, tuple))
    entries = list((np.asarray(order, dtype=object) if nested else np.asarray(to_numpy(order))).ravel())
    if len(entries) != count:
        raise InvalidParameterError(f"order has {len(entries)} entries but the system batch {batch} has {count}")
    return Criterion("order", tuple(check_order(o, n, name=f"order[{i}]") for i, o in enumerate(entries)))


def choose_order(hsv, *, order=None, tol=None, energy=None):
    """Reduced order from an explicit order, an error budget or an energy fraction, with notes.

    The decision of :func:`select_order`, without warnings: what was adjusted is returned.

    Parameters
    ----------
    hsv, order, tol, energy
        As for :func:`select_order`.

    Returns
    -------
    OrderChoice
        ``(order, notes)``.
    """
    s = _finite_hsv(hsv)
    return order_choice(s, check_criterion(order=order, tol=tol, energy=energy, n=s.size))


def order_choice(s, criterion):
    """:func:`choose_order` for HSVs and a criterion already checked (``s``: float64, 1-D, no
    NaN, non-negative, descending; ``criterion`` from :func:`check_criterion` with ``n = s.size``):
    what the library's own reductions call on HSVs they computed."""
    n = s.size
    n_inf = 0 if n == 0 or s[0] < math.inf else int(np.isinf(s).sum())    # infinite HSVs come first
    stable = s[n_inf:]
    rank = n_inf + int(np.count_nonzero(stable))
    top = float(stable[0]) if stable.size else 0.0      # the largest finite HSV: the scale of "equal"
    if criterion.kind == "order":
        r = criterion.value
        if r < n_inf:
            raise InvalidParameterError(f"order={r} is below the number of kept unstable states ({n_inf})")
        if r > rank:
            # the one place where an order is clipped to the numerical rank
            return OrderChoice(rank, (f"order={r} exceeds the numerical rank {rank} of the Hankel operator "
                                      f"(the other HSVs are exactly zero); using order {rank}",))
        if 0 < r < n and _splits_group(s, r, top):
            return OrderChoice(r, (f"order={r} splits a group of equal Hankel singular values "
                                   f"(s_{r} = {s[r - 1]:.6g}, s_{r + 1} = {s[r]:.6g}): the reduced system is "
                                   "not unique",))
        return OrderChoice(r, ())
    total = stable.sum()
    if criterion.kind == "tol":
        # tail[i] = sum_{j >= i} s_j over the stable HSVs; smallest r with 2*tail[r] <= tol
        tail = np.concatenate([np.cumsum(stable[::-1])[::-1], [0.0]])
        r_stable = int(np.argmax(2.0 * tail <= criterion.value))
    elif total == 0:
        r_stable = 0
    else:
        cumulative = np.cumsum(stable)
        r_stable = int(np.argmax(cumulative >= (1.0 - criterion.value) * total)) + 1
    r = n_inf + r_stable
    while n_inf < r < n and s[r] > 0 and _splits_group(s, r, top):
        r += 1
    return OrderChoice(r, ())


def warn_order_notes(notes, stacklevel=2):
    """Issue each note of an :class:`OrderChoice` as an :class:`OrderAdjustedWarning`.

    ``stacklevel`` counts from the caller of this function (2: the caller's caller).
    """
    for note in notes:
        warnings.warn(note, OrderAdjustedWarning, stacklevel=stacklevel + 1)


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
        Error budget ``>= 0``: the smallest r with ``2 * sum_{i>r} s_i <= tol``.
    energy : float, optional
        CompreSSM's tau in (0, 1): the smallest r with
        ``sum_{i<=r} s_i >= (1 - tau) * sum_i s_i`` (a sum of HSVs, not of their squares).

    Returns
    -------
    int

    See Also
    --------
    check_criterion : the rules for ``order``, ``tol`` and ``energy``.
    choose_order : the same decision, returning the notes instead of warning.

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
    choice = choose_order(hsv, order=order, tol=tol, energy=energy)
    warn_order_notes(choice.notes, stacklevel=2)
    return choice.order


def _splits_group(s, r, top):
    """True if s_r and s_{r+1} are equal to ``EQUAL_HSV_RTOL`` relative to ``top`` (the largest finite HSV)."""
    return bool(np.isfinite(s[r - 1]) and s[r - 1] - s[r] <= EQUAL_HSV_RTOL * top)
