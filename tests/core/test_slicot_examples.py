"""SLICOT example programs (data and printed results in ../shared/spec/slicot-references.md).

Realisation-independent quantities only: HSVs, transfer functions at several points,
poles, feedthrough (D) matrices, Gramians. The printed matrices have 4 decimals, so the
reduced transfer functions are compared at 1e-3 relative.

SLICOT's TOL in AB09AD/BD/MD/ND is a threshold on the HSVs, whereas our ``tol`` is an
error budget (``2 * sum`` of the truncated HSVs), so the printed order 5 is requested
explicitly. AB13DD (H-infinity norm) is covered by test_norms.py.
"""

import numpy as np
import pytest
import scipy.linalg as sla

import lti_reduce as lr
from lti_reduce import StateSpace, balanced_truncation, gramian, hankel_singular_values
from lti_reduce.example_systems import slicot_ab09_system

# --------------------------------------------------------------------------------------
# the 7-state, 2-input, 3-output continuous system (its data: lti_reduce.example_systems)
# --------------------------------------------------------------------------------------
HSV7 = [2.5139, 2.0846, 1.9178, 0.7666, 0.5473, 0.0253, 0.0246]
HSV7_STABLE_PART = [1.9178, 0.8621, 0.7666, 0.0336, 0.0246]      # AB09MD/ND, ALPHA = -0.6
KEPT_PAIR = -0.518127 + 3.125924j                                  # real part > ALPHA

AB09AD = dict(
    A=[[1.3451, 5.0399, 0, 0, 4.5315], [-4.0214, -3.6604, 0, 0, -0.9056],
       [0, 0, 0.5124, 1.7910, 0], [0, 0, -4.2167, -2.9900, 0], [1.2402, 1.6416, 0, 0, -0.0586]],
    B=[[-0.3857, 0.3857], [-3.1753, 3.1753], [-0.7447, -0.7447], [-3.6872, -3.6872], [1.8197, -1.8197]],
    C=[[-0.6704, 0.1828, -0.6582, 0.2222, -0.0104], [0.1089, 0.4867, 0, 0, 0.8651],
       [0.6704, -0.1828, -0.6582, 0.2222, 0.0104]],
    D=np.zeros((3, 2)))
AB09BD = dict(
    A=[[1.3960, 5.1248, 0, 0, 4.4331], [-4.1411, -3.8605, 0, 0, -0.6738],
       [0, 0, 0.5847, 1.9230, 0], [0, 0, -4.3823, -3.2922, 0], [1.3261, 1.7851, 0, 0, -0.2249]],
    B=[[-0.2901, 0.2901], [-3.4004, 3.4004], [-0.6379, -0.6379], [-3.9315, -3.9315], [1.9813, -1.9813]],
    C=[[-0.6570, 0.2053, -0.6416, 0.2526, -0.0364], [0.1094, 0.4875, 0, 0, 0.8641],
       [0.6570, -0.2053, -0.6416, 0.2526, 0.0364]],
    D=[[0.0498, -0.0007], [0.0010, -0.0010], [-0.0007, 0.0498]])
AB09MD = dict(
    A=[[-0.5181, -1.1084, 0, 0, 0], [8.8157, -0.5181, 0, 0, 0], [0, 0, 0.5124, 0, 1.7910],
       [0, 0, 0, -1.4460, 0], [0, 0, -4.2167, 0, -2.9900]],
    B=[[-1.2837, 1.2837], [-0.7522, 0.7522], [-0.7447, -0.7447], [1.9275, -1.9275], [-3.6872, -3.6872]],
    C=[[-0.1380, -0.6445, -0.6582, -0.5771, 0.2222], [0.6246, 0.0196, 0, 0.4131, 0],
       [0.1380, 0.6445, -0.6582, 0.5771, 0.2222]],
    D=np.zeros((3, 2)))
