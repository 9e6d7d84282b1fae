"""Tests of lti_reduce._norms: hinf_norm (level-set method) and h2_norm (Gramians)."""

import itertools

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize

from lti_reduce import DiagonalStateSpace, StateSpace
from lti_reduce._errors import InvalidParameterError, ShapeError, UnstableSystemError
from lti_reduce._norms import HinfNorm, h2_norm, hinf_norm


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def random_stable_system(rng, *, discrete, complex_, feedthrough, n=None, dt=True):
    """A random stable system; the stability margin varies from 1e-3 to order 1."""
    n = int(rng.integers(1, 9)) if n is None else n
    m, p = (int(k) for k in rng.integers(1, 5, size=2))

    def draw(*shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if complex_ else x

    A = draw(n, n)
    margin = 10.0 ** rng.uniform(-3, 0)
    poles = np.linalg.eigvals(A)
    if discrete:
        A = A / (np.abs(poles).max() * (1 + margin))
    else:
        A = A - (poles.real.max() + margin) * np.eye(n)
    D = draw(p, m) if feedthrough else np.zeros((p, m))
    return StateSpace(A, draw(n, m), draw(p, n), D, dt=dt if discrete else 0)


def gain(system, omega):
    """sigma_max(G) at frequencies omega (rad/s), with the container's own evaluation."""
    response = system.frequency_response(np.atleast_1d(np.asarray(omega, dtype=float)))
    return np.linalg.svd(np.asarray(response), compute_uv=False)[:, 0]


def frequency_grid(system):
    """A dense grid over the whole axis (continuous) or circle (discrete), rad/s."""
    if system.is_discrete:
        period = 1.0 if system.dt is True else system.dt
        return np.linspace(-np.pi, np.pi, 4001) / period
    positive = np.logspace(-3, 3, 2000)
    return np.concatenate((-positive[::-1], [0.0], positive))


def tustin_equivalent(system):
    """Continuous system with G_c(s) = G_d((1 + s) / (1 - s)), so G_c(1j*tan(theta/2)) = G_d(exp(1j*theta)).

    Same H-infinity norm; the peak frequency maps as w_c = tan(theta/2).
    """
    A, B, C, D = system.A, system.B, system.C, system.D
    shifted = A + np.eye(system.n)
    A_c = np.linalg.solve(shifted.T, (A - np.eye(system.n)).T).T      # (A - I)(A + I)^{-1}
    B_c = np.sqrt(2) * np.linalg.solve(shifted, B)
    C_c = np.sqrt(2) * np.linalg.solve(shifted.T, C.T).T
    D_c = D - C @ np.linalg.solve(shifted, B)
    return StateSpace(A_c, B_c, C_c, D_c)


def ab13dd_example():
    """SLICOT AB13DD documentation example: three lightly damped modes."""
    A = np.zeros((6, 6))
    for k, (stiffness, damping) in enumerate([(0.5, 0.0002), (1.0, 0.00002), (2.0, 0.000002)]):
        A[2 * k, 2 * k + 1] = 1.0
        A[2 * k + 1, 2 * k] = -stiffness
        A[2 * k + 1, 2 * k + 1] = -damping
    B = np.array([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0]])
    return StateSpace(A, B, B.T, np.zeros((1, 1)))


def check_peak(system, result, rtol=1e-8):
    """sigma_max(G) at the reported peak equals the reported norm."""
    if np.isinf(result.peak_frequency):
        assert not system.is_discrete
        assert result.norm == pytest.approx(np.linalg.svd(system.D, compute_uv=False)[0], rel=rtol)
    else:
        assert gain(system, result.peak_frequency)[0] == pytest.approx(result.norm, rel=rtol)


def local_maximum(system, omega, width):
    """Refined maximum of the gain in [omega - width, omega + width]."""
    found = scipy.optimize.minimize_scalar(lambda w: -gain(system, w)[0], method="bounded",
                                           bounds=(omega - width, omega + width), options={"xatol": 1e-12})
    return -found.fun


# --------------------------------------------------------------------------------------
# hinf_norm: reference values
# --------------------------------------------------------------------------------------
def test_hinf_ab13dd_reference_example():
    result = hinf_norm(ab13dd_example())
    assert isinstance(result, HinfNorm)
    # Printed in the SLICOT documentation: 0.5000000001E+06 at 1.414213562.
    assert result.norm == pytest.approx(0.5000000001e6, abs=0.5e-4)
    assert result.peak_frequency == pytest.approx(1.414213562, abs=0.5e-9)


