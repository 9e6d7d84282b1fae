"""Bad input: each case its own test, asserting the exception type and that the message
names the argument and what was expected. Warnings (OrderAdjustedWarning) are asserted too.
"""

import numpy as np
import pytest

import lti_reduce as lr
from lti_reduce import (DiagonalStateSpace, InvalidParameterError, NonFiniteError, OrderAdjustedWarning,
                        ShapeError, StateSpace, UnstableSystemError, balanced_truncation, error_bound,
                        gramian, hankel_singular_values, select_order)


@pytest.fixture
def stable():
    """A stable, minimal continuous system: n=3, m=2, p=2, distinct HSVs."""
    A = np.array([[-1.0, 0.5, 0.0], [0.0, -2.0, 1.0], [0.0, 0.0, -3.0]])
    B = np.array([[1.0, 0.0], [0.3, 1.0], [1.0, -0.5]])
    C = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.7]])
    return StateSpace(A, B, C)


@pytest.fixture
def stable_discrete(stable):
    return StateSpace(np.eye(3) * 0.5 + 0.1 * np.triu(np.ones((3, 3)), 1), stable.B, stable.C, dt=1.0)


def test_errors_are_value_errors():
    for error in (ShapeError, NonFiniteError, UnstableSystemError, InvalidParameterError):
        assert issubclass(error, ValueError) and issubclass(error, lr.LTIReduceError)
    assert issubclass(OrderAdjustedWarning, lr.ReductionWarning)


# --------------------------------------------------------------------------------------
# containers: shapes, finiteness, empty systems, dt
# --------------------------------------------------------------------------------------
def test_non_square_A():
    with pytest.raises(ShapeError, match=r"A must be square.*\(2, 3\)"):
        StateSpace(np.zeros((2, 3)), np.zeros((2, 1)), np.zeros((1, 3)))


def test_A_not_two_dimensional():
    with pytest.raises(ShapeError, match=r"A must .*(2-D|dimensions).*\(3,\)"):
        StateSpace(np.zeros(3), np.zeros((3, 1)), np.zeros((1, 3)))


def test_mismatched_B():
    with pytest.raises(ShapeError, match=r"B must have n=3 rows.*got shape \(2, 1\)"):
        StateSpace(-np.eye(3), np.zeros((2, 1)), np.zeros((1, 3)))


def test_mismatched_C():
    with pytest.raises(ShapeError, match=r"C must have n=3 columns.*got shape \(1, 2\)"):
        StateSpace(-np.eye(3), np.zeros((3, 1)), np.zeros((1, 2)))


def test_mismatched_D():
    with pytest.raises(ShapeError, match=r"D must have shape \(p, m\) = \(1, 2\).*\(2, 1\)"):
        StateSpace(-np.eye(3), np.zeros((3, 2)), np.zeros((1, 3)), np.zeros((2, 1)))


def test_mismatched_diagonal_B():
    with pytest.raises(ShapeError, match=r"B must have shape \(\*batch, n, m\).*\(2, 3, 1\)"):
        DiagonalStateSpace(-np.ones((2, 4)), np.ones((2, 3, 1)), np.ones((2, 1, 4)))


def test_mismatched_diagonal_batch():
    with pytest.raises(ShapeError, match=r"C must have shape \(\*batch, p, n\).*\(3, 1, 4\)"):
        DiagonalStateSpace(-np.ones((2, 4)), np.ones((2, 4, 1)), np.ones((3, 1, 4)))


