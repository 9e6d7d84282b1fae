"""Hammarling's method in real arithmetic on the real Schur form (``lti_reduce._real_schur_factor``,
compiled in ``lti_reduce/_real_hammarling.c``).

Checked: the identities that define the factor triple (``U U^T = X``, ``U Ahat = S U``,
``U Bhat = M``, ``Ahat + Ahat^T + Bhat Bhat^T = 0``) on quasi-triangular matrices with every
mix of 1x1 and 2x2 blocks; the Cayley solve; Lyapunov and Stein residuals of the factors of
real systems in the original basis; agreement with the complex route and with SLICOT; zero,
tiny and huge inputs; which route a system takes.
"""

import numpy as np
import pytest

import lti_reduce as lr
from lti_reduce import _blocked_factor, _gramians, _real_schur_factor

EPS = np.finfo(float).eps

pytestmark = pytest.mark.skipif(_real_schur_factor.compiled is None,
                                reason="the compiled kernels (lti_reduce._hammarling_leaf) are not built here")


def quasi_triangular(rng, n, pattern, coupling=0.5, discrete=False):
    """Real upper quasi-triangular S (stable) with 2x2 blocks where ``pattern`` puts them:
    'real' (none), 'pairs' (as many as fit), 'mixed' (every other pair of rows)."""
    S = coupling * np.triu(rng.standard_normal((n, n)), 1) / max(1.0, np.sqrt(n))
    pair = np.zeros(n, dtype=np.int32)
    step = {"real": None, "pairs": 2, "mixed": 3}[pattern]
    i = 0
    while i < n:
        if step and i + 1 < n and i % step == 0:
            re = rng.uniform(-0.9, 0.9) if discrete else -rng.uniform(0.05, 2.0)
            b, c = rng.uniform(0.2, 2.0), -rng.uniform(0.2, 2.0)       # b c < 0: a complex pair
            scale = 0.9 / max(np.sqrt(re * re - b * c), 1.0) if discrete else 1.0
            S[i:i + 2, i:i + 2] = scale * np.array([[re, b], [c, re]])
            pair[i] = 1
            i += 2
        else:
            S[i, i] = rng.uniform(-0.95, 0.95) if discrete else -rng.uniform(0.05, 2.0)
            i += 1
    return S, pair


def check_triple(S, M, U, Ahat, Bhat, tol=200):
    n = S.shape[0]
    X = U @ U.T
    scale = 2 * np.linalg.norm(S) * np.linalg.norm(X) + np.linalg.norm(M) ** 2
    assert np.linalg.norm(S @ X + X @ S.T + M @ M.T) <= tol * max(n, 1) * EPS * scale
    assert np.all(np.tril(U, -1) == 0)
    assert np.all(np.diag(U) >= 0)
    size = np.linalg.norm(S) * np.linalg.norm(U) + np.linalg.norm(M)
    assert np.linalg.norm(U @ Ahat - S @ U) <= tol * max(n, 1) * EPS * size
    assert np.linalg.norm(U @ Bhat - M) <= tol * max(n, 1) * EPS * size
    assert np.linalg.norm(Ahat + Ahat.T + Bhat @ Bhat.T) <= tol * max(n, 1) * EPS * np.linalg.norm(S)
    # Ahat keeps the block pattern of S (zero below it)
    assert np.all(np.tril(Ahat, -2) == 0)


@pytest.mark.parametrize("pattern", ["real", "pairs", "mixed"])
@pytest.mark.parametrize("n, m", [(1, 1), (2, 1), (2, 3), (3, 1), (7, 2), (20, 1), (33, 5), (80, 3)])
def test_triple_identities(n, m, pattern):
    """U, Ahat, Bhat satisfy the four identities (residuals of order n eps)."""
    rng = np.random.default_rng([n, m, len(pattern)])
    S, pair = quasi_triangular(rng, n, pattern)
    M = rng.standard_normal((n, m))
    U, Ahat, Bhat, real = _real_schur_factor.triple(S, pair, M)
    assert real
    check_triple(S, M, U, Ahat, Bhat)


@pytest.mark.parametrize("pattern", ["pairs", "mixed"])
def test_zero_and_tiny_input_rows(pattern):
    """An input that vanishes on some blocks (uncontrollable modes) gives zero rows of U and
    finite Ahat, Bhat that keep the identities; a tiny input scales U exactly (no underflow)."""
    rng = np.random.default_rng(3)
    n = 12
    S, pair = quasi_triangular(rng, n, pattern, coupling=0.0)      # block diagonal: blocks decouple
    M = rng.standard_normal((n, 2))
    last = n - 2 if pair[n - 2] else n - 1      # the last block's first row
    M[:2] = 0.0                     # the first block (a 2x2 pair) gets no input at all
    M[last:] = 0.0                  # nor the last one
    U, Ahat, Bhat, real = _real_schur_factor.triple(S, pair, M)
    assert real
    assert np.all(np.isfinite(U)) and np.all(np.isfinite(Ahat)) and np.all(np.isfinite(Bhat))
    assert np.all(U[:2] == 0) and np.all(U[last:] == 0)
    check_triple(S, M, U, Ahat, Bhat)
    # a power of two scales every operation exactly (no product of two scaled numbers is formed,
    # norms are taken of rows divided by their largest entry): U scales bit for bit
    for scale in (2.0 ** -660, 2.0 ** 500):
        assert np.array_equal(_real_schur_factor.triple(S, pair, scale * M)[0], scale * U)
    U_zero, Ahat_zero, Bhat_zero, _ = _real_schur_factor.triple(S, pair, np.zeros((n, 2)))
    assert np.all(U_zero == 0)
    assert np.linalg.norm(Ahat_zero + Ahat_zero.T + Bhat_zero @ Bhat_zero.T) <= 100 * n * EPS * np.linalg.norm(S)