def test_hinf_ab13dd_example_as_diagonal_system():
    system = ab13dd_example()
    poles, V = np.linalg.eig(system.A)
    diagonal = DiagonalStateSpace(poles, np.linalg.solve(V, system.B), system.C @ V, system.D)
    result = hinf_norm(diagonal)
    assert result.norm == pytest.approx(0.5000000001e6, abs=0.5e-4)
    # The diagonal form is complex, so the whole axis is searched: the peak is +-sqrt(2).
    assert abs(result.peak_frequency) == pytest.approx(1.414213562, abs=0.5e-9)


@pytest.mark.parametrize("a", [1e-4, 0.3, 5.0])
def test_hinf_first_order_continuous(a):
    result = hinf_norm(StateSpace([[-a]], [[1.0]], [[1.0]]))
    assert result.norm == pytest.approx(1 / a, rel=1e-12)
    assert result.peak_frequency == 0.0


@pytest.mark.parametrize("b", [-3.0, 2.0])
def test_hinf_complex_first_order_peaks_at_pole_frequency(b):
    # 1 / (s - (-a + 1j*b)) peaks at w = b, which may be negative: G(-1j*w) != conj G(1j*w).
    a = 0.01
    result = hinf_norm(StateSpace([[-a + 1j * b]], [[1.0]], [[1.0]]))
    assert result.norm == pytest.approx(1 / a, rel=1e-12)
    assert result.peak_frequency == pytest.approx(b, abs=1e-9)


@pytest.mark.parametrize("pole, norm, peak", [(0.9, 10.0, 0.0), (-0.5, 2.0, np.pi)])
def test_hinf_first_order_discrete(pole, norm, peak):
    result = hinf_norm(StateSpace([[pole]], [[1.0]], [[1.0]], dt=True))
    assert result.norm == pytest.approx(norm, rel=1e-12)
    assert result.peak_frequency == pytest.approx(peak, abs=1e-12)


@pytest.mark.parametrize("angle", [-2.0, 0.7])
def test_hinf_complex_discrete_peaks_at_pole_angle(angle):
    radius, dt = 0.999, 0.25
    result = hinf_norm(StateSpace([[radius * np.exp(1j * angle)]], [[1.0]], [[1.0]], dt=dt))
    assert result.norm == pytest.approx(1 / (1 - radius), rel=1e-12)
    assert result.peak_frequency == pytest.approx(angle / dt, abs=1e-9)


def test_hinf_lightly_damped_discrete_resonance():
    # Poles at radius 1 - 1e-7: the peak is about 1e-7 rad/sample wide, invisible to any grid.
    radius, angle = 1 - 1e-7, 1.1
    poles = radius * np.exp(1j * np.array([angle, -angle]))
    A = np.array([[2 * poles.real[0], -radius ** 2], [1.0, 0.0]])   # companion form, real
    system = StateSpace(A, [[1.0], [0.0]], [[0.0, 1.0]], dt=True)
    result = hinf_norm(system)
    assert result.norm > 1e6
    assert result.peak_frequency == pytest.approx(angle, abs=1e-6)
    # The gain 1e-7 away from a pole is evaluated to about eps / 1e-7 ~ 2e-9 relative.
    check_peak(system, result, rtol=1e-8)
    assert local_maximum(system, result.peak_frequency, 1e-6) <= result.norm * (1 + 1e-8)


def test_hinf_discrete_first_bound_below_feedthrough():
    # The gains at theta = 0, pi and the pole angles are all below sigma_max(D) = 1.5231
    # (z = inf is not on the circle), so the first levels lie between singular values of
    # D, where R = gamma^2 I - D^H D is indefinite: the extended pencil needs no R^{-1}.
    # Reference: slycot.ab13dd, 1.6744011176595948 at 0.99246 rad/sample.
    A = np.array([[0.181, -0.3547], [-0.2914, 0.3405]])
    B = np.array([[-1.0681], [1.5831]])
    C = np.array([[-0.6955, -0.5643], [0.4925, 0.6052]])
    D = np.array([[-1.4324], [-0.5178]])
    system = StateSpace(A, B, C, D, dt=True)
    assert gain(system, [0.0, np.pi]).max() < np.linalg.svd(D, compute_uv=False)[0]
    result = hinf_norm(system)
    assert result.norm == pytest.approx(1.6744011176595948, rel=1e-10)
    assert result.peak_frequency == pytest.approx(0.9924634, abs=1e-5)
    check_peak(system, result)


