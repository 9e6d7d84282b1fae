"""python-control compatible calls: ``balred``, ``hsvd`` and ``gram``.

These take python-control's arguments and return what python-control returns, so that
code written for ``control`` runs unchanged with ``import lti_reduce as ct``-style
substitution. They call the core (:func:`balanced_truncation`,
:func:`hankel_singular_values`, :func:`gramian`); nothing is computed here that the
core does not compute.

Differences from python-control 0.10, all deliberate:

* discrete-time systems are reduced as discrete-time systems (python-control hands them
  to SLICOT as continuous-time ones and returns a continuous-time result), and
  :func:`hsvd` works in discrete time (python-control raises ``NotImplementedError``);
* the reduced system keeps the input's time base ``dt``;
* complex systems are accepted when given as :class:`StateSpace` (python-control has
  no complex systems);
* no SLICOT (slycot) is needed.
"""

import numbers

import numpy as np
import scipy.linalg as sla

from ._array import to_numpy
from ._balanced import balanced_truncation, hankel_singular_values
from ._errors import InvalidParameterError
from ._gramians import gramian
from ._statespace import StateSpace, DiagonalStateSpace, as_statespace

__all__ = ["balred", "hsvd", "gram"]

_RETURN_TYPES = ("lti_reduce", "control", "scipy")
_METHOD_TO_MATCH = {"truncate": "truncate", "matchdc": "dc"}


def _family(sys):
    """Which library's system type ``sys`` is: 'lti_reduce', 'control' or 'scipy'."""
    if isinstance(sys, (StateSpace, DiagonalStateSpace)):
        return "lti_reduce"
    module = type(sys).__module__ or ""
    if module.startswith("control"):
        return "control"
    if module.startswith("scipy.signal"):
        return "scipy"
    return None


def _convert(system, family):
    if family == "control":
        return system.to_control()
    if family == "scipy":
        return system.to_scipy()
    return system


def _check_return_type(return_type, sys):
    if return_type is None:
        return _family(sys)
    if return_type not in _RETURN_TYPES:
        raise InvalidParameterError(f"return_type must be None (the type of sys) or one of {_RETURN_TYPES}, "
                                    f"got {return_type!r}")
    return return_type


def _single_system(sys):
    system = as_statespace(sys, "sys")
    if isinstance(system, DiagonalStateSpace):
        if system.batch_shape:
            raise InvalidParameterError(f"sys must be a single system; this DiagonalStateSpace has batch shape "
                                        f"{system.batch_shape}: index it first, e.g. sys[0]")
        system = system.to_dense()
    return system.to_numpy()


def balred(sys, orders, method="truncate", alpha=None, *, return_type=None):
    """Balanced reduced-order model(s), called and returned as by ``control.balred``.

    Parameters
    ----------
    sys : StateSpace, DiagonalStateSpace, control.StateSpace or scipy.signal lti/dlti
        The system to reduce, continuous or discrete. Modes outside the stability
        boundary ``alpha`` are kept whole and the stable part is reduced (as python-control
        does with SLICOT's AB09MD/AB09ND).
    orders : int or sequence of int
        Reduced order(s), the kept unstable modes included.
    method : {'truncate', 'matchdc'}
        'truncate': square-root balanced truncation; 'matchdc': singular perturbation
        approximation, which keeps the steady-state gain.
    alpha : float, optional
        Stability boundary: modes with real part >= alpha (continuous, alpha <= 0, default
        0) or modulus >= alpha (discrete, 0 <= alpha <= 1, default 1) are kept unreduced.
    return_type : {None, 'lti_reduce', 'control', 'scipy'}, optional
        Type of the returned systems: None (default) gives the family of ``sys``
        (a python-control system in, a ``control.StateSpace`` out; a scipy.signal
        system in, a ``scipy.signal.StateSpace`` out; else :class:`StateSpace`).

    Returns
    -------
    system or list of systems
        One reduced system for an integer ``orders``, a list for a sequence. As in
        python-control, a sequence of length one also gives a single system.

    Raises
    ------
    InvalidParameterError
        For a ``method`` other than 'truncate'/'matchdc', an order that is not an integer
        in [0, n] or is below the number of kept unstable modes, or a bad ``alpha``.

    See Also
    --------
    balanced_truncation : the full interface (order by tolerance or energy, error bound,
        projections, balancing-free method, finite horizons).

    Notes
    -----
    The reduced realisation is balanced: its Gramians are ``diag(hsv[:r])`` (continuous
    time, stable part). State signs are not unique; python-control (SLICOT) may return
    the same transfer function with some states negated. The error
    ``||G - G_r||_inf <= 2 * sum(hsv[r:])`` for a stable system.
    An order above the numerical rank of the Hankel operator is lowered to that rank
    with an :class:`OrderAdjustedWarning` (python-control lowers it silently).

    Examples
    --------
    >>> import numpy as np
    >>> import lti_reduce as lr
    >>> A = np.diag([-1.0, -2.0, -30.0])
    >>> B = np.array([[1.0], [1.0], [1.0]])
    >>> C = np.array([[1.0, 1.0, 1.0]])
    >>> G = lr.StateSpace(A, B, C)
    >>> Gr = lr.balred(G, 2)
    >>> Gr.n
    2
    >>> [G_r.n for G_r in lr.balred(G, [1, 2])]
    [1, 2]
    >>> Gdc = lr.balred(G, 2, method='matchdc')
    >>> bool(np.allclose(Gdc.dc_gain(), G.dc_gain()))
    True
    """
    if method not in _METHOD_TO_MATCH:
        raise InvalidParameterError(f"method must be 'truncate' or 'matchdc' (python-control's names; "
                                    f"balanced_truncation takes method='sr'/'bfsr'), got {method!r}")
    family = _check_return_type(return_type, sys)
    system = _single_system(sys)
    scalar = isinstance(orders, numbers.Integral) and not isinstance(orders, bool)
    if scalar:
        order_list = [orders]
    else:
        try:
            order_list = list(np.asarray(orders).ravel()) if not isinstance(orders, (list, tuple)) else list(orders)
        except TypeError:
            order_list = None
        if not order_list or any(isinstance(r, bool) or not isinstance(r, numbers.Integral) for r in order_list):
            raise InvalidParameterError(f"orders must be an integer or a non-empty sequence of integers in "
                                        f"[0, n={system.n}], got {orders!r}")
    reduced = [_convert(balanced_truncation(system, int(r), match=_METHOD_TO_MATCH[method], unstable="keep",
                                            alpha=alpha).system, family)
               for r in order_list]
    return reduced[0] if len(reduced) == 1 else reduced


