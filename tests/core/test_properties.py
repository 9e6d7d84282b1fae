"""Property tests (hypothesis) of Gramians, Hankel singular values and balanced truncation.

Systems come from :mod:`tests.core.strategies`: continuous and discrete, real and complex,
dense and diagonal, m and p from 1 to n + 2, rank-deficient B and C (low rank, zero rows),
n from 1 to 8, stable with a margin. Each test draws its own systems; the run's total, and
the bound violations and non-finite results recorded before any assertion, are printed at
the end (``tests/conftest.py``).

Tolerances are stated relative to the data (``||P||``, ``s_1``, ``||G||``): every system
drawn is well conditioned by construction, so they are far above rounding and far below
any genuine error.
"""

import numpy as np
import pytest
import scipy.linalg as sla
from hypothesis import assume, example, given, strategies as st

from lti_reduce import (DiagonalStateSpace, StateSpace, balanced_truncation, gramian,
                        hankel_factors, hankel_singular_values)
from lti_reduce._array import to_numpy
from lti_reduce._norms import hinf_norm

from .strategies import (admissible_orders, batched_diagonal_systems, build_system, check_finite,
                         dense_matrices, error_system, record_bound, sample_points, stable_eigenvalues,
                         system_specs, systems, well_conditioned, COUNTS)

seeds = st.integers(0, 2 ** 32 - 1)


def hsv_scale(system):
    """sqrt(||P|| ||Q||) >= s_1: the scale of the HSVs' rounding errors (> 0 unless B = 0 or C = 0)."""
    P, Q = to_numpy(gramian(system, "c")), to_numpy(gramian(system, "o"))
    return max(float(np.sqrt(np.linalg.norm(P, 2) * np.linalg.norm(Q, 2))), 1e-300)


def hsv_of(system, **kwargs):
    s = to_numpy(hankel_singular_values(system, **kwargs))
    check_hsv(s, system.n)
    return s


def check_hsv(s, n):
    """HSVs: float64 (never complex), finite (never NaN), non-negative, descending, n of them."""
    check_finite(s)
    assert s.dtype == np.float64, s.dtype
    assert s.shape == (n,)
    assert np.all(s >= 0), s
    assert np.all(np.diff(s) <= 0), s


def transfer(system, points):
    return to_numpy(system.evaluate(points))


def gain_scale(system):
    """A scale of the transfer function: max over sample points of ||G||_2 (>= 1e-300)."""
    G = transfer(system, sample_points(system, 9, seed=1))
    return max(float(np.linalg.norm(G, 2, axis=(1, 2)).max()), 1e-300)


def check_reduced(result, kept_unstable=0):
    """The reduced system, projections and HSVs of a result are finite; returns numpy matrices.

    The first ``kept_unstable`` HSVs are inf by design (``unstable='keep'``).
    """
    A, B, C, D = dense_matrices(result.system)
    check_finite(A, B, C, D, to_numpy(result.V), to_numpy(result.W), to_numpy(result.hsv)[kept_unstable:])
    return A, B, C, D


# ======================================================================================
# Gramians
# ======================================================================================
@given(systems())
def test_lyapunov_residuals_are_small(system):
    """A P + P A^H + B B^H = 0 / A P A^H - P + B B^H = 0 (and Q), P = P^H >= 0, P = L L^H."""
    A, B, C, D = dense_matrices(system)
    for kind, X, Y in (("c", A, B), ("o", A.conj().T, C.conj().T)):
        P = to_numpy(gramian(system, kind))
        L = to_numpy(gramian(system, kind, factor=True))
        check_finite(P, L)
        assert P.shape == (system.n, system.n)
        if not system.is_complex:
            assert not np.iscomplexobj(P), "real system must give a real Gramian"
        norm_P, norm_X = np.linalg.norm(P, 2), np.linalg.norm(X, 2)
        YY = Y @ Y.conj().T
        if system.is_discrete:
            residual = X @ P @ X.conj().T - P + YY
            scale = norm_X ** 2 * norm_P + norm_P + np.linalg.norm(YY, 2)
        else:
            residual = X @ P + P @ X.conj().T + YY
            scale = 2 * norm_X * norm_P + np.linalg.norm(YY, 2)
        assert np.linalg.norm(residual, 2) <= 1e-13 * scale, (kind, np.linalg.norm(residual, 2) / scale)
        np.testing.assert_allclose(P, P.conj().T, rtol=0, atol=1e-14 * norm_P)
        assert np.linalg.eigvalsh(P).min() >= -1e-13 * norm_P
        np.testing.assert_allclose(L @ L.conj().T, P, rtol=0, atol=1e-13 * norm_P)


