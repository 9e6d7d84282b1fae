"""Real-output reduction: balanced truncation of the real system a complex layer computes.

LRU, S5 and S4D run a complex state ``x`` from a real input ``u`` and output
``y = Re(C x + D u)``. The map ``u -> y`` is the real system with the ``2n`` real states
``xi = (Re x_1, Im x_1, Re x_2, Im x_2, ...)``; reducing *that* system (square-root
balanced truncation in real arithmetic, by :func:`balanced_truncation`) and mapping the
result back to a complex diagonal system with ``Re(.)`` output gives the layer's form
again, with an error bound that holds for the layer's real output.
"""

from dataclasses import dataclass
import math

import numpy as np

from ._array import namespace, device_of, is_numpy, to_numpy
from ._balanced import balanced_truncation, hankel_factors
from ._errors import LTIReduceError, InvalidParameterError, ShapeError
from ._order import check_criterion, check_order, choose_order, error_bound, warn_order_notes
from ._statespace import StateSpace, DiagonalStateSpace, as_statespace

__all__ = ["NotDiagonalizableError", "RealOutputReduction", "real_output_system", "complex_modal_form",
           "real_output_balanced_truncation"]


class NotDiagonalizableError(LTIReduceError, ValueError):
    """A real system's A is (numerically) not diagonalisable: no modal complex form."""


@dataclass(frozen=True)
class RealOutputReduction:
    """Outcome of :func:`real_output_balanced_truncation`.

    Attributes
    ----------
    system : DiagonalStateSpace
        The reduced layer: ``k`` complex states with ``A = diag(eigenvalues)``, read out
        as ``y = Re(C x) + D u`` (``D`` real). Its real output equals the response of
        ``real_system`` to every real input.
    real_system : StateSpace
        The reduced real system (order ``real_order``), from balanced truncation of
        :func:`real_output_system` of the input.
    hsv : array, shape (2n,)
        Hankel singular values of the full real system (2n states), descending.
    order : int
        ``k``, the number of complex states of ``system``: one per conjugate pair of
        eigenvalues of the reduced real A, one per real eigenvalue.
    real_order : int
        ``r``, the order of ``real_system`` (``k <= r <= 2k``).
    real_eigenvalues : int
        How many of the ``k`` complex states have an exactly real eigenvalue
        (``r = 2k - real_eigenvalues``).
    error_bound : float or None
        ``2 * sum_{i>r} hsv_i``, a bound on the H-infinity norm of the change of the real
        output map (None for finite-horizon Gramians).
    method, match : str
        As passed to :func:`balanced_truncation`.
    """

    system: DiagonalStateSpace
    real_system: StateSpace
    hsv: object
    order: int
    real_order: int
    real_eigenvalues: int
    error_bound: object
    method: str
    match: str


def _host(system):
    """(A, B, C, D) as numpy, dt, for an unbatched system."""
    if isinstance(system, DiagonalStateSpace):
        if system.batch_shape:
            raise ShapeError(f"expected a single system, got a DiagonalStateSpace with batch shape "
                             f"{system.batch_shape}: index the batch first")
        lam = to_numpy(system.eigenvalues)
        return np.diag(lam), to_numpy(system.B), to_numpy(system.C), to_numpy(system.D), system.dt
    return to_numpy(system.A), to_numpy(system.B), to_numpy(system.C), to_numpy(system.D), system.dt


