"""Low-rank Gramian factors of large sparse systems by low-rank ADI (LR-ADI).

Equations (``^H`` conjugate transpose; ``P ~ Zc Zc^H``, ``Q_E ~ Zo Zo^H``)::

    continuous:  A P E^H + E P A^H + B B^H = 0,      A^H Q_E E + E^H Q_E A + C^H C = 0
    discrete:    A P A^H - E P E^H + B B^H = 0,      A^H Q_E A - E^H Q_E E + C^H C = 0

``Q_E`` is the observability Gramian of the descriptor form: the standard form
``(E^{-1} A, E^{-1} B, C)`` has the Gramians ``P`` and ``Q = E^H Q_E E``, so the Hankel
singular values are the singular values of ``Zo^H E Zc``.

Discrete time goes through the Cayley transform: with ``Ac = A - E``, ``Ec = A + E``,
``Ac X Ec^H + Ec X Ac^H = 2 (A X A^H - E X E^H)``, so the Stein equation with ``B`` is the
continuous equation of ``(Ac, Ec)`` with ``sqrt(2) B`` (stable discrete poles ``|z| < 1``
map to ``(z - 1)/(z + 1)`` in the left half plane; ``Ec`` is invertible because ``z = -1``
is not a pole). The relative residual is the same for both forms.

LR-ADI in residual-factor form (Benner, Kuerschner, Saak 2013/2014), shifts ``Re p < 0``::

    W_0 = B;   V = (A + p E)^{-1} W
    real p:            W <- W - 2 p E V,                 Z <- [Z, sqrt(-2 p) V]
    pair (p, conj p):  g = 2 sqrt(-Re p), d = Re p / Im p, V' = Re V + d Im V
                       W <- W + g^2 E V',                Z <- [Z, g V', g sqrt(d^2 + 1) Im V]

with the exact residual ``A Z Z^H E^H + E Z Z^H A^H + B B^H = W W^H``, so the relative
residual ``||W W^H||_2 / ||B B^H||_2 = ||W||_2^2 / ||B||_2^2`` costs O(n m^2). Real systems
keep real factors: complex shifts are used in conjugate pairs, each pair with one complex
solve. The observability equation uses ``(A + p E)^H = A^H + conj(p) E^H``: one LU
factorisation per shift serves both Gramians.
"""

from dataclasses import dataclass
import numbers

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._descriptor import SparseStateSpace, MatrixLU
from ._errors import LTIReduceError, InvalidParameterError, UnstableSystemError

__all__ = ["LowRankGramian", "lowrank_gramian_factor", "lowrank_gramian_factors", "ConvergenceError"]


class ConvergenceError(LTIReduceError, RuntimeError):
    """An iteration stopped at its budget before reaching its tolerance.

    Attributes
    ----------
    residual : float
        Relative residual reached.
    iterations : int
    """

    def __init__(self, message, residual=None, iterations=None):
        super().__init__(message)
        self.residual = residual
        self.iterations = iterations


@dataclass(frozen=True)
class LowRankGramian:
    """Low-rank factor ``Z`` of a Gramian (``P ~ Z Z^H``) and how it was computed.

    Attributes
    ----------
    Z : numpy.ndarray, shape (n, k)
        Real for real systems.
    kind : {'c', 'o'}
        'c': controllability Gramian P. 'o': the descriptor observability Gramian ``Q_E``
        (``Q = E^H Z Z^H E`` for the standard form; ``Q_E = Q`` when E = I).
    residual : float
        Relative residual ``||R||_2 / ||B B^H||_2`` (or with ``C^H C``) of the Lyapunov
        (continuous) or Stein (discrete) equation, computed exactly in low-rank form.
    residual_history : numpy.ndarray, shape (iterations + 1,)
        Relative residual before the first and after every ADI step (a conjugate pair
        counts as two steps).
    shifts : numpy.ndarray, shape (steps,), complex128
        The ADI shifts used, in order (in the Cayley-transformed variable for discrete
        time); both members of a conjugate pair are listed.
    iterations : int
        Number of ADI steps.
    """

    Z: object
    kind: str
    residual: float
    residual_history: object
    shifts: object
    iterations: int