@given(system_specs(discrete=True), st.integers(1, 40))
def test_finite_horizon_discrete_equals_explicit_sum(spec, horizon):
    """P_L = sum_{k<L} A^k B B^H (A^H)^k and Q_L = sum_{k<L} (A^H)^k C^H C A^k."""
    system = build_system(spec)
    COUNTS["systems"] += 1
    A, B, C, _ = dense_matrices(system)
    krylov, norms = {}, {}
    for kind, X, Y in (("c", A, B), ("o", A.conj().T, C.conj().T)):
        # sum_{k<L} X^k Y Y^H X^kH = K K^H with K = [Y, X Y, ..., X^{L-1} Y]
        blocks, term = [], Y.copy()
        for _ in range(horizon):
            blocks.append(term)
            term = X @ term
        K = np.hstack(blocks)
        expected = K @ K.conj().T
        P_L = to_numpy(gramian(system, kind, horizon=horizon))
        P_inf = to_numpy(gramian(system, kind))
        check_finite(P_L)
        # P_L = P - A^L P A^LH cancels against ||P||, hence the scale ||P_inf||
        scale = np.linalg.norm(P_inf, 2) + np.linalg.norm(expected, 2)
        np.testing.assert_allclose(P_L, expected, rtol=0, atol=1e-12 * scale)
        krylov[kind] = K
        norms[kind] = np.linalg.norm(P_inf, 2)
    # finite-horizon HSVs: singular values of Ko^H Kc (exact factors of the sums). The
    # library factors the formed P_L = P - A^L P A^LH, whose rounding error eps ||P|| enters
    # the small HSVs as sqrt(eps ||P|| ||Q||): the tolerance has that term.
    s_L = hsv_of(system, horizon=horizon)
    expected_s = np.zeros(system.n)
    sv = np.linalg.svd(krylov["o"].conj().T @ krylov["c"], compute_uv=False)[:system.n]
    expected_s[:sv.size] = sv
    scale = np.linalg.norm(krylov["c"], 2) * np.linalg.norm(krylov["o"], 2)
    atol = 1e-9 * scale + 1e-7 * np.sqrt(norms["c"] * norms["o"])
    np.testing.assert_allclose(s_L, expected_s, rtol=0, atol=atol)


@given(system_specs(discrete=True, n_max=5), st.integers(1, 12), st.floats(1.05, 1.4))
def test_finite_horizon_discrete_unstable_equals_explicit_sum(spec, horizon, radius):
    """A finite horizon needs no stability in discrete time: the explicit sum again."""
    system = build_system(spec)
    COUNTS["systems"] += 1
    A, B, C, D = dense_matrices(system)
    # scale A so that its spectral radius is `radius` > 1
    A = A * (radius / max(np.abs(np.linalg.eigvals(A)).max(), 1e-3))
    lam = np.linalg.eigvals(A)
    # the Stein equation behind P - A^L P A^LH is solvable: no l_i conj(l_j) near 1
    assume(np.abs(np.multiply.outer(lam, lam.conj()) - 1).min() > 1e-2)
    unstable = StateSpace(A, B, C, D, dt=system.dt)
    for kind, X, Y in (("c", A, B), ("o", A.conj().T, C.conj().T)):
        expected = np.zeros((system.n, system.n), dtype=np.result_type(X, Y))
        term = Y.copy()
        for _ in range(horizon):
            expected = expected + term @ term.conj().T
            term = X @ term
        P_L = to_numpy(gramian(unstable, kind, horizon=horizon))
        check_finite(P_L)
        np.testing.assert_allclose(P_L, expected, rtol=0, atol=1e-9 * np.linalg.norm(expected, 2))


def van_loan_gramian(A, Y, T):
    """int_0^T e^{At} Y Y^H e^{A^H t} dt: Van Loan's block exponential, then doubling.

    Van Loan (1978): ``expm([[-A, Y Y^H], [0, A^H]] h) = [[F11, F12], [0, F22]]`` gives
    ``P_h = F22^H F12``. It involves ``e^{-Ah}``, so it is only accurate for a short ``h``:
    take ``h = T / 2^k <= 0.05`` and double, ``P_{2h} = P_h + e^{Ah} P_h e^{A^H h}`` (a sum
    of positive semidefinite terms, no cancellation). Independent of the library's
    ``P - e^{AT} P e^{A^H T}``.
    """
    n = A.shape[0]
    k = max(0, int(np.ceil(np.log2(T / 0.05))))
    h = T / 2 ** k
    F = sla.expm(np.block([[-A, Y @ Y.conj().T], [np.zeros((n, n)), A.conj().T]]) * h)
    P = F[n:, n:].conj().T @ F[:n, n:]
    E = F[n:, n:].conj().T          # e^{A h}
    for _ in range(k):
        P = P + E @ P @ E.conj().T
        E = E @ E
    return P