def real_output_system(system):
    """The real system ``u -> Re(C x + D u)`` of a complex system driven by a real input.

    Parameters
    ----------
    system : StateSpace or unbatched DiagonalStateSpace
        ``x' = A x + B u`` (or ``x[k+1] = ...``), complex or real, continuous or discrete.

    Returns
    -------
    StateSpace
        Real, with ``2n`` states ``xi = (Re x_1, Im x_1, ..., Re x_n, Im x_n)`` (interleaved):
        ``A_xi = Re(A) kron I_2 + Im(A) kron J`` with ``J = [[0, -1], [1, 0]]`` (a diagonal
        ``A`` gives 2x2 blocks ``[[Re l, -Im l], [Im l, Re l]]``), ``B_xi`` rows
        ``(Re b_i, Im b_i)``, ``C_xi`` columns ``(Re c_i, -Im c_i)``, ``D_xi = Re D``; numpy,
        same time base.

    Notes
    -----
    ``Re(C x) = Re(C) Re(x) - Im(C) Im(x)``, and the input being real, ``Re(D u) = Re(D) u``:
    the imaginary parts of ``D`` do not reach the output. The realification is exact, so
    ``G_xi(s) = (G(s) + conj(G(conj s))) / 2``; its Hankel singular values are those of the
    complex system with states ``(x, conj x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from lti_reduce import DiagonalStateSpace, real_output_system
    >>> layer = DiagonalStateSpace([0.5 + 0.5j], [[1.0]], [[1.0 - 1.0j]], dt=True)
    >>> real_output_system(layer).A
    array([[ 0.5, -0.5],
           [ 0.5,  0.5]])
    """
    system = as_statespace(system)
    A, B, C, D, dt = _host(system)
    n = A.shape[0]
    J = np.array([[0.0, -1.0], [1.0, 0.0]])
    A_xi = np.kron(A.real, np.eye(2)) + np.kron(A.imag, J)
    B_xi = np.empty((2 * n, B.shape[1]))
    B_xi[0::2], B_xi[1::2] = B.real, B.imag
    C_xi = np.empty((C.shape[0], 2 * n))
    C_xi[:, 0::2], C_xi[:, 1::2] = C.real, -C.imag
    return StateSpace(A_xi, B_xi, C_xi, np.array(D.real, dtype=np.float64), dt=dt)


def _count_states(eigenvalues):
    """Complex layer states of a real spectrum: one per conjugate pair, one per real eigenvalue.

    LAPACK's real eigensolver returns real eigenvalues with imaginary part exactly 0 and
    pairs exactly conjugate, so the count is ``#(Im >= 0)``."""
    return int(np.count_nonzero(np.asarray(eigenvalues).imag >= 0))


def complex_modal_form(system, *, cond_max=1e8):
    """Complex diagonal system whose real output equals a real system's output.

    Parameters
    ----------
    system : StateSpace
        Real, continuous or discrete, with diagonalisable ``A`` (order r).
    cond_max : float, optional
        Largest accepted 2-norm condition number of the (unit-column) eigenvector matrix.

    Returns
    -------
    DiagonalStateSpace
        ``k`` complex states (one per conjugate pair of eigenvalues of ``A``, with the
        eigenvalue of positive imaginary part; one per real eigenvalue, with a real
        eigenvalue, real ``b`` and real ``c``), real ``D``, read out as
        ``y = Re(C x) + D u``; numpy, same time base.

    Raises
    ------
    InvalidParameterError
        If ``system`` is complex.
    NotDiagonalizableError
        If the eigenvector matrix's condition number exceeds ``cond_max``.

    Notes
    -----
    With ``A X = X diag(mu)`` and ``z = X^{-1} xi`` (rows of ``X^{-1}`` are left
    eigenvectors): for a pair ``mu, conj(mu)`` with eigenvector ``v`` the real state is
    ``v z + conj(v z) = 2 Re(v z)``, so the complex state ``z`` (eigenvalue ``mu``,
    ``b = (X^{-1} B)_z``, ``c = 2 C v``) gives ``C xi = Re(c z)`` for that pair. For a
    real ``mu`` the eigenvector ``v`` is real, ``c = C v`` and ``b = Re (X^{-1} B)_z``:
    the imaginary part of that row is rounding error, and it cannot reach the output
    anyway (with ``mu`` and ``c`` real, ``Re(c z)`` depends on ``Re z`` alone, which
    ``Im b`` does not drive).

    Examples
    --------
    >>> import numpy as np
    >>> from lti_reduce import StateSpace, complex_modal_form
    >>> real = StateSpace([[0.5, -0.5], [0.5, 0.5]], [[1.0], [0.0]], [[1.0, 1.0]], dt=True)
    >>> layer = complex_modal_form(real)
    >>> layer.n, np.round(layer.eigenvalues, 12)
    (1, array([0.5+0.5j]))
    """
    system = as_statespace(system)
    if system.is_complex:
        raise InvalidParameterError("complex_modal_form needs a real system (the real output map); "
                                    f"got one with dtype {system.B.dtype}")
    A, B, C, D, dt = _host(system)
    if A.shape[0] == 0:
        return DiagonalStateSpace(np.zeros(0, complex), np.zeros((0, B.shape[1]), complex),
                                  np.zeros((C.shape[0], 0), complex), D, dt=dt)
    mu, X = np.linalg.eig(A)
    mu, X = mu.astype(complex), X.astype(complex)
    cond = np.linalg.cond(X)
    if not cond <= cond_max:
        raise NotDiagonalizableError(
            f"the real system's A (order {A.shape[0]}) is numerically not diagonalisable: its eigenvector "
            f"matrix has condition number {cond:.3g} > cond_max={cond_max:.3g}; the modal complex form "
            f"would not reproduce it")
    B_modal = np.linalg.solve(X, B.astype(complex))
    C_modal = C @ X
    pair = mu.imag > 0
    real = mu.imag == 0
    keep = np.flatnonzero(pair | real)
    lam = mu[keep]
    B_c = np.where(real[keep, None], B_modal[keep].real, B_modal[keep])
    C_c = np.where(real[None, keep], C_modal[:, keep].real, 2.0 * C_modal[:, keep])
    return DiagonalStateSpace(lam, B_c, C_c, D.astype(np.float64), dt=dt)


