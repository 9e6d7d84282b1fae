"""System norms: the H-infinity norm (level-set method), the H2 norm and the Hankel norm (Gramians).

Conventions are those of :mod:`lti_reduce._statespace`::

    continuous (dt == 0):  G(s) = C (s I - A)^{-1} B + D,  frequency w in rad/s, s = 1j*w
    discrete   (dt != 0):  G(z) = C (z I - A)^{-1} B + D,  frequency w in rad/s, z = exp(1j*w*dt)
                           (dt=True: period 1, w in rad/sample)

The H-infinity norm is ``sup_w sigma_max(G(.))`` over the imaginary axis or the unit
circle. It is computed with the level-set method of Boyd & Balakrishnan and Bruinsma &
Steinbuch: for a level ``gamma`` above ``sigma_max(D)``, ``gamma`` is a singular value
of ``G`` at frequency ``w`` exactly when ``1j*w`` is an eigenvalue of a Hamiltonian
matrix (continuous) or ``exp(1j*w*dt)`` is an eigenvalue of a symplectic pencil
(discrete). These "crossing" frequencies cut the frequency range into intervals on
each of which ``sigma_max(G) - gamma`` keeps one sign, so evaluating the gain at the
interval midpoints either raises the lower bound above ``gamma`` or proves
``||G|| <= gamma``.
"""

import numbers
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla

from ._array import to_numpy
from ._errors import InvalidParameterError, LTIReduceError, ShapeError
from ._balanced import hankel_singular_values
from ._gramians import check_scale, complex_schur, gramian, raise_unstable
from ._statespace import DiagonalStateSpace, StateSpace, as_statespace, unstable_eigenvalues

__all__ = ["HinfNorm", "hinf_norm", "h2_norm", "hankel_norm"]

# An eigenvalue within this distance of the imaginary axis (relative to ||H||_1) or of
# the unit circle (relative to ||M||_1 + ||N||_1) is taken as a candidate crossing. The
# tolerance is deliberately loose: a spurious candidate only adds one more point at
# which the gain is evaluated (every evaluation is a valid lower bound), whereas a
# missed crossing could stop the iteration early. A crossing whose two frequencies
# are about to merge is perturbed by O(sqrt(eps)) ~ 1e-8; 1e-6 leaves a margin.
_BOUNDARY_RTOL = 1e-6

# The level tested is at least this far above the lower bound (relative): closer than a
# few ulps, gamma**2 - sigma(D)**2 and the gain itself are not resolved any more.
_MIN_RELATIVE_GAP = 4 * np.finfo(float).eps

# Each iteration multiplies the lower bound by more than (1 + rtol) and the method
# converges quadratically (typically < 10 iterations); hitting this cap means the
# eigenvalue computations are not trustworthy for this system.
_MAX_ITERATIONS = 100

# Up to this order the gain is evaluated by an LU factorisation of s I - A at every
# point (accurate for structured A, O(n^3) per point); above it through the Schur form
# (O(n^2) per point). _SOLVE_CHUNK_ENTRIES bounds the batched pencils held at once.
_DIRECT_SOLVE_MAX_ORDER = 64
_SOLVE_CHUNK_ENTRIES = 2 ** 20


class HinfNorm(NamedTuple):
    """Result of :func:`hinf_norm`.

    Attributes
    ----------
    norm : float
        ``sup_w sigma_max(G)`` over the imaginary axis (continuous) or the unit circle
        (discrete).
    peak_frequency : float
        A frequency in rad/s (rad/sample when ``dt=True``; ``z = exp(1j w dt)`` in
        discrete time) at which ``sigma_max(G)`` equals ``norm``; negative frequencies
        occur for complex systems, whose response is not conjugate-symmetric; ``inf`` for
        a continuous system whose supremum is only approached as ``w -> inf`` (it is then
        ``sigma_max(D)``).
    """

    norm: float
    peak_frequency: float