@given(system_specs(discrete=False), st.floats(0.01, 8.0))
def test_finite_horizon_continuous_equals_van_loan(spec, horizon):
    """P_T = int_0^T e^{At} B B^H e^{A^H t} dt, checked with a Van Loan block exponential."""
    system = build_system(spec)
    COUNTS["systems"] += 1
    A, B, C, _ = dense_matrices(system)
    for kind, X, Y in (("c", A, B), ("o", A.conj().T, C.conj().T)):
        expected = van_loan_gramian(X, Y, horizon)
        expected = (expected + expected.conj().T) / 2
        P_T = to_numpy(gramian(system, kind, horizon=horizon))
        P_inf = to_numpy(gramian(system, kind))
        check_finite(P_T)
        scale = np.linalg.norm(P_inf, 2)
        np.testing.assert_allclose(P_T, expected, rtol=0, atol=1e-10 * scale)


@given(system_specs(discrete=False, n_max=5), st.floats(0.05, 2.0), st.floats(0.1, 1.5))
def test_finite_horizon_continuous_unstable_equals_van_loan(spec, shift, horizon):
    """int_0^T e^{At} B B^H e^{A^H t} dt exists for any A: an unstable system with a finite
    horizon has the same Gramian on the dense and the diagonal path (and Van Loan's)."""
    system = build_system(spec)
    COUNTS["systems"] += 1
    A, B, C, D = dense_matrices(system)
    # move the spectrum right so that the rightmost eigenvalue has real part `shift` > 0
    lam = np.linalg.eigvals(A)
    move = shift - lam.real.max()
    lam = lam + move
    # P - e^{AT} P e^{A^H T} needs the Lyapunov equation to be solvable: l_i + conj(l_j) != 0
    assume(np.abs(np.add.outer(lam, lam.conj())).min() > 1e-2)
    unstable = StateSpace(A + move * np.eye(system.n), B, C, D)
    expected = van_loan_gramian(unstable.A, unstable.B, horizon)
    P_T = to_numpy(gramian(unstable, "c", horizon=horizon))
    check_finite(P_T)
    np.testing.assert_allclose(P_T, expected, rtol=0, atol=1e-10 * np.linalg.norm(expected, 2))
    if isinstance(system, DiagonalStateSpace):
        diagonal = DiagonalStateSpace(to_numpy(system.eigenvalues) + move, B, C, D)
        P_diag = to_numpy(gramian(diagonal, "c", horizon=horizon))
        np.testing.assert_allclose(P_diag, expected, rtol=0, atol=1e-10 * np.linalg.norm(expected, 2))


# ======================================================================================
# Hankel singular values
# ======================================================================================
@given(systems(), seeds, st.booleans())
def test_hsv_invariant_under_similarity(system, seed, complex_transform):
    """HSVs of (T^-1 A T, T^-1 B, C T) equal those of (A, B, C), T random (cond <= 10)."""
    s = hsv_of(system)
    A, B, C, D = dense_matrices(system)
    rng = np.random.default_rng(seed)
    T, T_inv = well_conditioned(rng, system.n, system.is_complex or complex_transform, cond=10.0)
    transformed = StateSpace(T_inv @ A @ T, T_inv @ B, C @ T, D, dt=system.dt)
    s2 = hsv_of(transformed)
    np.testing.assert_allclose(s2, s, rtol=0, atol=1e-10 * hsv_scale(system))


def tustin(A, B, C, D, a, to_discrete):
    """Bilinear map ``s = a (z - 1) / (z + 1)``, scaled so that the Gramians are preserved.

    Continuous -> discrete: ``Ad = (aI + A)(aI - A)^-1``, ``Bd = sqrt(2a) (aI - A)^-1 B``,
    ``Cd = sqrt(2a) C (aI - A)^-1``, ``Dd = D + C (aI - A)^-1 B``; and its inverse.
    """
    eye = np.eye(A.shape[0])
    if to_discrete:
        M = np.linalg.inv(a * eye - A)
        return (a * eye + A) @ M, np.sqrt(2 * a) * M @ B, np.sqrt(2 * a) * C @ M, D + C @ M @ B
    M = np.linalg.inv(A + eye)
    return a * (A - eye) @ M, np.sqrt(2 * a) * M @ B, np.sqrt(2 * a) * C @ M, D - C @ M @ B


@given(systems(), st.floats(0.2, 5.0))
def test_hsv_invariant_under_bilinear_map(system, a):
    """HSVs are invariant under the Tustin map between continuous and discrete time."""
    s = hsv_of(system)
    A, B, C, D = dense_matrices(system)
    Ad, Bd, Cd, Dd = tustin(A, B, C, D, a, to_discrete=not system.is_discrete)
    mapped = StateSpace(Ad, Bd, Cd, Dd, dt=0.0 if system.is_discrete else 1.0)
    assert mapped.is_stable()
    s2 = hsv_of(mapped)
    np.testing.assert_allclose(s2, s, rtol=0, atol=1e-10 * hsv_scale(system))
    # the map is exact on the transfer function too (a check of the map itself):
    # G_discrete(z) = G_continuous(a (z - 1) / (z + 1))
    z = np.array([1j, 0.6 - 0.8j, 1.0, 2.0 + 0.5j])
    s_of_z = a * (z - 1) / (z + 1)
    if system.is_discrete:
        continuous, discrete = mapped, system
    else:
        continuous, discrete = system, mapped
    np.testing.assert_allclose(transfer(discrete, z), transfer(continuous, s_of_z),
                               rtol=0, atol=1e-9 * gain_scale(system))