def _has_positive_real(eigenvalues):
    eigenvalues = np.asarray(eigenvalues)
    return bool(np.any((eigenvalues.imag == 0) & (eigenvalues.real > 0)))


class _Search:
    """Reduced real systems by real order: their spectra and complex-state counts."""

    def __init__(self, real, factors, method, match, horizon, avoid_positive_real):
        self.real, self.factors = real, factors
        self.method, self.match, self.horizon = method, match, horizon
        self.avoid_positive_real = avoid_positive_real
        self.rank = int(np.count_nonzero(to_numpy(factors.hsv)))
        self._balanced_A = None

    def reduce(self, r, method=None, match=None):
        """The core's reduction at real order r (its notes in ``result.notes``, not warned)."""
        return balanced_truncation(self.real, r, method=method or self.method, match=match or self.match,
                                   horizon=self.horizon, factors=self.factors, warn=False)

    def spectrum(self, r):
        """Eigenvalues of the reduced real A at order r. For truncation they are read cheaply
        from the leading r x r block of one square-root balanced realisation of order
        ``rank`` (the order-r projections are its first r columns): exact for the
        square-root method, the same spectrum for 'bfsr' (same transfer function) up to
        rounding; the chosen order is confirmed on the actual reduction."""
        if r == 0:
            return np.zeros(0)
        if self.match != "truncate":
            return np.linalg.eigvals(self.reduce(r).system.A)
        if self._balanced_A is None:
            self._balanced_A = self.reduce(self.rank, method="sr").system.A
        return np.linalg.eigvals(self._balanced_A[:r, :r])

    def admissible(self, eigenvalues, k):
        """At most k complex states, and (if asked) no exactly real positive eigenvalue."""
        if _count_states(eigenvalues) > k:
            return False
        return not (self.avoid_positive_real and _has_positive_real(eigenvalues))

    def states_needed(self, r0):
        """k for a criterion met from real order r0 on: the count at the first admissible
        order r >= r0 (without the avoidance, r0 itself); None if none up to the rank."""
        for r in range(r0, self.rank + 1):
            eigenvalues = self.spectrum(r)
            if self.admissible(eigenvalues, _count_states(eigenvalues)):
                return _count_states(eigenvalues)
        return None

    def largest_order(self, k):
        """The core's result at the largest admissible real order r <= min(2k, rank)
        (r = 0 always qualifies)."""
        r = min(2 * k, self.rank)
        while True:
            if r == 0 or self.admissible(self.spectrum(r), k):
                result = self.reduce(r)
                if r == 0 or self.admissible(np.linalg.eigvals(result.system.A), k):
                    return result
            r -= 1


def _reduce_one(system, order, tol, energy, method, match, horizon, cond_max, factors, avoid_positive_real):
    real = real_output_system(system)
    if factors is None:
        factors = hankel_factors(real, horizon=horizon)
    elif tuple(factors.hsv.shape) != (real.n,):
        raise ShapeError(f"factors must be hankel_factors(real_output_system(system)) with {real.n} HSVs, "
                         f"got HSVs of shape {tuple(factors.hsv.shape)}")
    hsv = to_numpy(factors.hsv)
    search = _Search(real, factors, method, match, horizon, avoid_positive_real)
    if order is not None:
        k = check_order(order, system.n, name="order (complex states)")
    else:
        # the real order that meets the criterion fixes the layer size k; then the largest
        # real order with that many complex states is taken (it meets the criterion too:
        # the tail sum falls and the kept energy rises with r)
        k = search.states_needed(choose_order(hsv, tol=tol, energy=energy).order)
        if k is None:
            k = system.n
    if k >= system.n:
        # the layer itself has n complex states and no error; a reduced real system near
        # full order may count more (a real eigenvalue of the layer is a double real
        # eigenvalue of the real system, which rounding may split)
        layer = _full_layer(system, cond_max)
        real_count = int(np.count_nonzero(to_numpy(layer.eigenvalues).imag == 0))
        return RealOutputReduction(layer, real, hsv, layer.n, real.n, real_count,
                                   None if horizon is not None else 0.0, method, match)
    result = search.largest_order(k)
    warn_order_notes(result.notes, stacklevel=3)
    layer = complex_modal_form(result.system, cond_max=cond_max)
    real_count = int(np.count_nonzero(to_numpy(layer.eigenvalues).imag == 0))
    bound = None if horizon is not None else error_bound(hsv, result.order)
    return RealOutputReduction(layer, result.system, hsv, layer.n, result.order, real_count, bound,
                               method, match)