# --------------------------------------------------------------------------------------
# the shifted pencil: one LU per shift
# --------------------------------------------------------------------------------------
class _Pencil:
    """``(A_c, E_c)`` of the continuous-form equation, with one LU of ``A_c + p E_c`` per shift.

    ``keep`` LU factorisations are cached (shifts given by the user repeat cyclically;
    projection shifts are new each round and are used once, for both Gramians)."""

    def __init__(self, system, keep):
        self.discrete = system.is_discrete
        A, E = system.A, system.identity_E()
        if system.is_discrete:
            A, E = A - E, A + E
        self.A, self.E = A, E
        self.E_is_identity = system.E is None and not system.is_discrete
        self.sparse = sp.issparse(A)
        self.keep = keep
        self._cache = {}

    def apply_E(self, X):
        return X if self.E_is_identity else self.E @ X

    def apply_EH(self, X):
        if self.E_is_identity:
            return X
        if self._EH is None:
            self._EH = self.E.conj().T.tocsc() if self.sparse else self.E.conj().T
        return self._EH @ X

    _EH = None

    def lu(self, p):
        key = complex(p)
        if key in self._cache:
            return self._cache[key]
        if self._last is not None and self._last[0] == key:   # a repeated projection shift
            return self._last[1]
        M = self.A + (p.real if p.imag == 0 else p) * self.E
        try:
            lu = MatrixLU(sp.csc_array(M) if self.sparse else M)
        except np.linalg.LinAlgError:
            raise UnstableSystemError(
                f"A + p E is singular for the ADI shift p = {complex(p):.6g}: the pencil (A, E) has the "
                f"eigenvalue {-complex(p):.6g} in the open right half plane (continuous form"
                f"{', after the Cayley transform of the discrete system' if self.discrete else ''}); "
                "the system is unstable") from None
        if self.keep:
            self._cache[key] = lu
        self._last = (key, lu)
        return lu

    _last = None


def _hermitian(M):
    if sp.issparse(M):
        diff = M - M.conj().T
        return diff.nnz == 0 or np.max(np.abs(diff.data)) <= 1e-14 * np.max(np.abs(M.data))
    return np.allclose(M, M.conj().T, rtol=0, atol=1e-14 * np.max(np.abs(M)))


def _ritz_shifts(pencil, Q, real, hermitian):
    """Stable shifts ``conj(theta)`` from the Ritz values theta of ``(A, E)`` on range(Q)
    (Q orthonormal).

    Ritz values in the closed right half plane are mirrored (``-|Re|``); zero or
    infinite ones are dropped. Real systems: real shifts, and one member (Im > 0) of each
    conjugate pair, which the iteration expands to the pair."""
    if Q.shape[1] == 0:
        return np.zeros(0, dtype=np.complex128)
    AQ, EQ = pencil.A @ Q, pencil.apply_E(Q)
    Ar, Er = Q.conj().T @ AQ, Q.conj().T @ EQ
    theta = None
    if hermitian:
        try:   # Hermitian A, Hermitian positive definite E: real Ritz values, real shifts
            theta = sla.eigh((Ar + Ar.conj().T) / 2, (Er + Er.conj().T) / 2, eigvals_only=True).astype(np.complex128)
        except np.linalg.LinAlgError:
            theta = None
    if theta is None:
        theta = sla.eigvals(Ar, Er)
    theta = theta[np.isfinite(theta)]
    # the shift that annihilates an eigenvalue lambda in ``(A + p E)^{-1} (A - conj(p) E)`` is
    # p = conj(lambda); mirrored into the left half plane when a Ritz value is not
    theta = -np.abs(theta.real) - 1j * theta.imag
    theta = theta[theta.real < 0]
    if real:
        # a near-real pair (|Im| tiny) becomes one real shift used twice: same LU, real arithmetic
        tiny = np.abs(theta.imag) <= 1e-10 * np.abs(theta)
        theta = np.where(tiny, theta.real + 0j, theta)
        theta = theta[theta.imag >= 0]
    return theta


def _orth(X):
    if X.shape[1] == 0:
        return X
    Q, R = np.linalg.qr(X)
    d = np.abs(np.diag(R))
    return Q[:, d > 1e-12 * d.max()] if d.size and d.max() > 0 else Q[:, :0]