@given(system_specs(), seeds, st.sampled_from(["uncontrollable", "unobservable", "both"]))
def test_nonminimal_directions_give_exact_zero_hsv(spec, seed, which):
    """Appending an uncontrollable and/or unobservable mode adds an exact-zero HSV."""
    system = build_system(spec)
    COUNTS["systems"] += 1
    s = hsv_of(system)
    rng = np.random.default_rng(seed)
    A, B, C, D = dense_matrices(system)
    n, m, p = system.n, system.m, system.p
    lam = stable_eigenvalues(rng, 1, system.is_discrete, system.is_complex)[0]
    lam = lam if system.is_complex else lam.real
    b = rng.standard_normal((1, m)) * (which == "unobservable")
    c = rng.standard_normal((p, 1)) * (which == "uncontrollable")
    dtype = np.result_type(A, lam)
    if isinstance(system, DiagonalStateSpace):
        augmented = DiagonalStateSpace(np.append(to_numpy(system.eigenvalues), lam),
                                       np.vstack([B, b]), np.hstack([C, c]), D, dt=system.dt)
    else:
        A2 = np.zeros((n + 1, n + 1), dtype=dtype)
        A2[:n, :n], A2[n, n] = A, lam
        if which != "both":  # couple the extra mode one way; it stays non-minimal
            if which == "uncontrollable":
                A2[:n, n] = rng.standard_normal(n)          # it drives the states, nothing drives it
            else:
                A2[n, :n] = rng.standard_normal(n)          # driven by the states, seen by nobody
        augmented = StateSpace(A2, np.vstack([B, b]), np.hstack([C, c]), D, dt=system.dt)
    s2 = hsv_of(augmented)
    assert s2[-1] == 0.0, f"non-minimal direction gave HSV {s2[-1]!r} instead of an exact zero"
    # a non-minimal mode does not change the transfer function, hence the other HSVs
    np.testing.assert_allclose(s2[:-1], s, rtol=0, atol=1e-10 * hsv_scale(system))


# A 7-state SISO-input system whose controllability Gramian has eigenvalues down to
# 1.4e-15 * ||P|| while its 7th HSV is 2.7e-9 * s_1: found by test_spa_keeps_dc_gain when a
# factor was taken from the formed Gramian (s_7 came out as 0, s_6 1e-7 wrong, and SPA lost
# G(0) at 3e-9). Reference HSVs from a 60-digit computation (mpmath).
WEAK_LAMBDA = np.array([-1.55987379, -2.8538679, -0.47527086, -2.84851587, -0.96990278, -1.29881302, -2.49172265])
WEAK_B = np.array([[0.5811181], [0.3645724], [0.2941325], [0.02842224], [0.54671299], [-0.73645409], [-0.16290995]])
WEAK_C = np.array([[-0.48211931, -0.29245675, 0.00814218, 1.00672432, -0.17477209, 0.21732193, -0.37760501],
                   [0.59884621, -0.78190846, -0.27560291, -2.71116248, -0.42219041, 2.11783876, 2.04277161],
                   [0.03972211, -0.25719224, 1.29406381, -1.88901325, 0.213643, -1.11202076, 0.646703]])
WEAK_HSV = np.array([1.0705341791138532, 0.14131093553141116, 0.013466105535512661, 0.0010963109587715382,
                     0.00010969304899870467, 9.016439514957306e-06, 2.9384942130013212e-09])


@pytest.mark.parametrize("dense", [False, True], ids=["diagonal", "dense"])
def test_small_hsvs_accurate_when_a_gramian_is_nearly_singular(dense):
    system = DiagonalStateSpace(WEAK_LAMBDA, WEAK_B, WEAK_C)
    system = system.to_dense() if dense else system
    s = hsv_of(system)
    np.testing.assert_allclose(s, WEAK_HSV, rtol=1e-8, atol=0)
    dc = to_numpy(system.dc_gain())
    for r in range(7):
        result = balanced_truncation(system, r, match="dc")
        np.testing.assert_allclose(to_numpy(result.system.dc_gain()), dc, rtol=0,
                                   atol=1e-10 * np.linalg.norm(dc, 2))
        assert result.error_bound == pytest.approx(2 * WEAK_HSV[r:].sum(), rel=1e-8)


@given(system_specs(n_min=2), seeds)
@example(spec=dict(discrete=False, complex=True, diagonal=False, n=4, m=1, p=1, b_structure="full",
                   c_structure="full", n_pairs=0, jordan=False, feedthrough=False, dt=0.0, seed=0), seed=1)