def _full_layer(system, cond_max):
    """The unreduced system as a complex diagonal layer with real D (n states)."""
    A, B, C, D, dt = _host(system)
    if isinstance(system, DiagonalStateSpace):
        return DiagonalStateSpace(np.diag(A).astype(complex), B.astype(complex), C.astype(complex),
                                  D.real.astype(np.float64), dt=dt)
    lam, X = np.linalg.eig(A)
    cond = np.linalg.cond(X)
    if not cond <= cond_max:
        raise NotDiagonalizableError(f"the system's A is numerically not diagonalisable (eigenvector matrix "
                                     f"condition number {cond:.3g} > cond_max={cond_max:.3g})")
    return DiagonalStateSpace(lam.astype(complex), np.linalg.solve(X, B.astype(complex)),
                              (C @ X).astype(complex), D.real.astype(np.float64), dt=dt)


def _to_namespace(result, xp, dev):
    def conv(a):
        return xp.asarray(a, device=dev)
    s, q = result.system, result.real_system
    layer = DiagonalStateSpace(conv(s.eigenvalues), conv(s.B), conv(s.C), conv(s.D), dt=s.dt)
    real = StateSpace(conv(q.A), conv(q.B), conv(q.C), conv(q.D), dt=q.dt)
    return RealOutputReduction(layer, real, conv(result.hsv), result.order, result.real_order,
                               result.real_eigenvalues, result.error_bound, result.method, result.match)