def test_hinf_supremum_at_infinite_frequency():
    # (s + 1) / (s + 2) = 1 - 1 / (s + 2): the gain rises to 1 and never reaches it.
    result = hinf_norm(StateSpace([[-2.0]], [[1.0]], [[-1.0]], [[1.0]]))
    assert result == HinfNorm(1.0, float("inf"))


def test_hinf_static_gain():
    D = np.array([[3.0, 4.0]])
    result = hinf_norm(StateSpace(np.zeros((0, 0)), np.zeros((0, 2)), np.zeros((1, 0)), D))
    assert result == HinfNorm(5.0, 0.0)


def test_hinf_zero_system():
    system = StateSpace([[-1.0, 0.0], [0.0, -2.0]], [[1.0], [0.0]], [[0.0, 1.0]])
    assert hinf_norm(system) == HinfNorm(0.0, 0.0)


def test_hinf_zeros_at_every_test_frequency():
    # G(s) = s (s^2 + 1) / (s + 1)^4 vanishes at w = 0 and w = 1, the only frequencies that
    # the poles (all at -1) suggest; the norm must still be found.
    numerator = np.array([1.0, 0.0, 1.0, 0.0])             # s^3 + s, coefficients of s^3..s^0
    denominator = np.poly([-1.0, -1.0, -1.0, -1.0])
    A = np.diag(np.ones(3), -1)
    A[0, :] = -denominator[1:]
    B = np.eye(4)[:, :1]
    system = StateSpace(A, B, numerator[None, :])
    result = hinf_norm(system)
    grid = np.logspace(-3, 3, 3001)
    assert result.norm >= gain(system, grid).max()
    assert result.norm > 0.1
    check_peak(system, result)


def test_hinf_and_h2_of_fir_system_vanishing_at_test_frequencies():
    # G(z) = (z^2 - 1) / z^3: the poles (all 0) suggest only theta = 0 and pi, where G = 0.
    # |G(exp(1j*theta))| = 2 |sin(theta)|; the impulse response is 0, 1, 0, -1.
    system = StateSpace(np.diag([1.0, 1.0], 1), np.eye(3)[:, 2:], [[-1.0, 0.0, 1.0]], dt=True)
    result = hinf_norm(system)
    assert result.norm == pytest.approx(2.0, rel=1e-12)
    assert result.peak_frequency == pytest.approx(np.pi / 2, abs=1e-6)
    assert h2_norm(system) == pytest.approx(np.sqrt(2.0), rel=1e-14)


# --------------------------------------------------------------------------------------
# hinf_norm: random systems
# --------------------------------------------------------------------------------------
CASES = list(itertools.product([False, True], [False, True], [False, True], range(4)))


@pytest.mark.parametrize("discrete, complex_, feedthrough, seed", CASES)
def test_hinf_random_bounds_grid_and_is_attained(discrete, complex_, feedthrough, seed):
    rng = np.random.default_rng([seed, discrete, complex_, feedthrough])
    system = random_stable_system(rng, discrete=discrete, complex_=complex_, feedthrough=feedthrough,
                                  dt=0.1 if seed % 2 else True)
    result = hinf_norm(system, rtol=1e-10)
    grid = frequency_grid(system)
    gains = gain(system, grid)
    # Lower-bound property of the grid, and no refined local peak above the norm.
    assert gains.max() <= result.norm * (1 + 1e-10)
    for k in np.argsort(gains)[-3:]:
        step = grid[min(k + 1, grid.size - 1)] - grid[max(k - 1, 0)]
        assert local_maximum(system, grid[k], step) <= result.norm * (1 + 1e-10)
    check_peak(system, result)
    if discrete:
        period = 1.0 if system.dt is True else system.dt
        assert abs(result.peak_frequency) <= np.pi / period * (1 + 1e-15)
    if not complex_:
        assert result.peak_frequency >= 0


@pytest.mark.parametrize("complex_, feedthrough, seed",
                         list(itertools.product([False, True], [False, True], range(3))))