def test_zero_transfer_function_gives_all_zero_hsvs(spec, seed):
    """G = 0 (states reached by the input never seen by the output): every HSV is 0 (exactly for
    diagonal A; at the rounding level for a dense A whose Schur basis mixes the blocks).

    Diagonal A (or block-diagonal A) with B supported on some states and C on the others:
    P Q = 0 exactly, every direction is non-minimal.
    """
    system = build_system(spec)
    COUNTS["systems"] += 1
    rng = np.random.default_rng(seed)
    n = system.n
    k = int(rng.integers(1, n))
    A, B, C, D = dense_matrices(system)
    B, C = B.copy(), C.copy()
    B[k:] = 0           # only the first k states are driven ...
    C[:, :k] = 0        # ... and only the other ones are seen
    if isinstance(system, DiagonalStateSpace):
        perm = rng.permutation(n)      # interleave driven and seen states
        zero = DiagonalStateSpace(to_numpy(system.eigenvalues)[perm], B[perm], C[:, perm], D, dt=system.dt)
    else:
        # block-diagonal A = diag(S1 L1 S1^-1, S2 L2 S2^-1), each block stable and non-normal
        cplx = system.is_complex
        A = np.zeros((n, n), dtype=complex if cplx else float)
        for block in (slice(0, k), slice(k, n)):
            size = block.stop - block.start
            lam = stable_eigenvalues(rng, size, system.is_discrete, cplx)
            S, S_inv = well_conditioned(rng, size, cplx)
            A[block, block] = S @ np.diag(lam if cplx else lam.real) @ S_inv
        perm = rng.permutation(n)      # interleave the two blocks (an exact similarity)
        zero = StateSpace(A[np.ix_(perm, perm)], B[perm], C[:, perm], D, dt=system.dt)
    G = transfer(zero, sample_points(zero, 5))
    assert np.all(G == D), "the test system does not have a constant transfer function"
    s = hsv_of(zero)
    result = balanced_truncation(zero, tol=0.0)
    if isinstance(zero, DiagonalStateSpace):
        # P Q = 0 in exact arithmetic and in the closed-form Gramians alike
        np.testing.assert_array_equal(s, np.zeros(n), err_msg="G = D but the HSVs are not exactly zero")
        assert result.order == 0 and result.error_bound == 0.0
    else:
        # the Schur basis mixes the two blocks, so the computed factors see each other at the
        # rounding level: HSVs at or below a few n eps ||Lc||_F ||Lo||_F (measured up to
        # 1.3x that on 6000 such systems; the zero level of the SVD keeps such HSVs rather
        # than risk zeroing meaningful ones, which would break the error bound)
        f = hankel_factors(zero)
        Lc, Lo = to_numpy(f.Lc), to_numpy(f.Lo)
        level = 4 * n * np.finfo(np.float64).eps * np.linalg.norm(Lc) * np.linalg.norm(Lo)
        assert np.all(s <= level), (s.max(), level)
        assert result.error_bound == 0.0 and result.order == int(np.count_nonzero(s))


# ======================================================================================
# Balanced truncation
# ======================================================================================
def _order_with_gap(data, system, s, gap):
    orders = admissible_orders(s, gap=gap, floor=1e-8 * hsv_scale(system))
    return data.draw(st.sampled_from(orders), label="order")


@given(systems(), st.data())
def test_balanced_projections_and_gramians(system, data):
    """W^H P W = V^H Q V = diag(s_1..s_r); in continuous time also the reduced Gramians."""
    s = hsv_of(system)
    scale = hsv_scale(system)
    assume(s[0] > 1e-8 * scale)     # not a zero transfer function (see the test below)
    orders = [r for r in admissible_orders(s, floor=1e-8 * scale) if r >= 1 and s[r - 1] >= 1e-5 * s[0]]
    r = data.draw(st.sampled_from(orders), label="order")
    result = balanced_truncation(system, r)
    check_reduced(result)
    assert result.order == r
    np.testing.assert_array_equal(to_numpy(result.hsv), s)
    P, Q = to_numpy(gramian(system, "c")), to_numpy(gramian(system, "o"))
    V, W = to_numpy(result.V), to_numpy(result.W)
    assert V.shape == W.shape == (system.n, r)
    expected = np.diag(s[:r])
    atol = 1e-9 * s[0]
    np.testing.assert_allclose(W.conj().T @ V, np.eye(r), rtol=0, atol=1e-9 * s[0] / s[r - 1])
    np.testing.assert_allclose(W.conj().T @ P @ W, expected, rtol=0, atol=atol)
    np.testing.assert_allclose(V.conj().T @ Q @ V, expected, rtol=0, atol=atol)
    # the reduced matrices are the projections of the full ones
    A, B, C, D = dense_matrices(system)
    Ar, Br, Cr, Dr = dense_matrices(result.system)
    scale = np.linalg.norm(W, 2) * np.linalg.norm(V, 2)
    np.testing.assert_allclose(Ar, W.conj().T @ A @ V, rtol=0, atol=1e-12 * scale * np.linalg.norm(A, 2))
    np.testing.assert_allclose(Br, W.conj().T @ B, rtol=0, atol=1e-12 * scale * np.linalg.norm(B, 2))
    np.testing.assert_allclose(Cr, C @ V, rtol=0, atol=1e-12 * scale * np.linalg.norm(C, 2))
    np.testing.assert_array_equal(Dr, D)
    if not system.is_discrete:
        # continuous BT preserves balancing; discrete truncation does not (not asserted there)
        Pr, Qr = to_numpy(gramian(result.system, "c")), to_numpy(gramian(result.system, "o"))
        np.testing.assert_allclose(Pr, expected, rtol=0, atol=1e-8 * s[0])
        np.testing.assert_allclose(Qr, expected, rtol=0, atol=1e-8 * s[0])


