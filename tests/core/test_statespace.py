"""Container behaviour of StateSpace and DiagonalStateSpace: validation, dt, conversion to
and from python-control and scipy.signal, frequency response and DC gain against the direct
formula, DiagonalStateSpace.to_dense, and batch indexing."""

import dataclasses

import numpy as np
import pytest
from scipy import signal

import lti_reduce as lr
from lti_reduce import DiagonalStateSpace, InvalidParameterError, ShapeError, StateSpace

try:
    import control
except ImportError:  # only the python-control tests need it
    control = None
needs_control = pytest.mark.skipif(control is None, reason="python-control is not installed")

RNG = np.random.default_rng(20240601)
A3 = np.array([[-1.0, 2.0, 0.0], [-2.0, -1.0, 0.5], [0.0, 0.0, -3.0]])
B3 = RNG.standard_normal((3, 2))
C3 = RNG.standard_normal((4, 3))
D3 = RNG.standard_normal((4, 2))
AD3 = 0.3 * A3 + 0.2 * np.eye(3)        # eigenvalues inside the unit circle


def direct(A, B, C, D, s):
    return C @ np.linalg.solve(s * np.eye(A.shape[0]) - A, B) + D


# --------------------------------------------------------------------------------------
# construction
# --------------------------------------------------------------------------------------
def test_sizes_and_default_D():
    system = StateSpace(A3, B3, C3)
    assert (system.n, system.m, system.p) == (3, 2, 4)
    np.testing.assert_array_equal(system.D, np.zeros((4, 2)))
    assert system.D.dtype == np.float64


def test_integer_inputs_become_float64():
    system = StateSpace([[-1, 0], [0, -2]], [[1], [0]], [[1, 1]], [[0]])
    for x in (system.A, system.B, system.C, system.D):
        assert x.dtype == np.float64


def test_any_complex_input_makes_all_complex128():
    system = StateSpace(A3, B3 + 0j, C3)
    for x in (system.A, system.B, system.C, system.D):
        assert x.dtype == np.complex128
    assert system.is_complex
    assert not StateSpace(A3, B3, C3).is_complex


@pytest.mark.parametrize("D", [None, D3, D3 + 1j])
@pytest.mark.parametrize("complex_", [False, True])
def test_plain_numpy_input_is_stored_as_the_general_path_stores_it(D, complex_):
    """float64/complex128 ndarrays take a shortcut past the namespace dispatch; lists of the
    same numbers take the general path. Both store the same owned copies."""
    B = B3 + 1j if complex_ else B3
    fast = StateSpace(A3, B, C3, D, dt=0.5)
    general = StateSpace(A3.tolist(), B.tolist(), C3.tolist(), None if D is None else D.tolist(), dt=0.5)
    for name in "ABCD":
        got, expected = getattr(fast, name), getattr(general, name)
        assert type(got) is np.ndarray and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    assert fast.dt == general.dt == 0.5
    A, B_, C = A3.copy(), B.copy(), C3.copy()
    owned = StateSpace(A, B_, C)
    A[0, 0] = B_[0, 0] = C[0, 0] = 99.0
    assert owned.A[0, 0] == A3[0, 0] and owned.B[0, 0] == B[0, 0] and owned.C[0, 0] == C3[0, 0]