def hsvd(sys):
    """Hankel singular values, descending, as ``control.hsvd`` returns them.

    Parameters
    ----------
    sys : StateSpace, DiagonalStateSpace, control.StateSpace or scipy.signal lti/dlti
        A stable system, continuous or discrete (python-control: continuous only).

    Returns
    -------
    hsv : numpy.ndarray, shape (n,), float64

    Raises
    ------
    UnstableSystemError
        If a pole is outside the stability region (a ``ValueError``, as in
        python-control).

    See Also
    --------
    hankel_singular_values : the same values, for batched and torch systems too.

    Notes
    -----
    Computed as the singular values of ``Lo^H Lc`` from the Gramian factors (python-control
    takes the square roots of the eigenvalues of ``Q P``, which loses half the digits of
    the small ones).

    Examples
    --------
    The example of ``control.hsvd``, ``G(s) = 1 / (s + 2)``:

    >>> import lti_reduce as lr
    >>> G = lr.StateSpace([[-2.0]], [[1.0]], [[1.0]])
    >>> H = lr.hsvd(G)
    >>> float(H[0])
    0.25
    """
    return np.asarray(to_numpy(hankel_singular_values(_single_system(sys))), dtype=np.float64)


def gram(sys, type):  # noqa: A002  (python-control's keyword name)
    """Gramian or its triangular factor, as ``control.gram`` returns it.

    Parameters
    ----------
    sys : StateSpace, DiagonalStateSpace, control.StateSpace or scipy.signal lti/dlti
        A stable system, continuous or discrete.
    type : {'c', 'o', 'cf', 'of'}
        'c' controllability Gramian ``P``, 'o' observability Gramian ``Q``; 'cf', 'of'
        their upper-triangular Cholesky factors ``R`` with ``P = R^H R`` (resp. ``Q``),
        diagonal >= 0.

    Returns
    -------
    numpy.ndarray, shape (n, n)
        Real for real systems.

    Raises
    ------
    InvalidParameterError
        For another ``type`` (a ``ValueError``, as in python-control).
    UnstableSystemError
        If a pole is outside the stability region.

    See Also
    --------
    gramian : the full interface (finite horizons, ``P = L L^H`` factors, torch).

    Notes
    -----
    The factor is not taken as a Cholesky factorisation of ``P`` (which fails when
    ``P`` is numerically singular): the square-root factor ``L`` (``P = L L^H``) from
    Hammarling's method is triangularised, ``L^H = Q R``, and the rows of ``R`` are
    scaled to a nonnegative diagonal. Equations::

        continuous:  A P + P A^H + B B^H = 0,     A^H Q + Q A + C^H C = 0
        discrete:    A P A^H - P + B B^H = 0,     A^H Q A - Q + C^H C = 0

    Examples
    --------
    >>> import numpy as np
    >>> import lti_reduce as lr
    >>> G = lr.StateSpace([[-1.0, 1.0], [0.0, -2.0]], [[0.0], [1.0]], [[1.0, 0.0]])
    >>> Wc = lr.gram(G, 'c')
    >>> Rc = lr.gram(G, 'cf')          # Wc = Rc' * Rc, Rc upper triangular
    >>> bool(np.allclose(Rc.T @ Rc, Wc)), bool(np.allclose(Rc, np.triu(Rc)))
    (True, True)
    """
    if type not in ("c", "o", "cf", "of"):
        raise InvalidParameterError(f"type must be 'c', 'o' (Gramians) or 'cf', 'of' (their Cholesky factors), "
                                    f"got {type!r}")
    system = _single_system(sys)
    if len(type) == 1:
        return np.asarray(gramian(system, type))
    L = np.asarray(gramian(system, type[0], factor=True))
    n = system.n
    R = np.zeros((n, n), dtype=L.dtype)
    if n:
        R_top = sla.qr(L.conj().T, mode="r")[0]
        rows = min(n, R_top.shape[0])
        R[:rows] = R_top[:rows]
        diagonal = np.diag(R).copy()
        phase = np.ones_like(diagonal)
        nonzero = diagonal != 0
        phase[nonzero] = diagonal[nonzero].conj() / np.abs(diagonal[nonzero])
        R = phase[:, None] * R
        if not np.iscomplexobj(L):
            R = R.real
    return R