class _ADIState:
    """One low-rank ADI iteration (one Gramian) advanced shift by shift."""

    def __init__(self, kind, rhs, real):
        self.kind = kind
        self.W = rhs.copy()
        self.real = real
        self.blocks = []
        self.shifts = []
        self.rhs_norm2 = np.linalg.norm(rhs, 2) ** 2
        self.history = [1.0 if self.rhs_norm2 > 0 else 0.0]
        self.recent = [rhs]

    @property
    def residual(self):
        return self.history[-1]

    def step(self, pencil, p, lu):
        """Apply shift p (and conj(p) when p is complex and the system real) with
        ``lu = LU(A + p E)``. For kind 'o' the equation's pencil is ``(A^H, E^H)``: its shift
        ``conj(p)`` uses ``LU(A + p E)^H``."""
        adjoint = self.kind == "o"
        shift = np.conj(p) if adjoint else p
        V = lu.solve(self.W, adjoint=adjoint)
        E_apply = pencil.apply_EH if adjoint else pencil.apply_E
        if shift.imag == 0 or not self.real:
            # real shift, or any shift of a complex system: W <- W - 2 Re(p) E V
            self.W = self.W - 2 * shift.real * E_apply(V)
            self.blocks.append(np.sqrt(-2 * shift.real) * V)
            self.shifts.append(complex(shift))
            self._remember(V)
            self._record()
            return
        g = 2 * np.sqrt(-shift.real)
        d = shift.real / shift.imag
        V_re = V.real + d * V.imag
        self.W = self.W + g ** 2 * E_apply(V_re)
        self.blocks.append(g * V_re)
        self.blocks.append(g * np.sqrt(d * d + 1) * V.imag)
        self.shifts += [complex(shift), complex(np.conj(shift))]
        self._remember(V_re, V.imag)
        self._record(2)

    def _remember(self, *blocks):
        # the Galerkin space of the next projection shifts: the last few ADI blocks
        self.recent = (self.recent + list(blocks))[-SUBSPACE_BLOCKS:]

    def _record(self, count=1):
        # ||W W^H||_2 = lambda_max(W^H W): an m x m eigenproblem instead of an n x m SVD
        gram = self.W.conj().T @ self.W
        res = float(np.linalg.eigvalsh((gram + gram.conj().T) / 2)[-1]) / self.rhs_norm2 \
            if self.rhs_norm2 > 0 else 0.0
        res = max(res, 0.0)
        # a pair updates the residual once; both steps are listed so history matches shifts
        self.history += [res] * count

    def factor(self, dtype):
        n = self.W.shape[0]
        Z = np.hstack(self.blocks) if self.blocks else np.zeros((n, 0), dtype=dtype)
        return Z.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------
_SHIFT_STRATEGIES = ("projection",)
#: number of trailing ADI blocks spanning the space of the next projection shifts
SUBSPACE_BLOCKS = 1


def _check_lowrank_args(system, residual_tol, maxiter, shifts):
    if not isinstance(system, SparseStateSpace):
        raise InvalidParameterError(f"system must be a SparseStateSpace, got {type(system).__name__}")
    if isinstance(residual_tol, bool) or not isinstance(residual_tol, numbers.Real) \
            or not 0 < residual_tol < 1:
        raise InvalidParameterError(f"residual_tol must be a relative residual in (0, 1), got {residual_tol!r}")
    if isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1:
        raise InvalidParameterError(f"maxiter must be a positive integer (ADI steps), got {maxiter!r}")
    if isinstance(shifts, str):
        if shifts not in _SHIFT_STRATEGIES:
            raise InvalidParameterError(f"shifts must be 'projection' or an array of shifts with Re < 0, "
                                        f"got {shifts!r}")
        return None
    given = np.asarray(shifts, dtype=np.complex128).reshape(-1)
    if given.size == 0 or not np.all(np.isfinite(given)) or np.any(given.real >= 0):
        raise InvalidParameterError(f"given ADI shifts must be finite with Re(p) < 0 (continuous form; for "
                                    f"discrete time, of the Cayley-transformed pencil), got {given!r}")
    if not system.is_complex:
        # real systems: each complex shift must come with its conjugate; keep one (Im > 0) per pair
        upper = np.sort_complex(given[given.imag > 0])
        lower = np.sort_complex(np.conj(given[given.imag < 0]))
        if upper.shape != lower.shape or not np.allclose(upper, lower, rtol=1e-12, atol=0):
            raise InvalidParameterError("a real system needs complex ADI shifts in conjugate pairs, "
                                        f"got {given!r}")
        given = given[given.imag >= 0]
    return given