@given(systems(), st.data())
def test_finite_horizon_balanced_truncation(system, data):
    """With a horizon: the HSVs are those of the finite-horizon Gramians, the projections balance
    them (W^H P_L W = V^H Q_L V = diag(s)), and there is no a-priori error bound."""
    horizon = data.draw(st.integers(1, 30) if system.is_discrete else st.floats(0.05, 10.0), label="horizon")
    s = hsv_of(system, horizon=horizon)
    P, Q = to_numpy(gramian(system, "c", horizon=horizon)), to_numpy(gramian(system, "o", horizon=horizon))
    scale = max(float(np.sqrt(np.linalg.norm(P, 2) * np.linalg.norm(Q, 2))), 1e-300)
    orders = [r for r in admissible_orders(s, floor=1e-6 * scale) if r >= 1 and s[r - 1] >= 1e-4 * s[0]]
    assume(orders)
    r = data.draw(st.sampled_from(orders), label="order")
    result = balanced_truncation(system, r, horizon=horizon)
    check_reduced(result)
    assert result.error_bound is None
    np.testing.assert_allclose(to_numpy(result.hsv), s, rtol=0, atol=1e-12 * scale)
    V, W = to_numpy(result.V), to_numpy(result.W)
    np.testing.assert_allclose(W.conj().T @ P @ W, np.diag(s[:r]), rtol=0, atol=1e-8 * s[0])
    np.testing.assert_allclose(V.conj().T @ Q @ V, np.diag(s[:r]), rtol=0, atol=1e-8 * s[0])


@given(systems(), st.data(), st.sampled_from(["truncate", "dc"]))
def test_error_bounds_hold(system, data, match):
    """s_{r+1} <= ||G - G_r||_inf <= 2 sum_{i>r} s_i (BT and SPA), with hinf_norm."""
    s = hsv_of(system)
    scale = hsv_scale(system)
    r = data.draw(st.sampled_from(admissible_orders(s, floor=1e-8 * scale)), label="order")
    result = balanced_truncation(system, r, match=match)
    check_reduced(result)
    assert result.order == r and result.system.n == r
    assert result.system.dt == system.dt
    assert result.system.is_complex == system.is_complex, "a real system must reduce to a real one"
    bound = 2.0 * s[r:].sum()
    assert result.error_bound == pytest.approx(bound, rel=1e-12, abs=1e-300)
    error = hinf_norm(error_system(system, result.system)).norm
    check_finite(np.array(error))
    atol = 1e-9 * (scale + hinf_norm(system).norm)
    lower = s[r] if r < system.n else 0.0
    record_bound(error <= bound * (1 + 1e-9) + atol,
                 f"||G - G_r|| = {error!r} > 2 sum tail = {bound!r} (r={r}, match={match}, hsv={s})")
    record_bound(error >= lower * (1 - 1e-9) - atol,
                 f"||G - G_r|| = {error!r} < s_(r+1) = {lower!r} (r={r}, match={match}, hsv={s})")


@given(systems(), st.data(), st.sampled_from(["truncate", "dc"]), st.sampled_from(["sr", "bfsr"]))
def test_reduced_system_is_stable_when_gap(system, data, match, method):
    """s_r > s_{r+1} (a relative gap of 1e-3) gives a stable reduced system."""
    s = hsv_of(system)
    r = _order_with_gap(data, system, s, gap=1e-3)
    assume(r >= 1)
    result = balanced_truncation(system, r, match=match, method=method)
    Ar, _, _, _ = check_reduced(result)
    poles = np.linalg.eigvals(Ar)
    if system.is_discrete:
        assert np.abs(poles).max() < 1, (poles, s, r)
    else:
        assert poles.real.max() < 0, (poles, s, r)
    assert result.system.is_stable()