def test_hinf_discrete_invariant_under_tustin_map(complex_, feedthrough, seed):
    rng = np.random.default_rng([seed, complex_, feedthrough, 7])
    discrete = random_stable_system(rng, discrete=True, complex_=complex_, feedthrough=feedthrough)
    continuous = tustin_equivalent(discrete)
    theta = np.array([0.3, -1.2, 2.9])
    np.testing.assert_allclose(continuous.frequency_response(np.tan(theta / 2)),
                               discrete.frequency_response(theta), rtol=1e-9, atol=1e-12)
    result_d, result_c = hinf_norm(discrete), hinf_norm(continuous)
    assert result_d.norm == pytest.approx(result_c.norm, rel=1e-9)
    # The continuous peak maps back to a discrete frequency with the same gain.
    mapped = 2 * np.arctan(result_c.peak_frequency)
    assert gain(discrete, mapped)[0] == pytest.approx(result_d.norm, rel=1e-8)


def test_hinf_diagonal_matches_dense():
    rng = np.random.default_rng(11)
    poles = -rng.uniform(0.01, 1, 5) + 1j * rng.uniform(-3, 3, 5)
    B = rng.standard_normal((5, 2)) + 1j * rng.standard_normal((5, 2))
    C = rng.standard_normal((3, 5))
    D = rng.standard_normal((3, 2))
    diagonal = DiagonalStateSpace(poles, B, C, D)
    assert hinf_norm(diagonal).norm == pytest.approx(hinf_norm(diagonal.to_dense()).norm, rel=1e-10)


@pytest.mark.parametrize("b_scale, c_scale", [(1e-200, 1e200), (1e200, 1e-200), (1e150, 1e150), (1e-150, 1e-150)])
@pytest.mark.parametrize("discrete", [False, True])
def test_norms_scale_with_extreme_gains(b_scale, c_scale, discrete):
    # Neither the level-set matrices nor the Gramian may underflow or overflow when G
    # is tiny or huge, or when B and C are scaled apart.
    rng = np.random.default_rng(21)
    system = random_stable_system(rng, discrete=discrete, complex_=False, feedthrough=discrete, n=4)
    scaled = StateSpace(system.A, system.B * b_scale, system.C * c_scale, system.D * (b_scale * c_scale),
                        dt=system.dt)
    reference = hinf_norm(system)
    result = hinf_norm(scaled)
    assert result.norm == pytest.approx(reference.norm * b_scale * c_scale, rel=1e-9)
    assert h2_norm(scaled) == pytest.approx(h2_norm(system) * b_scale * c_scale, rel=1e-12)


def test_hinf_initial_bound_catches_the_lightly_damped_peak():
    # White-box: the pole frequencies put the first lower bound on the AB13DD resonance,
    # so the first level test already certifies it (no search through 1e-6-wide peaks).
    from lti_reduce._norms import _Realization, _hinf_level_set
    _, _, iterations = _hinf_level_set(_Realization(ab13dd_example()), 1e-10)
    assert iterations == 1


def test_hinf_broad_peak_far_above_the_poles_converges_quickly():
    # White-box: the first bound is sigma_max(D) (w = inf) and the first crossings span
    # 5 to 9e4 rad/s around a broad peak at 8.18 rad/s. Geometric midpoints close in on
    # it in log scale (8 level tests); arithmetic midpoints alone only halve the
    # interval (16 level tests).
    from lti_reduce._norms import _Realization, _hinf_level_set
    A = np.array([[-4.5161, -1.0676, -0.4019, -0.8887], [0.0485, -2.3739, 0.1496, 1.4868],
                  [-0.345, 0.2888, -3.931, -1.1674], [0.6549, 1.4352, 0.3406, -4.0084]])
    B = np.array([[-0.7282], [0.7407], [1.5326], [-1.3885]])
    C = np.array([[0.7313, 0.7657, -1.6861, -1.0325], [0.6248, 0.0868, 0.2338, 0.473],
                  [-0.5828, -2.2217, -0.5416, -1.3575], [-0.3481, 1.2139, 0.4759, 0.4786]])
    D = np.array([[1.9492], [-3.1462], [1.6927], [-0.8475]])
    system = StateSpace(A, B, C, D)
    norm, peak, iterations = _hinf_level_set(_Realization(system), 1e-10)
    assert iterations <= 10
    assert gain(system, frequency_grid(system)).max() <= norm * (1 + 1e-10)
    assert gain(system, peak)[0] == pytest.approx(norm, rel=1e-12)