def _compute_factors(system, kinds, residual_tol, maxiter, shifts):
    """Run LR-ADI for the requested kinds together (shared shifts, one LU per shift)."""
    given = _check_lowrank_args(system, residual_tol, maxiter, shifts)
    real = not system.is_complex
    dtype = system.B.dtype
    pencil = _Pencil(system, keep=given is not None)
    scale = np.sqrt(2.0) if system.is_discrete else 1.0
    states = []
    for kind in kinds:
        rhs = scale * (system.B if kind == "c" else system.C.conj().T)
        states.append(_ADIState(kind, rhs, real))
    hermitian = given is None and _hermitian(pencil.A) and _hermitian(pencil.E)
    queue = list(given) if given is not None else _initial_shifts(pencil, states, real, hermitian)
    step = 0
    while True:
        active = [s for s in states if s.residual > residual_tol]
        if not active:
            break
        if step >= maxiter:
            _raise_not_converged(active, maxiter, residual_tol)
        if not queue:
            queue = list(given) if given is not None else \
                _next_shifts(pencil, active, real, hermitian)
            if not len(queue):
                queue = _fallback_shifts(pencil, active, real)
        p = queue.pop(0)
        lu = pencil.lu(p)   # one factorisation serves every unconverged Gramian
        for s in active:
            s.step(pencil, p, lu)
            _check_divergence(s)
        step += 1 if (p.imag == 0 or not real) else 2
    return tuple(LowRankGramian(s.factor(dtype), s.kind, float(s.residual), np.asarray(s.history),
                                np.asarray(s.shifts, dtype=np.complex128), len(s.shifts)) for s in states)


def _initial_shifts(pencil, states, real, hermitian):
    # the pencil (A, E) itself is projected for both kinds: the observability equation's
    # Ritz values are the conjugates, which is the shift it takes from each p (see step)
    Q = _orth(np.hstack([s.W for s in states]))
    theta = _ritz_shifts(pencil, Q, real, hermitian)
    return list(theta) if theta.size else _fallback_shifts(pencil, states, real)


def _next_shifts(pencil, active, real, hermitian):
    # Galerkin subspace: the last ADI blocks of the unconverged iterations (projection shifts)
    Q = _orth(np.hstack([block for s in active for block in s.recent]))
    return list(_ritz_shifts(pencil, Q, real, hermitian))


def _fallback_shifts(pencil, active, real):
    """A single real shift ``-||A||/||E||`` (1-norms) when no Ritz value is usable."""
    norm = (lambda M: spla.norm(M, 1)) if pencil.sparse else (lambda M: np.linalg.norm(M, 1))
    return [complex(-norm(pencil.A) / norm(pencil.E))]


def _check_divergence(state):
    history = state.history
    if history[-1] > 1e4 * min(history) and history[-1] > 1.0:
        raise UnstableSystemError(
            f"the ADI residual of the {'controllability' if state.kind == 'c' else 'observability'} equation "
            f"grew from {min(history):.3g} to {history[-1]:.3g} (relative) in {len(history) - 1} steps: the pencil "
            "(A, E) has an eigenvalue in the right half plane (continuous) or outside the unit circle "
            "(discrete); Gramians and balanced truncation need a stable system")