AB09ND = dict(
    A=[[-0.5181, -1.1084, 0, 0, 0], [8.8157, -0.5181, 0, 0, 0], [0, 0, 0.5847, 0, 1.9230],
       [0, 0, 0, -1.6606, 0], [0, 0, -4.3823, 0, -3.2922]],
    B=[[-1.2837, 1.2837], [-0.7522, 0.7522], [-0.6379, -0.6379], [2.0656, -2.0656], [-3.9315, -3.9315]],
    C=[[-0.1380, -0.6445, -0.6416, -0.6293, 0.2526], [0.6246, 0.0196, 0, 0.4107, 0],
       [0.1380, 0.6445, -0.6416, 0.6293, 0.2526]],
    D=[[0.0582, -0.0090], [0.0015, -0.0015], [-0.0090, 0.0582]])

# frequencies through the resonances (|Im| of the poles is 2.1 to 3.1), DC, and off the axis
POINTS = np.concatenate([1j * np.array([0.0, 0.5, 1.0, 2.0, 2.5, 3.1, 4.0, 10.0]), [1.0 + 1.0j, 0.3 - 2.0j]])


@pytest.fixture
def system7():
    return slicot_ab09_system()


def slicot_system(printed):
    return StateSpace(np.array(printed["A"]), np.array(printed["B"]), np.array(printed["C"]),
                      np.array(printed["D"]))


def assert_same_transfer_function(ours, theirs, rtol=1e-3):
    G, G_ref = ours.evaluate(POINTS), theirs.evaluate(POINTS)
    for k, point in enumerate(POINTS):
        error = np.linalg.norm(G[k] - G_ref[k], 2)
        assert error <= rtol * np.linalg.norm(G_ref[k], 2), \
            f"G({point}) differs from SLICOT's by {error:.3g} (relative {error / np.linalg.norm(G_ref[k], 2):.3g})"


def assert_same_poles(ours, theirs, rtol=1e-3):
    p, p_ref = np.sort_complex(ours.poles()), np.sort_complex(theirs.poles())
    assert p.shape == p_ref.shape
    np.testing.assert_allclose(p, p_ref, rtol=rtol)


# --------------------------------------------------------------------------------------
# HSVs and the Hankel norm
# --------------------------------------------------------------------------------------
def test_hsv_match_printed_digits(system7):
    s = hankel_singular_values(system7)
    np.testing.assert_array_equal(np.round(s, 4), HSV7)


def test_hankel_norm_ab13ad(system7):
    """AB13AD: the Hankel norm is the largest HSV, 2.51388."""
    s = hankel_singular_values(system7)
    assert round(float(s[0]), 5) == 2.51388


def test_hsv_of_a_matrix_built_from_the_printed_order(system7):
    """SLICOT's order 5 with TOL=0.1 (HSV threshold) is exactly our tol = 2 * (s_6 + s_7) budget."""
    s = hankel_singular_values(system7)
    result = balanced_truncation(system7, tol=2 * (s[5] + s[6]) * (1 + 1e-12))
    assert result.order == 5
    assert result.error_bound == pytest.approx(2 * (0.0253 + 0.0246), abs=2e-4)


# --------------------------------------------------------------------------------------
# AB09AD / AB09BD: balanced truncation and singular perturbation approximation
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["sr", "bfsr"])
def test_ab09ad_balanced_truncation(system7, method):
    result = balanced_truncation(system7, order=5, method=method)
    assert result.order == 5 and result.system.n == 5
    np.testing.assert_array_equal(np.round(result.hsv, 4), HSV7)
    reference = slicot_system(AB09AD)
    assert_same_transfer_function(result.system, reference)
    assert_same_poles(result.system, reference)
    np.testing.assert_array_equal(result.system.D, np.zeros((3, 2)))