@pytest.mark.parametrize("discrete, complex_", list(itertools.product([False, True], [False, True])))
def test_hinf_schur_evaluation_for_large_orders_agrees(monkeypatch, discrete, complex_):
    # Orders above _DIRECT_SOLVE_MAX_ORDER evaluate the gain through the Schur form;
    # force that path on a small system and compare with the direct solves.
    import lti_reduce._norms as norms
    rng = np.random.default_rng([17, discrete, complex_])
    system = random_stable_system(rng, discrete=discrete, complex_=complex_, feedthrough=True, n=8)
    direct = hinf_norm(system)
    monkeypatch.setattr(norms, "_DIRECT_SOLVE_MAX_ORDER", 0)
    through_schur = hinf_norm(system)
    assert through_schur.norm == pytest.approx(direct.norm, rel=1e-9)
    check_peak(system, through_schur)


def test_hinf_large_order_system():
    rng = np.random.default_rng(19)
    n = 80
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    A -= (np.linalg.eigvals(A).real.max() + 0.05) * np.eye(n)
    system = StateSpace(A, rng.standard_normal((n, 2)), rng.standard_normal((3, n)))
    result = hinf_norm(system)
    grid = np.logspace(-2, 2, 400)          # the container's dense solves are O(n^3) a point
    assert gain(system, grid).max() <= result.norm * (1 + 1e-10)
    check_peak(system, result)


def test_hinf_rtol_bounds_the_gap():
    system = ab13dd_example()
    exact = hinf_norm(system, rtol=1e-12).norm
    coarse = hinf_norm(system, rtol=1e-2).norm
    assert exact / (1 + 1e-2) <= coarse <= exact


# --------------------------------------------------------------------------------------
# h2_norm
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("a", [1e-3, 0.5, 20.0])
def test_h2_first_order_continuous(a):
    assert h2_norm(StateSpace([[-a]], [[1.0]], [[1.0]])) == pytest.approx(1 / np.sqrt(2 * a), rel=1e-13)
    # A complex pole with the same real part has the same impulse-response energy.
    assert h2_norm(StateSpace([[-a + 2j]], [[1.0]], [[1.0]])) == pytest.approx(1 / np.sqrt(2 * a), rel=1e-13)


@pytest.mark.parametrize("complex_, seed", list(itertools.product([False, True], range(3))))
def test_h2_continuous_matches_quadrature(complex_, seed):
    rng = np.random.default_rng([seed, complex_, 3])
    system = random_stable_system(rng, discrete=False, complex_=complex_, feedthrough=False, n=4)

    def frobenius_squared(t):
        # w = tan(t) maps (-pi/2, pi/2) onto the whole axis; dw = (1 + w^2) dt.
        w = np.tan(t)
        response = system.frequency_response([w])[0]
        return np.sum(np.abs(response) ** 2) * (1 + w * w)

    integral, _ = scipy.integrate.quad(frobenius_squared, -np.pi / 2, np.pi / 2, limit=500,
                                       epsabs=0, epsrel=1e-11)
    assert h2_norm(system) == pytest.approx(np.sqrt(integral / (2 * np.pi)), rel=1e-8)


@pytest.mark.parametrize("complex_, feedthrough, n",
                         list(itertools.product([False, True], [False, True], [3, 12])))
def test_h2_discrete_matches_impulse_response(complex_, feedthrough, n):
    # n = 12 goes through scipy's bilinear Lyapunov solver, n = 3 through the direct one.
    rng = np.random.default_rng([n, complex_, feedthrough])
    system = random_stable_system(rng, discrete=True, complex_=complex_, feedthrough=feedthrough, n=n)
    system = StateSpace(system.A * 0.8, system.B, system.C, system.D, dt=True)   # radius < 0.8
    energy = np.linalg.norm(system.D) ** 2
    markov = system.B
    for _ in range(100000):
        term = np.linalg.norm(system.C @ markov) ** 2
        energy += term
        if term <= 1e-20 * energy:
            break
        markov = system.A @ markov
    assert h2_norm(system) == pytest.approx(np.sqrt(energy), rel=1e-10)