@given(system_specs(n_min=2, n_max=6), st.data(), st.sampled_from(["truncate", "dc"]))
def test_unstable_part_kept_whole(spec, data, match):
    """unstable='keep': the eigenvalues outside the alpha region are poles of G_r, their HSVs are
    inf and listed first, and ||G - G_r|| <= 2 sum of the truncated (finite) HSVs on a grid."""
    system = build_system(spec)
    COUNTS["systems"] += 1
    A, B, C, D = dense_matrices(system)
    lam = np.linalg.eigvals(A)
    # alpha between two eigenvalues: those beyond it are kept whole
    if system.is_discrete:
        key = np.sort(np.abs(lam))
    else:
        key = np.sort(lam.real)
    cut = data.draw(st.integers(1, system.n - 1), label="cut")
    assume(key[cut] - key[cut - 1] > 0.05)
    alpha = float((key[cut] + key[cut - 1]) / 2)
    outside = lam[np.abs(lam) >= alpha] if system.is_discrete else lam[lam.real >= alpha]
    n_u = outside.size
    hsv_probe = balanced_truncation(system, n_u, alpha=alpha, unstable="keep", match=match)
    hsv = np.asarray(to_numpy(hsv_probe.hsv))
    assert hsv.shape == (system.n,)
    assert np.all(np.isinf(hsv[:n_u])) and np.all(np.isfinite(hsv[n_u:])), hsv
    finite = hsv[n_u:]
    scale = max(float(finite[0]) if finite.size else 0.0, 1e-300)
    orders = [n_u + r for r in admissible_orders(finite, floor=1e-8 * scale)]
    r = data.draw(st.sampled_from(orders), label="order")
    result = balanced_truncation(system, r, alpha=alpha, unstable="keep", match=match)
    Ar, _, _, _ = check_reduced(result, kept_unstable=n_u)
    assert result.order == r and Ar.shape == (r, r)
    poles = np.linalg.eigvals(Ar)
    for p in outside:
        assert np.min(np.abs(poles - p)) <= 1e-8 * max(1.0, abs(p)), (p, poles)
    bound = 2.0 * finite[r - n_u:].sum()
    assert result.error_bound == pytest.approx(bound, rel=1e-12, abs=1e-300)
    # the error is stable in exact arithmetic but its realisation is not: sample it on a grid
    if system.is_discrete:
        grid = np.exp(1j * np.linspace(-np.pi, np.pi, 181))
    else:
        w = np.concatenate([-np.logspace(-2, 2, 90)[::-1], [0.0], np.logspace(-2, 2, 90)])
        grid = 1j * w
    errors = np.linalg.norm(transfer(system, grid) - transfer(result.system, grid), 2, axis=(1, 2))
    gain = np.linalg.norm(transfer(system, grid), 2, axis=(1, 2)).max()
    record_bound(errors.max() <= bound * (1 + 1e-8) + 1e-9 * gain,
                 f"max_grid ||G - G_r|| = {errors.max()!r} > 2 sum tail = {bound!r} (r={r}, kept {n_u})")
    if match == "dc":
        point = [1.0] if system.is_discrete else [0.0]
        np.testing.assert_allclose(transfer(result.system, point), transfer(system, point),
                                   rtol=0, atol=1e-10 * max(np.abs(transfer(system, point)).max(), 1e-300))


@given(systems(), st.data())
def test_spa_keeps_dc_gain(system, data):
    """match='dc' keeps G(0) (continuous) or G(1) (discrete) to 1e-10 relative."""
    s = hsv_of(system)
    r = data.draw(st.sampled_from(admissible_orders(s, floor=1e-8 * hsv_scale(system))), label="order")
    result = balanced_truncation(system, r, match="dc")
    check_reduced(result)
    dc, dc_r = to_numpy(system.dc_gain()), to_numpy(result.system.dc_gain())
    check_finite(dc_r)
    point = 1.0 if system.is_discrete else 0.0
    np.testing.assert_allclose(dc, transfer(system, [point])[0], rtol=1e-13, atol=0)
    np.testing.assert_allclose(dc_r, dc, rtol=0, atol=1e-10 * max(np.linalg.norm(dc, 2), 1e-300))


@given(systems(diagonal=True), st.data(), st.sampled_from(["truncate", "dc"]))
def test_diagonal_path_equals_dense_path(system, data, match):
    """HSVs and the reduced transfer function agree between a DiagonalStateSpace and to_dense()."""
    dense = system.to_dense()
    s, s_dense = hsv_of(system), hsv_of(dense)
    np.testing.assert_allclose(s, s_dense, rtol=0, atol=1e-10 * hsv_scale(system))
    r = _order_with_gap(data, system, s_dense, gap=1e-4)
    result = balanced_truncation(system, r, match=match)
    result_dense = balanced_truncation(dense, r, match=match)
    check_reduced(result)
    assert result.order == result_dense.order == r
    assert result.error_bound == pytest.approx(result_dense.error_bound, rel=1e-9, abs=1e-10 * s[0])
    points = sample_points(system, 7)
    np.testing.assert_allclose(transfer(result.system, points), transfer(result_dense.system, points),
                               rtol=0, atol=1e-9 * gain_scale(system))