@pytest.mark.parametrize("name", ["A", "B", "C", "D"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_plain_numpy_input_non_finite_is_named(name, bad):
    arrays = {"A": A3.copy(), "B": B3.copy(), "C": C3.copy(), "D": D3.copy()}
    arrays[name][0, 0] = bad
    with pytest.raises(lr.NonFiniteError, match=f"^{name} contains NaN or infinity"):
        StateSpace(arrays["A"], arrays["B"], arrays["C"], arrays["D"])


def test_plain_numpy_input_wrong_shapes_are_explained():
    with pytest.raises(ShapeError, match=r"D must have shape \(p, m\) = \(4, 2\)"):
        StateSpace(A3, B3, C3, np.zeros((2, 4)))
    with pytest.raises(ShapeError, match="B must have n=3 rows"):
        StateSpace(A3, np.zeros((2, 2)), C3)
    with pytest.raises(ShapeError, match="empty system"):
        StateSpace(A3, np.zeros((3, 0)), C3)


def test_unchecked_construction_keeps_wide_arrays():
    system = StateSpace(A3, B3, C3, D3, check_finite=False)
    assert system.A is A3 and system.D is D3


def test_scalar_D_for_siso():
    system = StateSpace([[-1.0]], [[1.0]], [[2.0]], 0.5)
    assert system.D.shape == (1, 1) and system.D[0, 0] == 0.5


def test_frozen():
    system = StateSpace(A3, B3, C3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        system.A = np.eye(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        system.dt = 1.0


def test_repr_names_sizes_and_time_base():
    assert repr(StateSpace(A3, B3, C3)) == "StateSpace(n=3, m=2, p=4, continuous, dtype=float64)"
    assert "discrete, dt=0.5" in repr(StateSpace(AD3, B3, C3, dt=0.5))
    text = repr(DiagonalStateSpace(-np.ones((2, 3)), np.ones((2, 3, 1)), np.ones((2, 1, 3))))
    assert "batch=(2,)" in text and "n=3" in text


def test_static_gain_system():
    static = StateSpace(np.zeros((0, 0)), np.zeros((0, 2)), np.zeros((3, 0)), np.ones((3, 2)))
    assert static.n == 0
    np.testing.assert_array_equal(static.evaluate([1j, 2.0])[1], np.ones((3, 2)))
    np.testing.assert_array_equal(static.dc_gain(), np.ones((3, 2)))


# --------------------------------------------------------------------------------------
# dt
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt, discrete, stored", [(0, False, 0.0), (0.0, False, 0.0), (False, False, 0.0),
                                                  (0.25, True, 0.25), (2, True, 2.0), (True, True, True)])
def test_dt_values(dt, discrete, stored):
    system = StateSpace(AD3, B3, C3, dt=dt)
    assert system.is_discrete is discrete
    assert system.dt == stored and type(system.dt) is type(stored)


def test_dt_true_frequency_is_per_sample():
    per_sample = StateSpace(AD3, B3, C3, D3, dt=True)
    unit = StateSpace(AD3, B3, C3, D3, dt=1.0)
    w = np.array([0.1, 1.0, 3.0])
    np.testing.assert_array_equal(per_sample.frequency_response(w), unit.frequency_response(w))


def test_stability_depends_on_time_base():
    A = np.diag([-0.5, -1.5])     # stable in continuous time, |-1.5| > 1 in discrete time
    assert StateSpace(A, np.ones((2, 1)), np.ones((1, 2))).is_stable()
    assert not StateSpace(A, np.ones((2, 1)), np.ones((1, 2)), dt=1.0).is_stable()
    np.testing.assert_allclose(np.sort(StateSpace(A, np.ones((2, 1)), np.ones((1, 2))).poles().real), [-1.5, -0.5])


# --------------------------------------------------------------------------------------
# frequency response and DC gain against the direct formula
# --------------------------------------------------------------------------------------
def test_frequency_response_continuous():
    system = StateSpace(A3, B3, C3, D3)
    w = np.array([0.0, 0.3, 2.0, 17.0])
    G = system.frequency_response(w)
    assert G.shape == (4, 4, 2)
    for k, wk in enumerate(w):
        np.testing.assert_allclose(G[k], direct(A3, B3, C3, D3, 1j * wk), rtol=1e-13, atol=1e-14)


def test_frequency_response_discrete_uses_dt():
    dt = 0.1
    system = StateSpace(AD3, B3, C3, D3, dt=dt)
    w = np.array([0.0, 1.0, 10.0, np.pi / dt])
    G = system.frequency_response(w)
    for k, wk in enumerate(w):
        np.testing.assert_allclose(G[k], direct(AD3, B3, C3, D3, np.exp(1j * wk * dt)), rtol=1e-13, atol=1e-14)


def test_frequency_response_against_scipy():
    system = StateSpace(A3, B3[:, :1], C3[:1], D3[:1, :1])
    w = np.array([0.1, 1.0, 5.0])
    _, H = signal.freqresp(system.to_scipy(), w)
    np.testing.assert_allclose(system.frequency_response(w)[:, 0, 0], H, rtol=1e-12)


def test_evaluate_complex_system():
    A = A3 + 0.5j * np.eye(3)
    system = StateSpace(A, B3 + 1j, C3, D3)
    s = np.array([0.2 + 1j, -3j])
    G = system.evaluate(s)
    for k in range(2):
        np.testing.assert_allclose(G[k], direct(A, B3 + 1j, C3, D3, s[k]), rtol=1e-13)


def test_dc_gain_continuous():
    system = StateSpace(A3, B3, C3, D3)
    np.testing.assert_allclose(system.dc_gain(), D3 - C3 @ np.linalg.solve(A3, B3), rtol=1e-13)


def test_dc_gain_discrete():
    system = StateSpace(AD3, B3, C3, D3, dt=0.5)
    np.testing.assert_allclose(system.dc_gain(), D3 + C3 @ np.linalg.solve(np.eye(3) - AD3, B3), rtol=1e-13)


# --------------------------------------------------------------------------------------
# python-control
# --------------------------------------------------------------------------------------
@needs_control
@pytest.mark.parametrize("dt", [0.0, 0.2, True])
def test_control_round_trip(dt):
    A = AD3 if dt else A3
    system = StateSpace(A, B3, C3, D3, dt=dt)
    sys_c = system.to_control()
    assert isinstance(sys_c, control.StateSpace)
    assert sys_c.dt == dt
    np.testing.assert_array_equal(sys_c.A, A)
    back = StateSpace.from_control(sys_c)
    assert back.dt == system.dt
    for x, y in zip((back.A, back.B, back.C, back.D), (A, B3, C3, D3)):
        np.testing.assert_array_equal(x, y)


@needs_control
def test_control_frequency_response_agrees():
    system = StateSpace(A3, B3, C3, D3)
    sys_c = system.to_control()
    for w in (0.5, 3.0):
        np.testing.assert_allclose(system.frequency_response([w])[0], sys_c(1j * w), rtol=1e-12)


@needs_control
def test_from_control_transfer_function():
    tf = control.tf([1.0, 3.0], [1.0, 3.0, 2.0])       # (s + 3) / ((s + 1)(s + 2))
    system = StateSpace.from_control(tf)
    assert system.n == 2 and not system.is_discrete
    np.testing.assert_allclose(system.dc_gain(), [[1.5]], rtol=1e-13)


@needs_control
def test_from_control_unspecified_dt_rejected():
    sys_c = control.ss(A3, B3, C3, D3, None)
    with pytest.raises(InvalidParameterError, match=r"dt=None"):
        StateSpace.from_control(sys_c)


@needs_control
def test_to_control_rejects_complex():
    with pytest.raises(InvalidParameterError, match=r"real systems only"):
        StateSpace(A3, B3 + 1j, C3).to_control()


@needs_control
def test_reduction_accepts_control_systems():
    sys_c = control.ss(AD3, B3, C3, D3, 0.2)
    result = lr.balanced_truncation(sys_c, 2)
    assert result.system.dt == 0.2 and result.system.n == 2
    direct_result = lr.balanced_truncation(StateSpace(AD3, B3, C3, D3, dt=0.2), 2)
    z = np.exp(1j * np.array([0.1, 1.0]))
    np.testing.assert_allclose(result.system.evaluate(z), direct_result.system.evaluate(z), rtol=1e-12)


# --------------------------------------------------------------------------------------
# scipy.signal
# --------------------------------------------------------------------------------------
def test_to_scipy_continuous():
    sys_s = StateSpace(A3, B3, C3, D3).to_scipy()
    assert isinstance(sys_s, signal.StateSpace) and sys_s.dt is None
    np.testing.assert_array_equal(sys_s.A, A3)


@pytest.mark.parametrize("dt, expected", [(0.1, 0.1), (True, 1.0)])
def test_to_scipy_discrete(dt, expected):
    sys_s = StateSpace(AD3, B3, C3, D3, dt=dt).to_scipy()
    assert isinstance(sys_s, signal.dlti) and sys_s.dt == expected
    back = StateSpace.from_scipy(sys_s)
    assert back.dt == expected
    np.testing.assert_array_equal(back.D, D3)


def test_from_scipy_lti_and_dlti_transfer_functions():
    cont = StateSpace.from_scipy(signal.lti([1.0], [1.0, 2.0]))
    assert not cont.is_discrete
    np.testing.assert_allclose(cont.dc_gain(), [[0.5]], rtol=1e-13)
    disc = StateSpace.from_scipy(signal.dlti([1.0], [1.0, -0.5], dt=0.1))
    assert disc.dt == 0.1
    np.testing.assert_allclose(disc.dc_gain(), [[2.0]], rtol=1e-13)


def test_reduction_accepts_scipy_systems():
    result = lr.balanced_truncation(signal.StateSpace(A3, B3, C3, D3), 2)
    assert result.system.n == 2 and not result.system.is_discrete


# --------------------------------------------------------------------------------------
# DiagonalStateSpace
# --------------------------------------------------------------------------------------
def diagonal_data(batch=(), n=4, m=2, p=3, seed=0):
    rng = np.random.default_rng(seed)
    lam = -rng.uniform(0.1, 2.0, batch + (n,)) + 1j * rng.uniform(-3, 3, batch + (n,))
    B = rng.standard_normal(batch + (n, m)) + 1j * rng.standard_normal(batch + (n, m))
    C = rng.standard_normal(batch + (p, n)) + 1j * rng.standard_normal(batch + (p, n))
    D = rng.standard_normal(batch + (p, m)) + 0j
    return lam, B, C, D


def test_diagonal_to_dense_equivalence():
    lam, B, C, D = diagonal_data()
    system = DiagonalStateSpace(lam, B, C, D, dt=0.0)
    dense = system.to_dense()
    assert isinstance(dense, StateSpace)
    np.testing.assert_array_equal(dense.A, np.diag(lam))
    np.testing.assert_array_equal(system.A, np.diag(lam))
    s = np.array([0.0, 1j, -2j, 0.5 + 0.5j])
    G = system.evaluate(s)
    np.testing.assert_allclose(G, dense.evaluate(s), rtol=1e-13, atol=1e-14)
    for k in range(s.size):
        np.testing.assert_allclose(G[k], direct(np.diag(lam), B, C, D, s[k]), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(system.dc_gain(), dense.dc_gain(), rtol=1e-13)
    np.testing.assert_array_equal(np.sort_complex(system.poles()), np.sort_complex(lam))


def test_diagonal_discrete_frequency_response():
    lam, B, C, D = diagonal_data()
    lam = 0.5 * np.exp(1j * np.angle(lam))
    system = DiagonalStateSpace(lam, B, C, D, dt=0.5)
    w = np.array([0.0, 1.0, 2 * np.pi])
    np.testing.assert_allclose(system.frequency_response(w), system.to_dense().frequency_response(w),
                               rtol=1e-13, atol=1e-14)


def test_batched_frequency_response_shape_and_values():
    batch = (2, 3)
    system = DiagonalStateSpace(*diagonal_data(batch))
    G = system.frequency_response([0.5, 1.0])
    assert G.shape == batch + (2, 3, 2)
    np.testing.assert_allclose(G[1, 2], system[1, 2].to_dense().frequency_response([0.5, 1.0]), rtol=1e-13)
    assert system.dc_gain().shape == batch + (3, 2)


def test_batch_indexing():
    lam, B, C, D = diagonal_data((2, 3))
    system = DiagonalStateSpace(lam, B, C, D, dt=0.1)
    assert system.batch_shape == (2, 3)
    assert system[1].batch_shape == (3,)
    element = system[1, 2]
    assert element.batch_shape == () and element.dt == 0.1
    np.testing.assert_array_equal(element.eigenvalues, lam[1, 2])
    np.testing.assert_array_equal(element.B, B[1, 2])
    np.testing.assert_array_equal(element.C, C[1, 2])
    np.testing.assert_array_equal(element.D, D[1, 2])
    np.testing.assert_array_equal(system[1][2].eigenvalues, lam[1, 2])
    sub = system[0:1]
    assert sub.batch_shape == (1, 3)


def test_unbatched_cannot_be_indexed():
    system = DiagonalStateSpace(*diagonal_data())
    with pytest.raises(IndexError, match=r"no batch dimension"):
        system[0]


def test_to_dense_of_a_batch_is_rejected():
    system = DiagonalStateSpace(*diagonal_data((2,)))
    with pytest.raises(ShapeError, match=r"batch shape \(2,\).*index it first"):
        system.to_dense()


def test_diagonal_real_stays_real():
    system = DiagonalStateSpace(np.array([-1.0, -2.0]), np.ones((2, 1)), np.ones((1, 2)))
    assert not system.is_complex
    assert system.B.dtype == np.float64 and system.eigenvalues.dtype == np.float64


def test_diagonal_stability():
    assert DiagonalStateSpace(np.array([-1.0, -0.1 + 5j]), np.ones((2, 1)), np.ones((1, 2))).is_stable()
    assert not DiagonalStateSpace(np.array([-1.0, 0.0]), np.ones((2, 1)), np.ones((1, 2))).is_stable()
    assert not DiagonalStateSpace(np.array([0.5, -1.0]), np.ones((2, 1)), np.ones((1, 2)), dt=1.0).is_stable()