def test_h2_discrete_does_not_depend_on_the_period():
    rng = np.random.default_rng(5)
    system = random_stable_system(rng, discrete=True, complex_=False, feedthrough=True)
    resampled = StateSpace(system.A, system.B, system.C, system.D, dt=0.01)
    assert h2_norm(resampled) == pytest.approx(h2_norm(system), rel=1e-14)


def test_h2_continuous_feedthrough_is_infinite():
    assert h2_norm(StateSpace([[-1.0]], [[1.0]], [[1.0]], [[1e-300]])) == float("inf")


def test_h2_static_gain():
    D = np.array([[3.0, 4.0]])
    empty = (np.zeros((0, 0)), np.zeros((0, 2)), np.zeros((1, 0)))
    assert h2_norm(StateSpace(*empty, D, dt=True)) == pytest.approx(5.0, rel=1e-15)
    assert h2_norm(StateSpace(*empty, 0 * D)) == 0.0


@pytest.mark.parametrize("discrete", [False, True])
def test_h2_diagonal_matches_dense(discrete):
    rng = np.random.default_rng(9)
    radius = rng.uniform(0.1, 0.95, 6)
    angle = rng.uniform(-np.pi, np.pi, 6)
    poles = radius * np.exp(1j * angle) if discrete else -radius + 3j * angle
    B = rng.standard_normal((6, 2)) + 1j * rng.standard_normal((6, 2))
    C = rng.standard_normal((2, 6)) + 1j * rng.standard_normal((2, 6))
    diagonal = DiagonalStateSpace(poles, B, C, dt=True if discrete else 0)
    assert h2_norm(diagonal) == pytest.approx(h2_norm(diagonal.to_dense()), rel=1e-12)


# --------------------------------------------------------------------------------------
# slycot oracle
# --------------------------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.parametrize("discrete, seed", list(itertools.product([False, True], range(6))))
def test_hinf_matches_slycot_ab13dd(discrete, seed):
    slycot = pytest.importorskip("slycot", reason="slycot (GPL) is the optional oracle")
    rng = np.random.default_rng([seed, discrete, 13])
    system = random_stable_system(rng, discrete=discrete, complex_=False, feedthrough=seed % 2 == 0,
                                  n=int(rng.integers(1, 11)))
    n, m, p = system.n, system.m, system.p
    reference, _ = slycot.ab13dd("D" if discrete else "C", "I", "N", "D", n, m, p, system.A, np.eye(n),
                                 system.B, system.C, system.D, 1e-10)
    assert hinf_norm(system).norm == pytest.approx(reference, rel=1e-8)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_function", [hinf_norm, h2_norm])
def test_unstable_continuous_system_is_refused(norm_function):
    system = StateSpace([[-1.0, 0.0], [0.0, 0.25]], [[1.0], [1.0]], [[1.0, 1.0]])
    with pytest.raises(UnstableSystemError, match=r"0\.25"):
        norm_function(system)


@pytest.mark.parametrize("norm_function", [hinf_norm, h2_norm])
def test_unstable_discrete_system_is_refused(norm_function):
    system = StateSpace([[1.5]], [[1.0]], [[1.0]], dt=True)
    with pytest.raises(UnstableSystemError, match=r"1\.5"):
        norm_function(system)


def test_pole_on_the_imaginary_axis_is_refused():
    system = StateSpace([[0.0, 1.0], [-1.0, 0.0]], [[0.0], [1.0]], [[1.0, 0.0]])
    with pytest.raises(UnstableSystemError, match="pole"):
        hinf_norm(system)


@pytest.mark.parametrize("norm_function", [hinf_norm, h2_norm])
def test_non_system_is_refused(norm_function):
    with pytest.raises(InvalidParameterError, match="system"):
        norm_function(np.eye(2))


@pytest.mark.parametrize("norm_function", [hinf_norm, h2_norm])
def test_batched_diagonal_system_is_refused(norm_function):
    batched = DiagonalStateSpace(-np.ones((2, 3)), np.ones((2, 3, 1)), np.ones((2, 1, 3)))
    with pytest.raises(ShapeError, match=r"system.*\(2,\)"):
        norm_function(batched)


@pytest.mark.parametrize("rtol", [0.0, -1e-6, float("nan"), float("inf"), True, "1e-6", None])
def test_hinf_bad_rtol_is_refused(rtol):
    with pytest.raises(InvalidParameterError, match="rtol"):
        hinf_norm(ab13dd_example(), rtol=rtol)