@pytest.mark.parametrize("method", ["sr", "bfsr"])
def test_ab09bd_singular_perturbation(system7, method):
    result = balanced_truncation(system7, order=5, method=method, match="dc")
    assert result.order == 5
    reference = slicot_system(AB09BD)
    np.testing.assert_allclose(result.system.D, reference.D, rtol=0, atol=6e-5)   # 4 printed decimals
    assert_same_transfer_function(result.system, reference)
    assert_same_poles(result.system, reference)
    np.testing.assert_allclose(result.system.dc_gain(), system7.dc_gain(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# AB09MD / AB09ND: the ALPHA-stable part reduced, the rest kept
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("match, printed", [("truncate", AB09MD), ("dc", AB09ND)],
                         ids=["AB09MD", "AB09ND"])
def test_ab09md_nd_alpha_stable_part(system7, match, printed):
    result = balanced_truncation(system7, order=5, alpha=-0.6, unstable="keep", match=match)
    assert result.order == 5 and result.system.n == 5
    hsv = np.asarray(result.hsv)
    # the pair -0.518 +/- 3.126j (Re > ALPHA) is kept whole: two infinite HSVs, listed first
    np.testing.assert_array_equal(hsv[:2], [np.inf, np.inf])
    np.testing.assert_array_equal(np.round(hsv[2:], 4), HSV7_STABLE_PART)
    poles = result.system.poles()
    for kept in (KEPT_PAIR, KEPT_PAIR.conjugate()):
        assert np.min(np.abs(poles - kept)) < 1e-6
    reference = slicot_system(printed)
    np.testing.assert_allclose(result.system.D, reference.D, rtol=0, atol=6e-5)
    assert_same_transfer_function(result.system, reference)
    assert_same_poles(result.system, reference)
    # the error bound covers the truncated stable HSVs only: 2 * (0.0336 + 0.0246)
    assert result.error_bound == pytest.approx(2 * (0.0336 + 0.0246), abs=2e-4)
    if match == "dc":
        np.testing.assert_allclose(result.system.dc_gain(), system7.dc_gain(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# SB03OD: Cholesky factor of a continuous Lyapunov solution
# --------------------------------------------------------------------------------------
SB03OD_A = np.array([[-1, 37, -12, -12], [-1, -10, 0, 4], [2, -4, 7, -6], [2, 2, 7, -9]], dtype=float)
SB03OD_B = np.array([[1, 2.5, 1, 3.5], [0, 1, 0, 1], [-1, -2.5, -1, -1.5], [1, 2.5, 4, -5.5],
                     [-1, -2.5, -4, 3.5]])
SB03OD_U = np.array([[1, 3, 2, -1], [0, 1, -1, 1], [0, 0, 1, -2], [0, 0, 0, 1]], dtype=float)
SB03OD_X = np.array([[1, 3, 2, -1], [3, 10, 5, -2], [2, 5, 6, -5], [-1, -2, -5, 7]], dtype=float)


def test_sb03od_data_are_consistent():
    """The printed U and X satisfy X = U^T U and A^T X + X A = -B^T B (so the fixture is right)."""
    np.testing.assert_array_equal(SB03OD_U.T @ SB03OD_U, SB03OD_X)
    np.testing.assert_array_equal(SB03OD_A.T @ SB03OD_X + SB03OD_X @ SB03OD_A, -SB03OD_B.T @ SB03OD_B)


def test_sb03od_is_our_observability_gramian():
    """A^T X + X A = -B^T B is our observability equation A^H Q + Q A + C^H C = 0 with C = B_slicot."""
    system = StateSpace(SB03OD_A, np.ones((4, 1)), SB03OD_B)
    X = gramian(system, "o")
    np.testing.assert_allclose(X, SB03OD_X, rtol=0, atol=1e-12 * np.abs(SB03OD_X).max())
    # the same equation as the controllability Gramian of the dual system (A^T, B_slicot^T)
    dual = StateSpace(SB03OD_A.T, SB03OD_B.T, np.ones((1, 4)))
    np.testing.assert_allclose(gramian(dual, "c"), SB03OD_X, rtol=0, atol=1e-12 * np.abs(SB03OD_X).max())


def test_sb03od_factor():
    """Our factor L (X = L L^H) equals SLICOT's U^T up to the factor's non-uniqueness.

    Any two factors of the same X differ by an orthogonal matrix on the right: the R factor
    of L^T's QR factorisation (rows signed to a positive diagonal) is the unique Cholesky
    factor, which must be SLICOT's U.
    """
    system = StateSpace(SB03OD_A, np.ones((4, 1)), SB03OD_B)
    L = gramian(system, "o", factor=True)
    assert L.shape == (4, 4)
    np.testing.assert_allclose(L @ L.conj().T, SB03OD_X, rtol=0, atol=1e-12 * np.abs(SB03OD_X).max())
    R = np.linalg.qr(L.conj().T, mode="r")
    R = R * np.sign(np.diag(R).real)[:, None]
    np.testing.assert_allclose(R, SB03OD_U, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------
# SB03MD: discrete Lyapunov equation A^T X A - X = C with A not convergent
# --------------------------------------------------------------------------------------
SB03MD_A = np.array([[3, 1, 1], [1, 3, 0], [0, 0, 3]], dtype=float)
SB03MD_C = np.array([[25, 24, 15], [24, 32, 8], [15, 8, 40]], dtype=float)
SB03MD_X = np.array([[2, 1, 1], [1, 3, 0], [1, 0, 4]], dtype=float)


def test_sb03md_printed_solution_by_residual():
    """A is not convergent (eigenvalues 2, 3, 4): out of scope for a Gramian, so the printed X is
    checked by the equation's residual and against scipy's solver."""
    A, C, X = SB03MD_A, SB03MD_C, SB03MD_X
    np.testing.assert_array_equal(A.T @ X @ A - X, C)
    # scipy: a X a^H - X + q = 0 with a = A^T, q = -C
    np.testing.assert_allclose(sla.solve_discrete_lyapunov(A.T, -C), X, rtol=0, atol=1e-12)


def test_sb03md_non_convergent_is_rejected_with_its_eigenvalues():
    system = StateSpace(SB03MD_A, np.eye(3), np.eye(3), dt=1.0)
    with pytest.raises(lr.UnstableSystemError, match=r"3 eigenvalue\(s\)") as info:
        gramian(system, "o")
    for eigenvalue in ("2", "3", "4"):
        assert eigenvalue in str(info.value)


def test_sb03md_convergent_variant():
    """A/5 (eigenvalues 0.4, 0.6, 0.8) with the SB03MD right-hand side: A^T X A - X = -C.

    C is positive definite, C = C_o^T C_o, so X is our observability Gramian of (A/5, C_o).
    Checked against the series sum_k (A^T)^k C A^k and scipy's solver.
    """
    A = SB03MD_A / 5
    C_o = np.linalg.cholesky(SB03MD_C).T            # C = C_o^T C_o
    system = StateSpace(A, np.ones((3, 1)), C_o, dt=1.0)
    X = gramian(system, "o")
    series, term = np.zeros((3, 3)), SB03MD_C.copy()
    for _ in range(400):                            # 0.8^800 is far below rounding
        series += term
        term = A.T @ term @ A
    np.testing.assert_allclose(X, series, rtol=1e-12, atol=0)
    np.testing.assert_allclose(X, sla.solve_discrete_lyapunov(A.T, SB03MD_C), rtol=1e-12, atol=0)
    np.testing.assert_allclose(A.T @ X @ A - X, -SB03MD_C, rtol=0, atol=1e-12 * np.abs(X).max())
    # and the Cholesky-factor form (SB03OU-like): X = L L^T
    L = gramian(system, "o", factor=True)
    np.testing.assert_allclose(L @ L.T, X, rtol=0, atol=1e-12 * np.abs(X).max())