def _raise_not_converged(active, maxiter, residual_tol):
    worst = max(active, key=lambda s: s.residual)
    name = "controllability" if worst.kind == "c" else "observability"
    recent = worst.history[-min(len(worst.history), 11):]
    stagnant = recent[-1] > 0.5 * recent[0]
    hint = (" The residual stagnated over the last steps: a pole on or very close to the imaginary axis "
            "(continuous) or the unit circle (discrete), i.e. a marginally stable system, makes ADI stall;"
            " check stability." if stagnant else "")
    raise ConvergenceError(
        f"low-rank ADI did not reach residual_tol={residual_tol:g} for the {name} Gramian within "
        f"maxiter={maxiter} steps: relative residual reached {worst.residual:.3g}.{hint} Raise maxiter, "
        "loosen residual_tol, or pass shifts= (an array of shifts with Re < 0).",
        residual=float(worst.residual), iterations=len(worst.history) - 1)


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def lowrank_gramian_factors(system, kinds=("c", "o"), *, residual_tol=1e-10, maxiter=200, shifts="projection"):
    """Low-rank factors of the controllability and/or observability Gramian (LR-ADI).

    Parameters
    ----------
    system : SparseStateSpace
        Stable: ``Re(eig(A, E)) < 0`` (continuous) or ``|eig(A, E)| < 1`` (discrete).
    kinds : sequence of {'c', 'o'}
        Which Gramians; computed together, sharing shifts and LU factorisations.
    residual_tol : float
        Stop when the relative residual ``||R||_2 / ||B B^H||_2`` (``C^H C`` for 'o') is at
        most this.
    maxiter : int
        Budget of ADI steps per Gramian (a conjugate pair of shifts counts as two).
    shifts : 'projection' or array_like of complex
        'projection': self-generating projection shifts (Ritz values of ``(A, E)`` on the
        span of the right-hand sides, then on the last ADI blocks of the unconverged
        iterations). An array: shifts with ``Re < 0`` used cyclically (their LUs are kept);
        a real system needs complex shifts in conjugate pairs.

    Returns
    -------
    tuple of LowRankGramian
        One per entry of ``kinds``.

    Raises
    ------
    UnstableSystemError
        A shifted matrix ``A + p E`` is exactly singular (an eigenvalue at ``-p`` in the
        right half plane), or the residual grows by 1e4 over its minimum.
    ConvergenceError
        ``maxiter`` steps did not reach ``residual_tol``; the message gives the residual
        reached and says what to change.

    Notes
    -----
    Continuous time solves ``A P E^H + E P A^H + B B^H = 0`` and
    ``A^H Q_E E + E^H Q_E A + C^H C = 0``; discrete time the Stein equations
    ``A P A^H - E P E^H + B B^H = 0`` and ``A^H Q_E A - E^H Q_E E + C^H C = 0`` through the
    Cayley transform (see the module notes). The residual is computed exactly from the
    residual factor (``R = W W^H``), not estimated. For an unstable system that passes
    neither check (an unstable mode that B does not excite) the factor is still that of a
    Lyapunov solution but not a Gramian: this function cannot certify stability of a large
    sparse system; check it by other means when in doubt.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> import lti_reduce as lr
    >>> n = 200
    >>> A = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]) * n ** 2
    >>> sys = lr.SparseStateSpace(A, np.ones((n, 1)), np.ones((1, n)) / n)
    >>> gc, go = lr.lowrank_gramian_factors(sys)
    >>> bool(gc.residual <= 1e-10 and go.residual <= 1e-10), gc.Z.dtype
    (True, dtype('float64'))

    See Also
    --------
    lowrank_gramian_factor, lowrank_balanced_truncation
    """
    kinds = tuple(kinds)
    if not kinds or any(k not in ("c", "o") for k in kinds) or len(set(kinds)) != len(kinds):
        raise InvalidParameterError(f"kinds must hold distinct 'c' (controllability) and/or 'o' (observability), "
                                    f"got {kinds!r}")
    return _compute_factors(system, kinds, residual_tol, maxiter, shifts)


def lowrank_gramian_factor(system, kind="c", *, residual_tol=1e-10, maxiter=200, shifts="projection"):
    """Low-rank factor ``Z`` (``P ~ Z Z^H``) of one Gramian by LR-ADI.

    Parameters
    ----------
    system : SparseStateSpace
    kind : {'c', 'o'}
    residual_tol, maxiter, shifts
        As for :func:`lowrank_gramian_factors`.

    Returns
    -------
    LowRankGramian

    See Also
    --------
    lowrank_gramian_factors
    """
    if kind not in ("c", "o"):
        raise InvalidParameterError(f"kind must be 'c' (controllability) or 'o' (observability), got {kind!r}")
    return lowrank_gramian_factors(system, (kind,), residual_tol=residual_tol, maxiter=maxiter, shifts=shifts)[0]