class _Realization:
    """Host numpy copy of a single system, with what the norm computations need."""

    def __init__(self, system):
        system = as_statespace(system, "system")
        check_scale(system, "the norm")
        if isinstance(system, DiagonalStateSpace):
            if system.batch_shape:
                raise ShapeError(f"system must be a single system; this DiagonalStateSpace has batch shape "
                                 f"{system.batch_shape}: index it first, e.g. system[0]")
            self.eigenvalues = to_numpy(system.eigenvalues)
            self.A = np.diag(self.eigenvalues)
        else:
            system = system.to_numpy()
            self.eigenvalues = None
            self.A = system.A
        self.B, self.C, self.D = to_numpy(system.B), to_numpy(system.C), to_numpy(system.D)
        arrays = [self.A, self.B, self.C, self.D]
        # A complex dtype with zero imaginary parts is a real system: G(-jw) = conj G(jw),
        # so only half of the axis (or circle) needs to be searched.
        self.is_complex = any(np.iscomplexobj(a) and np.any(a.imag != 0) for a in arrays)
        if not self.is_complex:
            self.A, self.B, self.C, self.D = (np.ascontiguousarray(a.real) for a in arrays)
            if self.eigenvalues is not None:
                self.eigenvalues = np.ascontiguousarray(self.eigenvalues.real)
        self.is_discrete = system.is_discrete
        self.period = 1.0 if system.dt is True else float(system.dt)
        self.n, self.m, self.p = self.A.shape[0], self.B.shape[1], self.C.shape[0]
        self.poles = self.eigenvalues if self.eigenvalues is not None else np.linalg.eigvals(self.A)
        self._schur = None

    def require_stable(self, caller):
        unstable = unstable_eigenvalues(self.poles, self.is_discrete)
        if unstable.size:
            raise_unstable(unstable, self.is_discrete, what=f"{caller}: the system")

    def boundary_points(self, angles):
        """``1j*w`` (continuous, ``angles`` = w) or ``exp(1j*theta)`` (discrete, per-sample angles)."""
        angles = np.asarray(angles, dtype=float)
        return np.exp(1j * angles) if self.is_discrete else 1j * angles

    def gains(self, angles):
        """``sigma_max(G)`` at the boundary points of ``angles``, shape (k,)."""
        points = self.boundary_points(angles)
        if self.eigenvalues is not None:
            # Diagonal A: the resolvent is elementwise, O(n) per point.
            resolvent = 1.0 / (points[:, None] - self.eigenvalues[None, :])
            response = (self.C[None, :, :] * resolvent[:, None, :]) @ self.B + self.D
        elif self.n <= _DIRECT_SOLVE_MAX_ORDER:
            # LU of s I - A itself keeps the structure of A (zeros, exactly represented
            # entries): near a lightly damped pole this is orders of magnitude more
            # accurate than any transformed form (the AB13DD example: 1e-16 against
            # 5e-11 through the Schur form). Chunked to bound the memory.
            response = np.empty((points.size, self.p, self.m), dtype=complex)
            chunk = max(1, _SOLVE_CHUNK_ENTRIES // (self.n * self.n))
            for start in range(0, points.size, chunk):
                block = points[start:start + chunk]
                pencils = block[:, None, None] * np.eye(self.n) - self.A
                rhs = np.broadcast_to(self.B, (block.size, self.n, self.m))
                response[start:start + chunk] = self.C @ np.linalg.solve(pencils, rhs) + self.D
        else:
            # Large n: with the complex Schur form A = Q T Q^H, computed once, each point
            # costs a triangular solve, O(n^2 m), instead of an O(n^3) factorisation; the
            # unitary change of basis keeps the evaluation normwise backward stable.
            if self._schur is None:
                T, Q = complex_schur(self.A)
                self._schur = (T, Q.conj().T @ self.B, self.C @ Q)
            T, QhB, CQ = self._schur
            # LAPACK's triangular solve directly: scipy's wrapper costs more than the solve.
            triangular_solve, = sla.get_lapack_funcs(("trtrs",), (T,))
            response = np.empty((points.size, self.p, self.m), dtype=complex)
            diagonal = np.diag_indices(self.n)
            for k, point in enumerate(points):
                shifted = -T
                shifted[diagonal] += point
                X, info = triangular_solve(shifted, QhB)
                if info != 0:
                    raise LTIReduceError(f"the frequency response could not be evaluated at {point!r}: "
                                         f"LAPACK ?trtrs returned info={info} (a pole on the boundary)")
                response[k] = CQ @ X + self.D
        return np.linalg.svd(response, compute_uv=False)[:, 0]


def _frobenius(x):
    """Frobenius norm without overflow or underflow of the squares (entries up to ~1e308)."""
    largest = np.abs(x).max(initial=0.0)
    return float(largest * np.linalg.norm(x / largest)) if largest > 0 else 0.0


def _check_rtol(rtol):
    if isinstance(rtol, (bool, np.bool_)) or not isinstance(rtol, numbers.Real) \
            or not np.isfinite(float(rtol)) or float(rtol) <= 0:
        raise InvalidParameterError(f"rtol must be a finite number > 0 (the relative accuracy of the norm), "
                                    f"got {rtol!r}")
    return float(rtol)


# --------------------------------------------------------------------------------------
# H-infinity norm
# --------------------------------------------------------------------------------------
class _LevelSet:
    """Crossing frequencies of the level ``gamma`` by the singular values of ``G``.

    ``gamma`` is a singular value of ``G`` at a boundary point when ``G u = gamma v``
    and ``G^H v = gamma u`` for some ``(u, v) != 0``. Written in state-space form, with
    the state ``x`` of ``G`` and the co-state ``q`` of ``G^H`` (on the axis
    ``G(1j*w)^H = D^H - B^H (1j*w I + A^H)^{-1} C^H``, on the circle
    ``G(z)^H = D^H + B^H (z^{-1} I - A^H)^{-1} C^H``), this is an eigenproblem:

    * continuous: ``1j*w`` is an eigenvalue of the Hamiltonian matrix
      ``[[F, -gamma BRB], [gamma CSC, -F^H]]`` obtained by eliminating ``u, v``, with
      ``R = gamma^2 I - D^H D``, ``S = gamma^2 I - D D^H``, ``F = A + B R^{-1} D^H C``,
      ``BRB = B R^{-1} B^H`` and ``CSC = C^H S^{-1} C``. The levels tested in
      continuous time are above ``sigma_max(D)`` (the gain at infinite frequency is part
      of the first lower bound), so ``R`` and ``S`` are positive definite; with
      ``D = U diag(sigma) V^H`` they are diagonal in the bases ``V`` and ``U`` and their
      eigenvalues are formed as ``(gamma - sigma)(gamma + sigma)``, which keeps full
      relative accuracy when ``gamma`` is within a few ulps of ``sigma_max(D)``;
    * discrete: ``z = exp(1j*theta)`` is an eigenvalue of the extended symplectic
      pencil ``M - z N`` acting on ``(x, q, u, v)``::

          M = [[A, 0,   B,         0        ],    N = [[I, 0,   0, 0  ],
               [0, I,   0,         0        ],         [0, A^H, 0, C^H],
               [0, B^H, -gamma I,  D^H      ],         [0, 0,   0, 0  ],
               [C, 0,   D,         -gamma I ]]         [0, 0,   0, 0  ]]

      (its other ``m + p`` eigenvalues are infinite). ``u, v`` are kept rather than
      eliminated because the unit circle does not contain ``z = inf``: the first lower
      bound can be below ``sigma_max(D)``, and ``R`` or ``S`` can then be singular.
    """

    def __init__(self, realization, scale):
        # G is divided by ``scale`` (the first lower bound) so that the levels are near 1:
        # gamma**2, R and S then neither underflow nor overflow for tiny or huge gains.
        # The state is also rescaled (B t, C / t leave G unchanged) so that B and C have
        # the same norm and neither B B^H nor C^H C underflows or overflows.
        self.realization = realization
        self.scale = scale
        B, C = realization.B, realization.C / scale
        norm_B, norm_C = _frobenius(B), _frobenius(C)
        if norm_B > 0 and norm_C > 0:
            balance = np.sqrt(norm_C) / np.sqrt(norm_B)
            B, C = B * balance, C / balance
        self.B, self.C, self.D = B, C, realization.D / scale
        U, sigma, Vh = np.linalg.svd(self.D)
        self.sigma_D = sigma
        self.BV = B @ Vh.conj().T                  # B V, (n, m)
        self.UhC = U.conj().T @ C                  # U^H C, (p, n)

    def crossing_angles(self, gamma):
        """Candidate crossings of ``gamma``: frequencies w (continuous) or angles theta (discrete)."""
        gamma = gamma / self.scale
        if self.realization.is_discrete:
            return self._circle_crossings(gamma)
        return self._axis_crossings(gamma)

    def _axis_crossings(self, gamma):
        m, p, k = self.realization.m, self.realization.p, self.sigma_D.size
        sigma_m = np.zeros(m)
        sigma_m[:k] = self.sigma_D
        sigma_p = np.zeros(p)
        sigma_p[:k] = self.sigma_D
        r = (gamma - sigma_m) * (gamma + sigma_m)      # eigenvalues of R, all > 0
        s = (gamma - sigma_p) * (gamma + sigma_p)      # eigenvalues of S, all > 0
        # B R^{-1} D^H C = (B V) diag(1/r) Sigma^T (U^H C); only the first k columns of
        # Sigma^T are nonzero.
        F = self.realization.A + (self.BV[:, :k] * (self.sigma_D / r[:k])) @ self.UhC[:k, :]
        BRB = (self.BV / r) @ self.BV.conj().T
        CSC = (self.UhC.conj().T / s) @ self.UhC
        hamiltonian = np.block([[F, -gamma * BRB], [gamma * CSC, -F.conj().T]])
        tolerance = _BOUNDARY_RTOL * np.linalg.norm(hamiltonian, 1)
        eigenvalues = sla.eigvals(hamiltonian, overwrite_a=True)
        return eigenvalues.imag[np.abs(eigenvalues.real) <= tolerance]

    def _circle_crossings(self, gamma):
        n, m, p = self.realization.n, self.realization.m, self.realization.p
        A, B, C, D = self.realization.A, self.B, self.C, self.D
        dtype = np.result_type(A, B, C, D)
        size = 2 * n + m + p
        x, q, u, v = (slice(0, n), slice(n, 2 * n), slice(2 * n, 2 * n + m), slice(2 * n + m, size))
        M = np.zeros((size, size), dtype=dtype)
        N = np.zeros((size, size), dtype=dtype)
        M[x, x], M[x, u] = A, B                                  # z x = A x + B u
        M[q, q] = np.eye(n)                                      # q = z (A^H q + C^H v)
        N[x, x], N[q, q], N[q, v] = np.eye(n), A.conj().T, C.conj().T
        M[u, q], M[u, u], M[u, v] = B.conj().T, -gamma * np.eye(m), D.conj().T   # gamma u = B^H q + D^H v
        M[v, x], M[v, u], M[v, v] = C, D, -gamma * np.eye(p)     # gamma v = C x + D u
        # QZ returns alpha ~ diag(S), beta ~ diag(T) of the generalised Schur form, with
        # backward errors ~ eps ||M|| and eps ||N||; z = alpha / beta is on the circle
        # when |alpha| = |beta|. Comparing moduli avoids the division, so the infinite
        # eigenvalues (beta = 0) need no special case.
        tolerance = _BOUNDARY_RTOL * (np.linalg.norm(M, 1) + np.linalg.norm(N, 1))
        alpha, beta = sla.eig(M, N, right=False, homogeneous_eigvals=True)
        on_circle = np.abs(np.abs(alpha) - np.abs(beta)) <= tolerance
        return np.angle(alpha[on_circle] * beta[on_circle].conj())


def _test_angles(realization):
    """Frequencies (continuous) or angles (discrete) of the initial lower bound.

    The pole frequencies are what finds a lightly damped resonance, whose peak is too
    narrow for any generic grid; 0 and Nyquist are where real systems often peak.
    """
    poles = realization.poles
    if realization.is_discrete:
        pole_angles = np.angle(poles) if realization.is_complex else np.abs(np.angle(poles))
        return np.concatenate(([0.0, np.pi], pole_angles))
    if realization.is_complex:
        return np.concatenate(([0.0], poles.imag))
    return np.concatenate(([0.0], np.abs(poles.imag), np.abs(poles)))


def _distinct_angles(realization):
    """``n + 1`` distinct frequencies: a transfer function vanishing at all of them is zero.

    Every entry of ``G`` is ``N(s) / det(s I - A)`` with ``deg N <= n``.
    """
    k = np.arange(1, realization.n + 2)
    if realization.is_discrete:
        return np.pi * k / (realization.n + 2)
    return k * np.abs(realization.poles).max()


def _interval_midpoints(realization, crossings):
    """Points inside every interval cut by ``crossings`` on the searched frequency range.

    Any interior point of an interval serves the certificate; continuous-time intervals
    also get their geometric mean, which reaches a broad peak between frequencies
    decades apart in one step where the arithmetic midpoint only halves the interval.
    """
    if realization.is_discrete:
        if realization.is_complex:   # the whole circle; the last interval wraps through theta = 0
            theta = np.sort(np.mod(crossings, 2 * np.pi))
            following = np.append(theta[1:], theta[:1] + 2 * np.pi)
            return (theta + following) / 2
        theta = np.sort(np.concatenate(([0.0], np.clip(np.abs(crossings), 0.0, np.pi), [np.pi])))
        return (theta[:-1] + theta[1:]) / 2
    if realization.is_complex:
        if crossings.size == 0:
            return crossings
        w = np.sort(crossings)
        reach = max(w[-1] - w[0], abs(w[0]), abs(w[-1]))
        outside = [w[0] - reach, w[-1] + reach]
    else:
        w = np.sort(np.concatenate(([0.0], np.abs(crossings))))
        outside = [2 * w[-1]]
    # Beyond the outermost crossings the gain tends to sigma_max(D) < gamma; a point
    # there costs nothing and guards against a crossing lost at high frequency.
    lower, upper = w[:-1], w[1:]
    same_sign = lower * upper > 0
    geometric = np.sign(upper[same_sign]) * np.sqrt(lower[same_sign] * upper[same_sign])
    return np.concatenate(((lower + upper) / 2, geometric, outside))


def _hinf_level_set(realization, rtol):
    """The level-set iteration; returns ``(norm, peak angle or frequency, iterations)``."""
    sigma_D = np.linalg.svd(realization.D, compute_uv=False)[0]
    if realization.n == 0:
        return float(sigma_D), 0.0, 0
    angles = _test_angles(realization)
    gains = realization.gains(angles)
    best = int(np.argmax(gains))
    lower, peak = gains[best], angles[best]
    if not realization.is_discrete and sigma_D > lower:
        lower, peak = sigma_D, np.inf          # the value at w -> inf
    if lower == 0:
        angles = _distinct_angles(realization)
        gains = realization.gains(angles)
        best = int(np.argmax(gains))
        if gains[best] == 0:
            return 0.0, 0.0, 0                 # G is identically zero
        lower, peak = gains[best], angles[best]

    level_set = _LevelSet(realization, scale=lower)
    relative_gap = max(rtol, _MIN_RELATIVE_GAP)
    for iteration in range(1, _MAX_ITERATIONS + 1):
        gamma = lower * (1 + relative_gap)
        crossings = level_set.crossing_angles(gamma)
        if not realization.is_complex:
            crossings = np.abs(crossings)
        trial = np.concatenate((crossings, _interval_midpoints(realization, crossings)))
        if trial.size == 0:
            return float(lower), float(peak), iteration
        gains = realization.gains(trial)
        best = int(np.argmax(gains))
        if gains[best] > lower:
            lower, peak = gains[best], trial[best]
        # Every interval between consecutive crossings lies entirely above or entirely
        # below gamma, so no midpoint above gamma certifies ||G|| <= gamma.
        if gains[best] <= gamma:
            return float(lower), float(peak), iteration
    raise LTIReduceError(f"hinf_norm did not converge in {_MAX_ITERATIONS} level-set iterations "
                         f"(last lower bound {lower!r}); the eigenvalue computations are not reliable for "
                         f"this system")


def hinf_norm(system, *, rtol=1e-10):
    """H-infinity norm of a stable system, with the frequency of its peak.

    Parameters
    ----------
    system : StateSpace or DiagonalStateSpace
        A stable system, real or complex, continuous or discrete. A
        :class:`DiagonalStateSpace` must be unbatched (index the batch first). Arrays
        may live in any array namespace; they are copied to numpy. python-control and
        scipy.signal systems are accepted as well.
    rtol : float, optional
        Relative accuracy with respect to the computed gains: no computed gain exceeds
        ``norm * (1 + rtol)``. The true norm lies in ``[norm, norm * (1 + rtol)]`` up to the
        error of the gain evaluations themselves (see Notes: for ``n > 64`` near a lightly
        damped pole it can exceed ``rtol``). Finite and > 0; values below ``4 * eps`` act as
        ``4 * eps``.

    Returns
    -------
    HinfNorm
        ``(norm, peak_frequency)``: ``norm`` is a float >= 0 and ``peak_frequency`` a
        float in rad/s with ``sigma_max(G) = norm`` there.

    Raises
    ------
    UnstableSystemError
        If a pole is not strictly inside the stability region (the norm would be
        infinite, or the system's L-infinity norm would not be its H-infinity norm).
    InvalidParameterError
        If ``system`` is not a system or ``rtol`` is not a finite positive number.
    ShapeError
        If ``system`` is a batched :class:`DiagonalStateSpace`.

    Notes
    -----
    ``norm = sup sigma_max(G(1j*w))`` over real ``w`` (continuous) or
    ``sup sigma_max(G(exp(1j*w*dt)))`` over ``w`` in ``(-pi/dt, pi/dt]`` (discrete;
    ``dt=True`` is a period of 1, so ``w`` is in rad/sample).

    ``peak_frequency`` follows the same convention. For a real system the gain is
    even in ``w`` and the peak is reported in ``[0, inf]`` (continuous) or
    ``[0, pi/dt]`` (discrete). A complex system has ``G(-1j*w) != conj(G(1j*w))``, so
    the whole axis (or circle) is searched and the peak may be negative. It is ``inf``
    when the supremum of a continuous system is only approached at infinite
    frequency (``norm = sigma_max(D)``), and ``0.0`` for a static gain (``n = 0``) or
    the zero system.

    Algorithm (Boyd & Balakrishnan 1990; Bruinsma & Steinbuch 1990): a lower bound is
    taken as the largest gain at ``w = 0``, at infinity or Nyquist, and at the
    frequencies of the poles (their imaginary parts, moduli or angles), which is what
    finds lightly damped peaks. At the level ``gamma = (1 + rtol) * lower``, the
    frequencies where ``gamma`` is a singular value of ``G`` are the imaginary
    eigenvalues of a Hamiltonian matrix (continuous) or the unit-modulus eigenvalues
    of a symplectic pencil (discrete; no bilinear map to continuous time is made).
    The gain is evaluated at these frequencies and at the midpoints of the intervals
    they cut (arithmetic, and in continuous time also geometric, midpoints); the best
    value becomes the new lower bound. When no value exceeds ``gamma``, ``gamma`` is an
    upper bound and the iteration stops: this last level test is the post-check that
    certifies the result. Convergence is quadratic, usually in 1 to 4 level tests.
    The returned ``norm`` is the largest gain actually evaluated, so it is attained at
    ``peak_frequency``.

    The bracket ``[norm, norm * (1 + rtol)]`` holds for the computed gains. They come
    from an LU factorisation of ``s I - A`` at each frequency for ``n <= 64``, which
    respects the structure of ``A`` and is accurate even next to a lightly damped
    pole, and through the Schur form of ``A`` for larger ``n`` (``O(n^2)`` a point),
    which is normwise backward stable: near a pole at distance ``delta`` from the axis
    (circle) a gain is then accurate only to about ``eps * ||A|| / delta`` relative times
    the pole's condition number, which is not part of ``rtol`` (issue 8 item 6 measured
    2.5e-7 relative on a lightly damped discrete non-normal system with n > 64).

    An eigenvalue is taken for an axis (circle) crossing when its distance to the axis
    is below ``1e-6`` times the 1-norm of the matrix (of both pencil matrices):
    spurious candidates only cost one more gain evaluation, while a missed crossing
    could end the iteration early. Candidates are confirmed by evaluating the gain
    there.

    Examples
    --------
    >>> import lti_reduce as lr
    >>> lr.hinf_norm(lr.StateSpace([[-1.0]], [[1.0]], [[1.0]]))   # 1 / (s + 1)
    HinfNorm(norm=1.0, peak_frequency=0.0)

    A lightly damped resonance ``w0^2 / (s^2 + 2 zeta w0 s + w0^2)`` peaks at
    ``1 / (2 zeta sqrt(1 - zeta^2))``, at ``w0 sqrt(1 - 2 zeta^2)`` rad/s:

    >>> zeta, w0 = 0.05, 2.0
    >>> R = lr.StateSpace([[0.0, 1.0], [-w0**2, -2 * zeta * w0]], [[0.0], [w0**2]], [[1.0, 0.0]])
    >>> norm, peak = lr.hinf_norm(R)
    >>> print(f"{norm:.6f} at {peak:.4f} rad/s")
    10.012523 at 1.9950 rad/s
    """
    rtol = _check_rtol(rtol)
    realization = _Realization(system)
    realization.require_stable("hinf_norm")
    norm, peak, _ = _hinf_level_set(realization, rtol)
    if realization.is_discrete and np.isfinite(peak):
        peak = np.angle(np.exp(1j * peak))  # into (-pi, pi]
        if not realization.is_complex:
            peak = abs(peak)
        peak = peak / realization.period
    return HinfNorm(float(norm), float(peak))


# --------------------------------------------------------------------------------------
# H2 norm
# --------------------------------------------------------------------------------------
def h2_norm(system):
    """H2 norm of a stable system.

    Parameters
    ----------
    system : StateSpace or DiagonalStateSpace
        A stable system, real or complex, continuous or discrete (an unbatched
        :class:`DiagonalStateSpace`; python-control and scipy.signal systems are
        accepted as well).

    Returns
    -------
    float
        The H2 norm, >= 0; ``inf`` for a continuous system with ``D != 0``.

    Raises
    ------
    UnstableSystemError
        If a pole is not strictly inside the stability region.
    InvalidParameterError
        If ``system`` is not a system.
    ShapeError
        If ``system`` is a batched :class:`DiagonalStateSpace`.

    Notes
    -----
    With the controllability Gramian ``P``:

    * continuous: ``A P + P A^H + B B^H = 0`` and ``||G||_2 = sqrt(trace(C P C^H))``,
      the energy of the impulse response ``C e^{At} B``. A nonzero ``D`` (any entry,
      however small) makes the impulse response contain ``D delta(t)`` and
      ``int ||G(1j*w)||_F^2 dw`` diverge, so the norm is ``inf``;
    * discrete: ``A P A^H - P + B B^H = 0`` and
      ``||G||_2 = sqrt(trace(C P C^H + D D^H))``, the energy of the impulse response
      ``D, C B, C A B, ...``. It does not depend on the sampling period.

    The Gramian is :func:`gramian`'s (closed form for a diagonal ``A``, one Schur form
    otherwise), of the system with ``B`` and ``C`` scaled to unit norm.

    Examples
    --------
    >>> import lti_reduce as lr
    >>> print(f"{lr.h2_norm(lr.StateSpace([[-1.0]], [[1.0]], [[1.0]])):.12f}")   # sqrt(1/2)
    0.707106781187
    >>> lr.h2_norm(lr.StateSpace([[-1.0]], [[1.0]], [[1.0]], [[0.5]]))   # continuous, D != 0
    inf
    >>> Gd = lr.StateSpace([[0.5]], [[1.0]], [[1.0]], dt=True)
    >>> print(f"{lr.h2_norm(Gd):.12f}")      # sqrt(1 / (1 - 0.5**2))
    1.154700538379
    """
    realization = _Realization(system)
    realization.require_stable("h2_norm")
    if not realization.is_discrete and np.any(realization.D != 0):
        return float("inf")
    feedthrough = _frobenius(realization.D) if realization.is_discrete else 0.0
    norm_B, norm_C = _frobenius(realization.B), _frobenius(realization.C)
    if realization.n == 0 or norm_B == 0 or norm_C == 0:
        return float(feedthrough)
    # B and C are normalised so that B B^H and C P C^H neither underflow nor overflow;
    # ||G||_2^2 = ||D||_F^2 + (||B|| ||C||)^2 trace(C' P' C'^H).
    B, C = realization.B / norm_B, realization.C / norm_C
    dt = realization.period if realization.is_discrete else 0.0
    if realization.eigenvalues is not None:
        normalized_system = DiagonalStateSpace(realization.eigenvalues, B, C, dt=dt)
    else:
        normalized_system = StateSpace(realization.A, B, C, dt=dt)
    P = gramian(normalized_system, "c")
    # P is positive semidefinite, so the trace is >= 0 up to rounding; a negative value
    # can only be rounding around a zero norm.
    normalized = np.sqrt(max(np.trace(C @ P @ C.conj().T).real, 0.0))
    return float(np.hypot(feedthrough, norm_B * norm_C * normalized))


# --------------------------------------------------------------------------------------
# Hankel norm
# --------------------------------------------------------------------------------------
def hankel_norm(system):
    """Hankel norm ``||G||_H = s_1``, the largest Hankel singular value (a float).

    Parameters
    ----------
    system : StateSpace or unbatched DiagonalStateSpace
        Stable, continuous or discrete; ``0.0`` for a static gain (n = 0).

    See Also
    --------
    hankel_singular_values

    Examples
    --------
    >>> import lti_reduce as lr
    >>> lr.hankel_norm(lr.StateSpace([[-2.0]], [[1.0]], [[1.0]]))   # 1 / (s + 2)
    0.25
    """
    hsv = to_numpy(hankel_singular_values(system))
    if hsv.ndim != 1:
        raise InvalidParameterError(f"hankel_norm needs a single system; got a batch of shape {hsv.shape[:-1]}")
    return float(hsv[0]) if hsv.size else 0.0