@pytest.mark.parametrize("pattern", ["real", "pairs", "mixed"])
@pytest.mark.parametrize("width", [1, 4])
def test_quasi_solve(pattern, width):
    """``(S + I)^-1 X`` of a quasi-triangular S, in place: residual of order eps, and exact
    zeros below the block pattern when X is S - I (the Cayley transform keeps the pattern)."""
    rng = np.random.default_rng([width, len(pattern)])
    n = 25
    S, pair = quasi_triangular(rng, n, pattern, discrete=True)
    X = rng.standard_normal((n, width))
    Y = X.copy()
    _real_schur_factor._quasi_solve(S, pair, Y)
    assert np.linalg.norm((S + np.eye(n)) @ Y - X) <= 100 * n * EPS * np.linalg.norm(X)
    cayley = np.ascontiguousarray(S - np.eye(n))
    _real_schur_factor._quasi_solve(S, pair, cayley)
    outside = np.tril(np.ones((n, n), dtype=bool), -1)
    outside[np.flatnonzero(pair) + 1, np.flatnonzero(pair)] = False
    assert np.all(cayley[outside] == 0)


def random_real_system(rng, n, m, p, discrete):
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    radius = np.max(np.abs(np.linalg.eigvals(A)))
    A = A / (1.2 * radius) if discrete else A - (radius + 0.1) * np.eye(n)
    return A, rng.standard_normal((n, m)), rng.standard_normal((p, n))


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("n, m, p", [(1, 1, 1), (2, 1, 2), (5, 3, 1), (40, 2, 3), (64, 70, 1)])
def test_factors_solve_the_gramian_equations(n, m, p, discrete):
    """``P = Lc Lc^T``, ``Q = Lo Lo^T`` solve the Lyapunov (Stein) equations in the original
    basis, and equal the complex route's Gramians (more inputs than states included)."""
    rng = np.random.default_rng([n, m, p, int(discrete)])
    A, B, C = random_real_system(rng, n, m, p, discrete)
    form = _real_schur_factor.real_schur(A)
    assert np.allclose(form.Z @ form.S @ form.Z.T, A, rtol=0, atol=100 * n * EPS * np.linalg.norm(A))
    assert np.all(np.tril(form.S, -2) == 0)
    Lc, Lo = _real_schur_factor.real_gramian_factors(form, B, C, discrete)
    assert Lc.dtype == Lo.dtype == np.float64
    for L, X, Y in ((Lc, A, B), (Lo, A.T, C.T)):
        P = L @ L.T
        R = X @ P @ X.T - P + Y @ Y.T if discrete else X @ P + P @ X.T + Y @ Y.T
        scale = (np.linalg.norm(X) ** 2 + 1) * np.linalg.norm(P) + np.linalg.norm(Y) ** 2
        assert np.linalg.norm(R) <= 100 * n * EPS * scale
    complex_c, complex_o = _blocked_factor.schur_gramian_factors(_blocked_factor.fast_complex_schur(A), B, C,
                                                                 discrete)
    for L, K in ((Lc, complex_c), (Lo, complex_o)):
        P, P_ref = L @ L.T, K @ K.conj().T
        assert np.linalg.norm(P - P_ref) <= 1e-12 * np.linalg.norm(P_ref)
    only_o = _real_schur_factor.real_gramian_factors(form, B, C, discrete, kinds=("o",))
    assert len(only_o) == 1 and np.array_equal(only_o[0], Lo)


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("n, m", [(3, 1), (50, 1), (50, 16), (120, 4)])
def test_hsvs_agree_with_slicot_and_the_complex_route(n, m, discrete):
    """HSVs within 1e-10 of SLICOT's ``ab09ad`` (s_i >= 1e-6 s_1) and of the complex route's."""
    slycot = pytest.importorskip("slycot")
    rng = np.random.default_rng([n, m, int(discrete), 5])
    A, B, C = random_real_system(rng, n, m, m, discrete)
    system = lr.StateSpace(A, B, C, dt=1.0 if discrete else 0.0)
    ours = lr.hankel_singular_values(system)
    theirs = np.asarray(slycot.ab09ad("D" if discrete else "C", "B", "N", n, m, m, np.array(A, order="F"),
                                      np.array(B, order="F"), np.array(C, order="F"), nr=1)[4])
    large = theirs >= 1e-6 * theirs[0]
    assert np.max(np.abs(ours[:theirs.size][large] - theirs[large]) / theirs[large]) <= 1e-10
    Lc, Lo = _blocked_factor.schur_gramian_factors(_blocked_factor.fast_complex_schur(A), B, C, discrete)
    complex_route = np.linalg.svd(Lo.conj().T @ Lc, compute_uv=False)
    big = complex_route >= 1e-6 * complex_route[0]
    assert np.max(np.abs(ours[big] - complex_route[big]) / complex_route[big]) <= 1e-10