@given(systems(), st.data(), st.sampled_from(["truncate", "dc"]))
def test_bfsr_equals_sr(system, data, match):
    """The balancing-free square-root method gives the same transfer function as 'sr'."""
    s = hsv_of(system)
    r = _order_with_gap(data, system, s, gap=1e-4)
    sr = balanced_truncation(system, r, method="sr", match=match)
    bf = balanced_truncation(system, r, method="bfsr", match=match)
    check_reduced(bf)
    assert bf.method == "bfsr" and sr.method == "sr"
    assert bf.order == sr.order == r
    assert bf.error_bound == sr.error_bound
    V, W = to_numpy(bf.V), to_numpy(bf.W)
    np.testing.assert_allclose(W.conj().T @ V, np.eye(r), rtol=0, atol=1e-10)
    points = sample_points(system, 7)
    np.testing.assert_allclose(transfer(bf.system, points), transfer(sr.system, points),
                               rtol=0, atol=1e-9 * gain_scale(system))


# ======================================================================================
# Order selection
# ======================================================================================
def _splits(s, r):
    return 0 < r < s.size and s[r - 1] - s[r] <= 1e-10 * s[0]


@given(systems(), st.floats(1e-6, 1 - 1e-6))
def test_energy_order_is_smallest_satisfying_definition(system, tau):
    """energy=tau: the smallest r with sum_{i<=r} s_i >= (1 - tau) sum_i s_i."""
    s = hsv_of(system)
    result = balanced_truncation(system, energy=tau)
    check_reduced(result)
    r = result.order
    cumulative = np.concatenate([[0.0], np.cumsum(s)])
    total = s.sum()
    assert cumulative[r] >= (1 - tau) * total * (1 - 1e-13), (r, tau, s)
    if r > 0:
        # r - 1 fails the criterion, unless r was moved up to the end of a group of equal HSVs
        assert cumulative[r - 1] < (1 - tau) * total * (1 + 1e-13) or _splits(s, r - 1), (r, tau, s)
    assert result.system.n == r
    assert result.error_bound == pytest.approx(2 * s[r:].sum(), rel=1e-12, abs=1e-300)


@given(systems(), st.floats(0.0, 1.2))
def test_tol_order_is_smallest_within_budget(system, fraction):
    """tol: the smallest r with 2 sum_{i>r} s_i <= tol; the result's error bound is within it."""
    s = hsv_of(system)
    tol = fraction * 2.0 * s.sum()
    result = balanced_truncation(system, tol=tol)
    check_reduced(result)
    r = result.order
    tail = 2.0 * np.array([s[k:].sum() for k in range(s.size + 1)])
    assert tail[r] <= tol * (1 + 1e-12) + 1e-300, (r, tol, s)
    assert result.error_bound <= tol * (1 + 1e-12) + 1e-300
    if r > 0:
        assert tail[r - 1] > tol * (1 - 1e-12) or _splits(s, r - 1) or s[r - 1] == 0, (r, tol, s)


# ======================================================================================
# batches of diagonal systems
# ======================================================================================
@given(batched_diagonal_systems(), st.data())
def test_batched_diagonal_equals_elementwise(system, data):
    """A batch is reduced element by element with per-element orders; each equals its own run."""
    hsv = to_numpy(hankel_singular_values(system))
    assert hsv.shape == system.batch_shape + (system.n,)
    count = int(np.prod(system.batch_shape))
    flat = DiagonalStateSpace(*(to_numpy(a).reshape((count,) + a.shape[len(system.batch_shape):])
                                for a in (system.eigenvalues, system.B, system.C, system.D)), dt=system.dt)
    orders = [data.draw(st.sampled_from(admissible_orders(to_numpy(hankel_singular_values(flat[i])),
                                                          gap=1e-4)), label=f"order{i}")
              for i in range(count)]
    results = balanced_truncation(system, orders)
    assert isinstance(results, tuple) and len(results) == count
    for i, result in enumerate(results):
        single = balanced_truncation(flat[i], orders[i])
        s_i = hsv_of(flat[i])
        np.testing.assert_allclose(to_numpy(result.hsv), s_i, rtol=0, atol=1e-12 * max(s_i[0], 1e-300))
        np.testing.assert_allclose(hsv.reshape(count, -1)[i], s_i, rtol=0, atol=1e-12 * max(s_i[0], 1e-300))
        assert result.order == orders[i]
        points = sample_points(flat[i], 5)
        np.testing.assert_allclose(transfer(result.system, points), transfer(single.system, points),
                                   rtol=0, atol=1e-10 * gain_scale(flat[i]))