def real_output_balanced_truncation(system, order=None, *, tol=None, energy=None, method="sr",
                                    match="truncate", horizon=None, cond_max=1e8, factors=None,
                                    avoid_positive_real=False):
    """Balanced truncation of the real output map ``u -> Re(C x + D u)``, back in complex diagonal form.

    Parameters
    ----------
    system : StateSpace or DiagonalStateSpace
        Stable, complex (or real), continuous or discrete, driven by a real input with the
        real part of its output read (LRU, S5, S4D). A batched DiagonalStateSpace (e.g.
        S4D's channels) is reduced element by element. Torch tensors are accepted; the
        result's arrays are returned in the input's namespace and on its device (the
        reduction itself runs in numpy, float64).
    order : int or sequence of int, optional
        Number of *complex* states ``k`` of the reduced layer, in [0, n] (one per batch
        element for a batched system).
    tol : float, optional
        Error budget for the real output: ``2 * sum_{i>r} s_i <= tol`` over the real
        system's HSVs.
    energy : float, optional
        CompreSSM's tau in (0, 1), applied to the real system's HSVs. Exactly one of
        ``order``, ``tol``, ``energy`` is required.
    method, match, horizon
        As for :func:`balanced_truncation` (applied to the real system).
    cond_max : float, optional
        Passed to :func:`complex_modal_form`.
    factors : HankelFactors, optional
        ``hankel_factors(real_output_system(system), horizon=horizon)``, to reuse one
        factorisation for several criteria (unbatched systems only).
    avoid_positive_real : bool, optional
        Take only real orders whose reduced spectrum has no exactly real positive
        eigenvalue: for layers that cannot hold one (LRU: ``theta_log = log(angle)``
        needs an angle in (0, 2 pi)). See Notes.

    Returns
    -------
    RealOutputReduction, or a tuple of them (row-major) for a batched system.

    Raises
    ------
    UnstableSystemError, InvalidParameterError
        As :func:`balanced_truncation`.
    NotDiagonalizableError
        If the reduced real A has no well-conditioned eigenvector basis.

    Notes
    -----
    **Counting.** The layer holds one complex state per conjugate pair of eigenvalues
    of the reduced real ``A_r`` and one per real eigenvalue, so real order ``r`` gives
    ``k(r) = r - #pairs`` complex states (``r/2 <= k(r) <= r``). The real order is
    chosen as follows:

    * ``order=k``: the largest ``r <= min(2k, rank)`` with ``k(r) <= k`` (``rank`` = number
      of nonzero real HSVs). ``k(r) = k`` unless the rank is below ``2k`` or the
      spectrum forbids it; ``r = 2k`` when the reduced spectrum has no real eigenvalue.
      ``k = n`` returns the layer unchanged (``D`` replaced by ``Re D``; dense input
      diagonalised), with ``real_order = 2n`` and bound 0.
    * ``tol`` / ``energy``: ``r0`` = the smallest real order meeting the criterion on the
      real HSVs (:func:`select_order`), ``k = k(r0)``, then ``r`` as for ``order=k``.
      So ``r >= r0`` (the criterion holds, with a bound no larger) and ``order=k`` gives
      the same result; ``k(r0) >= n`` keeps the layer whole, as ``order=n``.
    * ``avoid_positive_real=True`` adds a condition on the candidate orders: none of the
      reduced eigenvalues is real and positive. ``order=k`` takes the largest such
      ``r <= min(2k, rank)`` with ``k(r) <= k`` (``r = 0``, a static gain, at worst);
      ``tol``/``energy`` take ``k = k(r1)`` at the smallest such ``r1 >= r0`` (the layer is
      kept whole if there is none below the rank), then ``r`` as for ``order=k``.

    For ``match='truncate'`` the search reads ``k(r)`` from the leading ``r x r`` blocks of
    one square-root balanced realisation, then confirms the chosen ``r`` on the actual
    reduced system (``method`` and ``match`` as given).

    **Bound.** ``s_{r+1} <= ||G_xi - G_xi,r||_inf <= 2 sum_{i>r} s_i`` for the real
    systems, i.e. for the layer's real output (the reduced layer's real output *is*
    ``G_xi,r`` up to rounding in the modal transformation). The real output's Hankel
    operator is ``(H + conj(H)) / 2`` with ``H`` the complex system's, so by Weyl's
    inequality ``s_{2k+1}(real) <= s_{k+1}(complex)``: at real order ``2k`` (k complex
    states, no real eigenvalue) the error floor is never above the complex reduction's at
    k states. The *a-priori* bound and the state count at a given
    budget are often, not always, smaller than the complex reduction's (measured in
    ``docs/results.md``; for LRU ``avoid_positive_real`` can cost states).

    Examples
    --------
    >>> import numpy as np
    >>> from lti_reduce import DiagonalStateSpace, real_output_balanced_truncation
    >>> rng = np.random.default_rng(0)
    >>> lam = 0.9 * np.exp(1j * rng.uniform(0.1, 3.0, 6))
    >>> layer = DiagonalStateSpace(lam, rng.standard_normal((6, 2)) + 0j,
    ...                            rng.standard_normal((2, 6)) + 1j * rng.standard_normal((2, 6)), dt=True)
    >>> res = real_output_balanced_truncation(layer, order=3)
    >>> res.order, res.system.n, res.hsv.shape
    (3, 3, (12,))
    """
    system = as_statespace(system)
    batch = getattr(system, "batch_shape", ())
    # the range of an order (complex states, [0, n]) is checked per element, naming what it counts
    criterion = check_criterion(order=order, tol=tol, energy=energy, batch=batch)
    if system.n == 0:
        raise InvalidParameterError("the system has no states (n = 0): there is nothing to reduce")
    xp, dev = namespace(system.B), device_of(system.B)
    if batch and factors is not None:
        raise InvalidParameterError(f"factors can be reused for an unbatched system only; this one has batch "
                                    f"shape {batch}")
    if factors is not None:
        factors = type(factors)(*(to_numpy(a) for a in (factors.Lc, factors.Lo, factors.U, factors.hsv,
                                                        factors.Vh)))
    if batch:
        count = math.prod(batch)
        orders = criterion.value if criterion.kind == "order" else [None] * count
        flat = DiagonalStateSpace(*(xp.reshape(a, (count,) + tuple(a.shape[len(batch):]))
                                    for a in (system.eigenvalues, system.B, system.C, system.D)), dt=system.dt)
        results = [_reduce_one(flat[i], orders[i], tol, energy, method, match, horizon, cond_max, None,
                               avoid_positive_real) for i in range(count)]
    else:
        results = [_reduce_one(system, order, tol, energy, method, match, horizon, cond_max, factors,
                               avoid_positive_real)]
    if not is_numpy(xp):
        results = [_to_namespace(res, xp, dev) for res in results]
    return tuple(results) if batch else results[0]