def test_numerically_singular_pair_block_takes_the_complex_route(monkeypatch):
    """Two equal complex pairs -1 +- 1e-14 i and one input: each 2x2 block's factor is singular
    to working precision and its triple is not real to working accuracy (imaginary parts of
    5e-3 relative). The kernel says so and the factors come from the complex route, whose HSVs
    agree with a 40-digit mpmath reference to 2e-15 here (SLICOT's ab09ad: 1e-4; the real triple
    with its imaginary parts dropped: up to 7e-6)."""
    rng = np.random.default_rng(0)
    n = 8
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    near_real = np.array([[-1.0, 1e-14], [-1e-14, -1.0]])
    pair = np.array([[-0.5, 2.0], [-2.0, -0.5]])
    A = Q @ np.block([[near_real, np.zeros((2, 6))], [np.zeros((2, 2)), near_real, np.zeros((2, 4))],
                      [np.zeros((2, 4)), pair, np.zeros((2, 2))], [np.zeros((2, 6)), pair]]) @ Q.T
    B, C = rng.standard_normal((n, 1)), rng.standard_normal((2, n))
    calls = []
    complex_route = _real_schur_factor.schur_gramian_factors
    monkeypatch.setattr(_real_schur_factor, "schur_gramian_factors",
                        lambda *args, **kwargs: calls.append(1) or complex_route(*args, **kwargs))
    system = lr.StateSpace(A, B, C)
    ours = lr.hankel_singular_values(system)
    assert calls == [1]
    Lc, Lo = complex_route(_blocked_factor.fast_complex_schur(A), B, C, False)
    reference = np.linalg.svd(Lo.conj().T @ Lc, compute_uv=False)
    big = reference >= 1e-6 * reference[0]
    assert big.sum() == 3
    assert np.max(np.abs(ours[big] - reference[big]) / reference[big]) <= 1e-12


def test_which_route():
    """Real systems up to LARGEST states take the real route, complex ones and larger ones the
    complex route; both forms report the eigenvalues."""
    rng = np.random.default_rng(1)
    A = random_real_system(rng, 6, 1, 1, False)[0]
    form = _gramians.dense_schur(A)
    assert isinstance(form, _real_schur_factor.RealSchurForm)
    reference = np.linalg.eigvals(A)
    complex_form = _gramians.dense_schur(A + 0j)
    assert not isinstance(complex_form, _real_schur_factor.RealSchurForm)
    for values in (form.eigenvalues, complex_form.eigenvalues):
        assert values.shape == reference.shape
        assert np.max(np.min(np.abs(values[:, None] - reference[None, :]), axis=1)) <= 1e-12


def test_without_the_kernel_the_complex_route_gives_the_same_reduction(monkeypatch):
    """With the compiled kernels switched off (as installed without a C compiler) the same
    system gives the same HSVs and transfer function (to rounding)."""
    rng = np.random.default_rng(8)
    A, B, C = random_real_system(rng, 30, 2, 2, True)
    system = lr.StateSpace(A, B, C, dt=1.0)
    real = lr.balanced_truncation(system, order=6)
    monkeypatch.setattr(_real_schur_factor, "compiled", None)
    assert not isinstance(_gramians.dense_schur(A), _real_schur_factor.RealSchurForm)
    other = lr.balanced_truncation(system, order=6)
    assert np.allclose(real.hsv, other.hsv, rtol=1e-11, atol=1e-14 * real.hsv[0])
    points = np.exp(1j * np.linspace(0, np.pi, 7))
    assert np.allclose(real.system.evaluate(points), other.system.evaluate(points), rtol=1e-9, atol=1e-12)


def test_factors_from_concurrent_threads_equal_sequential_ones():
    """The kernels run without the GIL (ctypes releases it) and keep no state between calls:
    factors computed by 4 threads at once equal those computed one after another, bit for bit."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(4)
    cases = []
    for n, discrete in ((30, False), (60, True), (90, False), (120, True)):
        A, B, C = random_real_system(rng, n, 3, 2, discrete)
        cases.append((_real_schur_factor.real_schur(A), B, C, discrete))
    cases = cases * 2

    def run(case):
        return _real_schur_factor.real_gramian_factors(*case)

    sequential = [run(case) for case in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(run, cases))
    for ours, reference in zip(concurrent, sequential):
        # the kernels themselves are deterministic; the products with Z go through BLAS, whose
        # split of the work may differ between threads: rounding only
        for L, K in zip(ours, reference):
            assert np.linalg.norm(L - K) <= 1e-13 * np.linalg.norm(K)