@pytest.mark.parametrize("name", ["A", "B", "C", "D"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_entries(name, bad):
    arrays = {"A": -np.eye(2), "B": np.ones((2, 1)), "C": np.ones((1, 2)), "D": np.zeros((1, 1))}
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = bad
    with pytest.raises(NonFiniteError, match=rf"^{name} contains NaN or infinity"):
        StateSpace(arrays["A"], arrays["B"], arrays["C"], arrays["D"])


def test_non_finite_diagonal_eigenvalues():
    with pytest.raises(NonFiniteError, match=r"eigenvalues contains NaN or infinity"):
        DiagonalStateSpace(np.array([-1.0, np.nan]), np.ones((2, 1)), np.ones((1, 2)))


def test_empty_system_no_inputs():
    with pytest.raises(ShapeError, match=r"empty system: B is \(2, 0\).*at least one input"):
        StateSpace(-np.eye(2), np.zeros((2, 0)), np.ones((1, 2)))


def test_empty_system_no_outputs():
    with pytest.raises(ShapeError, match=r"empty system.*C is \(0, 2\).*at least one .*output"):
        StateSpace(-np.eye(2), np.ones((2, 1)), np.zeros((0, 2)))


def test_nothing_to_reduce_without_states():
    static = StateSpace(np.zeros((0, 0)), np.zeros((0, 1)), np.zeros((1, 0)), np.ones((1, 1)))
    with pytest.raises(InvalidParameterError, match=r"no states \(n = 0\)"):
        balanced_truncation(static, 0)


def test_non_numeric_dtype():
    with pytest.raises((InvalidParameterError, ShapeError), match=r"A must hold real or complex numbers"):
        StateSpace(np.array([["a"]]), np.ones((1, 1)), np.ones((1, 1)))


@pytest.mark.parametrize("dt", [-1.0, np.nan, np.inf, "1", None])
def test_bad_dt(dt):
    with pytest.raises(InvalidParameterError, match=r"dt"):
        StateSpace(-np.eye(1), np.ones((1, 1)), np.ones((1, 1)), dt=dt)


def test_bad_dt_message_says_what_is_expected():
    with pytest.raises(InvalidParameterError, match=r"dt must be 0 \(continuous\), a positive sampling period"):
        StateSpace(-np.eye(1), np.ones((1, 1)), np.ones((1, 1)), dt=-0.5)


def test_not_a_system():
    with pytest.raises(InvalidParameterError, match=r"system must be a StateSpace.*got ndarray"):
        balanced_truncation(np.eye(2), 1)


# --------------------------------------------------------------------------------------
# stability
# --------------------------------------------------------------------------------------
def test_unstable_continuous_names_eigenvalues(stable):
    A = stable.A.copy()
    A[1, 1] = 0.5                                 # eigenvalues -1, 0.5, -3
    system = StateSpace(A, stable.B, stable.C)
    for call in (lambda: hankel_singular_values(system), lambda: gramian(system, "c"),
                 lambda: balanced_truncation(system, 1)):
        with pytest.raises(UnstableSystemError, match=r"1 eigenvalue\(s\) outside .*Re\(s\) < 0.*0\.5") as info:
            call()
    assert "unstable='keep'" in str(info.value)      # the remedy


def test_marginally_stable_is_unstable():
    system = StateSpace(np.array([[0.0, 1.0], [-1.0, 0.0]]), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(UnstableSystemError, match=r"2 eigenvalue\(s\)"):
        hankel_singular_values(system)


def test_unstable_discrete_names_eigenvalues():
    system = StateSpace(np.diag([0.5, -1.25]), np.ones((2, 1)), np.ones((1, 2)), dt=1.0)
    with pytest.raises(UnstableSystemError, match=r"\|z\| < 1.*-1\.25"):
        balanced_truncation(system, 1)


def test_unstable_diagonal_names_eigenvalues():
    system = DiagonalStateSpace(np.array([-1.0, 0.25 + 2j]), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(UnstableSystemError, match=r"0\.25\+2j"):
        hankel_singular_values(system)


def test_unstable_beyond_alpha_names_alpha(stable):
    # eigenvalues -1, -2, -3: with alpha=-1.5 the eigenvalue -1 is outside Re(s) < -1.5
    with pytest.raises(UnstableSystemError, match=r"Re\(s\) < -1\.5.*-1"):
        balanced_truncation(stable, 2, alpha=-1.5)


def test_unstable_keep_order_below_unstable_part(stable):
    A = stable.A.copy()
    A[1, 1] = 0.5
    system = StateSpace(A, stable.B, stable.C)
    with pytest.raises(InvalidParameterError, match=r"order=0 is below the number of kept unstable states \(1\)"):
        balanced_truncation(system, 0, unstable="keep")


# --------------------------------------------------------------------------------------
# order / tol / energy
# --------------------------------------------------------------------------------------
def test_order_negative(stable):
    with pytest.raises(InvalidParameterError, match=r"order must be in \[0, n=3\], got -1"):
        balanced_truncation(stable, -1)


def test_order_above_n(stable):
    with pytest.raises(InvalidParameterError, match=r"order must be in \[0, n=3\], got 4"):
        balanced_truncation(stable, 4)


@pytest.mark.parametrize("order", [1.5, "2", True])
def test_order_not_an_integer(stable, order):
    with pytest.raises(InvalidParameterError, match=r"order must be an integer"):
        balanced_truncation(stable, order)


@pytest.mark.parametrize("kwargs", [dict(order=1, tol=0.1), dict(order=1, energy=0.1),
                                    dict(tol=0.1, energy=0.1), dict(order=1, tol=0.1, energy=0.1)])
def test_conflicting_order_tol_energy(stable, kwargs):
    with pytest.raises(InvalidParameterError, match=r"give exactly one of order .*tol .*energy"):
        balanced_truncation(stable, **kwargs)


def test_none_of_order_tol_energy(stable):
    with pytest.raises(InvalidParameterError, match=r"give exactly one of order.*got none"):
        balanced_truncation(stable)


@pytest.mark.parametrize("energy", [0.0, 1.0, -0.1, 1.5, np.nan])
def test_energy_outside_open_unit_interval(stable, energy):
    with pytest.raises(InvalidParameterError, match=r"energy must be a fraction tau in the open interval \(0, 1\)"):
        balanced_truncation(stable, energy=energy)


@pytest.mark.parametrize("tol", [-1e-3, -np.inf, np.nan, np.inf])
def test_bad_tol(stable, tol):
    with pytest.raises(InvalidParameterError, match=r"tol must be a finite number >= 0"):
        balanced_truncation(stable, tol=tol)


def test_select_order_checks_its_arguments_too():
    with pytest.raises(InvalidParameterError, match=r"tol must be a finite number >= 0"):
        select_order([1.0, 0.5], tol=-1.0)
    with pytest.raises(InvalidParameterError, match=r"hsv must be non-negative and not NaN"):
        select_order([1.0, np.nan], order=1)


def test_error_bound_bad_order():
    with pytest.raises(InvalidParameterError, match=r"order must be in \[0, n=2\], got 3"):
        error_bound([1.0, 0.5], 3)


def test_batched_orders_wrong_length():
    system = DiagonalStateSpace(-np.ones((2, 3)) * [1, 2, 3], np.ones((2, 3, 1)), np.ones((2, 1, 3)))
    with pytest.raises(InvalidParameterError, match=r"order has 3 entries but the system batch \(2,\) has 2"):
        balanced_truncation(system, [1, 1, 1])


def test_order_list_for_unbatched_system(stable):
    with pytest.raises(InvalidParameterError, match=r"order must be an integer for an unbatched system"):
        balanced_truncation(stable, [1, 2])


# --------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------
def test_wrong_kind(stable):
    with pytest.raises(InvalidParameterError, match=r"kind must be 'c' \(controllability\) or 'o' .*got 'x'"):
        gramian(stable, "x")


def test_unknown_method(stable):
    with pytest.raises(InvalidParameterError, match=r"method must be one of \('sr', 'bfsr'\).*got 'qr'"):
        balanced_truncation(stable, 1, method="qr")


def test_unknown_match(stable):
    with pytest.raises(InvalidParameterError, match=r"match must be 'truncate' .* or 'dc' .*got 'spa'"):
        balanced_truncation(stable, 1, match="spa")


def test_unknown_unstable_option(stable):
    with pytest.raises(InvalidParameterError, match=r"unstable must be 'error' or 'keep', got 'drop'"):
        balanced_truncation(stable, 1, unstable="drop")


@pytest.mark.parametrize("alpha", [0.5, np.nan, np.inf, "0", True])
def test_bad_alpha_continuous(stable, alpha):
    with pytest.raises(InvalidParameterError, match=r"alpha"):
        balanced_truncation(stable, 1, alpha=alpha)


def test_bad_alpha_continuous_message(stable):
    with pytest.raises(InvalidParameterError, match=r"alpha bounds the real part .* must be <= 0, got 0.5"):
        balanced_truncation(stable, 1, alpha=0.5)


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_bad_alpha_discrete(stable_discrete, alpha):
    with pytest.raises(InvalidParameterError, match=r"alpha bounds the modulus .* must be in \[0, 1\]"):
        balanced_truncation(stable_discrete, 1, alpha=alpha)


@pytest.mark.parametrize("horizon", [0, -1.0, np.nan, np.inf, True, "5"])
def test_bad_horizon(stable, horizon):
    with pytest.raises(InvalidParameterError, match=r"horizon must be None \(infinite\) or a positive number"):
        gramian(stable, "c", horizon=horizon)


def test_discrete_horizon_must_be_integer(stable_discrete):
    with pytest.raises(InvalidParameterError, match=r"discrete-time horizon counts samples .*integer, got 2.5"):
        balanced_truncation(stable_discrete, 1, horizon=2.5)


def test_bad_horizon_in_hsv(stable):
    with pytest.raises(InvalidParameterError, match=r"horizon must be"):
        hankel_singular_values(stable, horizon=-2.0)


# --------------------------------------------------------------------------------------
# warnings
# --------------------------------------------------------------------------------------
def test_order_above_numerical_rank_warns_and_clips(stable):
    # append an uncontrollable, unobservable mode: rank 3 of n = 4
    A = np.zeros((4, 4))
    A[:3, :3], A[3, 3] = stable.A, -0.7
    system = StateSpace(A, np.vstack([stable.B, np.zeros((1, 2))]), np.hstack([stable.C, np.zeros((2, 1))]))
    with pytest.warns(OrderAdjustedWarning, match=r"order=4 exceeds the numerical rank 3.*using order 3"):
        result = balanced_truncation(system, 4)
    assert result.order == 3 and result.system.n == 3
    np.testing.assert_allclose(result.system.evaluate([1j, 2.0]), system.evaluate([1j, 2.0]), atol=1e-12)


def test_order_splitting_equal_hsvs_warns():
    # two identical decoupled channels: HSVs come in equal pairs
    system = DiagonalStateSpace(np.array([-1.0, -1.0, -3.0, -3.0]), np.eye(4)[:, :4], np.eye(4))
    s = np.asarray(hankel_singular_values(system))
    assert s[0] == pytest.approx(s[1], rel=1e-14) and s[2] == pytest.approx(s[3], rel=1e-14)
    with pytest.warns(OrderAdjustedWarning, match=r"order=1 splits a group of equal Hankel singular values"):
        balanced_truncation(system, 1)


def test_order_splitting_equal_hsvs_dense_warns():
    A = np.kron(np.eye(2), np.array([[-1.0, 2.0], [-2.0, -1.0]]))
    system = StateSpace(A, np.kron(np.eye(2), np.array([[1.0], [0.5]])), np.kron(np.eye(2), np.array([[1.0, 0.0]])))
    with pytest.warns(OrderAdjustedWarning, match=r"splits a group of equal"):
        balanced_truncation(system, 3)


def test_tol_never_splits_equal_hsvs():
    """With tol (or energy) the cut moves to the end of a group of equal HSVs, without a warning."""
    system = DiagonalStateSpace(np.array([-1.0, -1.0, -3.0, -3.0]), np.eye(4), np.eye(4))
    s = np.asarray(hankel_singular_values(system))
    # a budget that allows dropping one of the two s_3 = s_4 but not both
    result = balanced_truncation(system, tol=2 * s[3] * 1.5)
    assert result.order == 4
    result = balanced_truncation(system, energy=0.5 * s[0] / s.sum())
    assert result.order == 4
