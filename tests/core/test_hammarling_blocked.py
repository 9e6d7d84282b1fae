"""The recursive blocked Hammarling factor (``lti_reduce._blocked_factor``) of dense systems.

Checked: the Lyapunov / Stein residual of ``X = U U^H``, agreement with the column-by-column
recursion it replaces (``_hammarling.triangular_factor``) and with SLICOT's HSVs, complex
and real Schur forms, both time bases, every block boundary (the leaf size is lowered so
that small n reach deep recursions), n = 0 and 1, zero and tiny right-hand sides.
"""

import subprocess
import sys
import tempfile

import numpy as np
import pytest

import lti_reduce as lr
from lti_reduce import _blocked_factor, _hammarling, _real_schur_factor

EPS = np.finfo(float).eps


def stable_triangular(rng, n, discrete, coupling=0.3):
    """Complex upper-triangular T with a stable spectrum and a non-normal strict upper part."""
    if discrete:
        diag = rng.uniform(0.05, 0.95, n) * np.exp(1j * rng.uniform(-np.pi, np.pi, n))
    else:
        diag = -rng.uniform(0.05, 2.0, n) + 1j * rng.uniform(-3, 3, n)
    strict = np.triu(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)), 1)
    return np.diag(diag) + coupling * strict / max(1.0, np.sqrt(n))


def residual(T, U, M, discrete):
    """Relative residual of the equation for ``X = U U^H``."""
    X = U @ U.conj().T
    R = T @ X @ T.conj().T - X + M @ M.conj().T if discrete else T @ X + X @ T.conj().T + M @ M.conj().T
    size = (np.linalg.norm(T) ** 2 + 1 if discrete else 2 * np.linalg.norm(T)) * np.linalg.norm(X) \
        + np.linalg.norm(M) ** 2
    return np.linalg.norm(R) / size


def random_real_system(rng, n, m, p, discrete):
    """Stable real (A, B, C) with real and complex-pair eigenvalues (2x2 Schur blocks)."""
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    radius = np.max(np.abs(np.linalg.eigvals(A))) if n else 1.0
    A = A / (1.2 * radius) if discrete else A - (radius + 0.1) * np.eye(n)
    return A, rng.standard_normal((n, m)), rng.standard_normal((p, n))


LEAVES = [(None, "compiled"), (3, "compiled"), (16, "python"), (3, "python")]


@pytest.fixture(params=LEAVES, ids=[f"leaf{size or 'auto'}-{kind}" for size, kind in LEAVES])
def leaf(request, monkeypatch):
    """The shipped leaf size and a tiny one (deep recursion, odd splits at every level), with
    the compiled leaf (skipped where the extension is not built) and with the Python one."""
    size, kind = request.param
    if kind == "compiled" and _blocked_factor.compiled_leaf is None:
        pytest.skip("the compiled leaf (lti_reduce._hammarling_leaf) is not built here")
    if kind == "python":     # as installed without a C compiler: no compiled code at all
        monkeypatch.setattr(_blocked_factor, "compiled_leaf", None)
        monkeypatch.setattr(_real_schur_factor, "compiled", None)
    monkeypatch.setattr(_blocked_factor, "LEAF", size)
    monkeypatch.setattr(_blocked_factor, "SYLVESTER_LEAF", 2 if size is not None and size < 16 else 32)
    return size


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("n, m", [(1, 1), (2, 1), (15, 1), (16, 2), (17, 3), (33, 1), (48, 4), (97, 5), (40, 60)])
def test_residual_and_agreement_with_column_recursion(leaf, n, m, discrete):
    """Residual O(n eps); the Gramian and the factor's singular values equal those of the
    column-by-column recursion (m > n: the input is compressed first)."""
    rng = np.random.default_rng([n, m, int(discrete)])
    T = stable_triangular(rng, n, discrete)
    M = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    U = _blocked_factor.blocked_triangular_factor(T, M, discrete)
    assert U.shape == (n, n) and U.dtype == np.complex128
    assert np.all(np.tril(U, -1) == 0), "the factor is not upper triangular"
    assert residual(T, U, M, discrete) <= 50 * n * EPS
    reference = _hammarling.triangular_factor(T, M, discrete)
    X, X_ref = U @ U.conj().T, reference @ reference.conj().T
    assert np.linalg.norm(X - X_ref) <= 1e-12 * np.linalg.norm(X_ref)
    s, s_ref = (np.linalg.svd(V, compute_uv=False) for V in (U, reference))
    large = s_ref >= 1e-6 * s_ref[0]
    assert np.max(np.abs(s[large] - s_ref[large]) / s_ref[large]) <= 1e-9


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
def test_zero_rows_and_zero_input(leaf, discrete):
    """Rows of M that vanish exactly (nothing enters there) give exact zero diagonal entries
    and the residual still holds; M = 0 gives U = 0."""
    rng = np.random.default_rng(7)
    n = 20
    # block-diagonal T: the upper states are not reached from the lower ones
    T = stable_triangular(rng, n, discrete)
    T[:12, 12:] = 0
    M = np.zeros((n, 2), dtype=complex)
    M[:12] = rng.standard_normal((12, 2))
    U = _blocked_factor.blocked_triangular_factor(T, M, discrete)
    assert np.all(U[12:] == 0)
    assert residual(T, U, M, discrete) <= 50 * n * EPS
    assert np.all(_blocked_factor.blocked_triangular_factor(T, np.zeros((n, 2)), discrete) == 0)


def test_tiny_input_scales_exactly(leaf):
    """The factor is linear in M: scaling M by 1e-200 (squares underflow) scales U by 1e-200."""
    rng = np.random.default_rng(3)
    n = 30
    T = stable_triangular(rng, n, False)
    M = rng.standard_normal((n, 2)) + 0j
    U = _blocked_factor.blocked_triangular_factor(T, M, False)
    U_tiny = _blocked_factor.blocked_triangular_factor(T, 1e-200 * M, False)
    assert np.all(np.isfinite(U_tiny))
    assert np.linalg.norm(U_tiny * 1e200 - U) <= 1e-12 * np.linalg.norm(U)


def test_empty_system():
    U = _blocked_factor.blocked_triangular_factor(np.zeros((0, 0)), np.zeros((0, 2)), False)
    assert U.shape == (0, 0)


@pytest.mark.parametrize("n", [1, 2, 3, 9, 40])
def test_fast_complex_schur(n):
    """``A = Z T Z^H`` with T upper triangular and Z unitary; ``Z = Z_r G`` with Z_r the real
    Schur basis and G block diagonal (the rotations kept for real factors)."""
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n))
    form = _blocked_factor.fast_complex_schur(A)
    T, Z = form
    assert np.all(np.tril(T, -1) == 0)
    assert np.linalg.norm(Z @ T @ Z.conj().T - A) <= 50 * n * EPS * max(np.linalg.norm(A), 1)
    assert np.linalg.norm(Z.conj().T @ Z - np.eye(n)) <= 50 * n * EPS
    K = _blocked_factor._rotate_rows(form.rotations, np.eye(n, dtype=complex))
    assert np.linalg.norm(form.real_basis @ K - Z) <= 50 * n * EPS
    assert np.allclose(np.sort_complex(np.diag(T)), np.sort_complex(np.linalg.eigvals(A)))


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("n", [1, 16, 17, 50])
def test_gramian_factors_satisfy_the_lyapunov_equations(leaf, n, discrete, complex_):
    """``gramian(..., factor=True)`` through the blocked path: real factors for real systems,
    ``A P + P A^H + B B^H = 0`` (``A P A^H - P + B B^H = 0``) and likewise for Q."""
    rng = np.random.default_rng([n, int(discrete), int(complex_)])
    A, B, C = random_real_system(rng, n, 2, 3, discrete)
    if complex_:
        A = A + 0.3j * np.diag(rng.uniform(-1, 1, n))
        B, C = B + 1j * rng.standard_normal(B.shape), C + 1j * rng.standard_normal(C.shape)
    system = lr.StateSpace(A, B, C, dt=1.0 if discrete else 0.0)
    for kind, X, Y in (("c", A, B), ("o", A.conj().T, C.conj().T)):
        L = lr.gramian(system, kind, factor=True)
        assert np.iscomplexobj(L) == complex_
        P = L @ L.conj().T
        R = X @ P @ X.conj().T - P + Y @ Y.conj().T if discrete else X @ P + P @ X.conj().T + Y @ Y.conj().T
        scale = (np.linalg.norm(X) ** 2 + 1) * np.linalg.norm(P) + np.linalg.norm(Y) ** 2
        assert np.linalg.norm(R) <= 200 * max(n, 1) * EPS * scale


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("n, m", [(2, 1), (16, 1), (31, 4), (64, 16), (150, 2)])
def test_hsvs_agree_with_slicot(n, m, discrete):
    """HSVs of real systems within 1e-10 relative of SLICOT's ``ab09ad`` for ``s_i >= 1e-6 s_1``."""
    slycot = pytest.importorskip("slycot")
    rng = np.random.default_rng([n, m, int(discrete), 11])
    A, B, C = random_real_system(rng, n, m, m, discrete)
    ours = lr.hankel_singular_values(lr.StateSpace(A, B, C, dt=1.0 if discrete else 0.0))
    out = slycot.ab09ad("D" if discrete else "C", "B", "N", n, m, m, np.array(A, order="F"),
                        np.array(B, order="F"), np.array(C, order="F"), nr=1)
    theirs = np.asarray(out[4])
    large = theirs >= 1e-6 * theirs[0]
    assert np.max(np.abs(ours[:theirs.size][large] - theirs[large]) / theirs[large]) <= 1e-10


def _hard_spectrum(kind, rng, n):
    """Real A = Q (D + N) Q^T with a hard spectrum for the factor recursion."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    strict = np.triu(rng.standard_normal((n, n)), 1)
    if kind == "discrete, eigenvalues near -1 and +1":
        d = np.concatenate([-0.999 + 5e-4 * rng.random(5), 0.999 - 5e-4 * rng.random(5), rng.uniform(-0.9, 0.9, n - 10)])
        return Q @ np.diag(d) @ Q.T, True
    if kind == "continuous, stiff (1e-4 .. 1e4)":
        d = -np.logspace(-4, 4, n)
        return Q @ (np.diag(d) + 0.1 * strict * np.sqrt(np.outer(d, d))) @ Q.T, False
    # discrete, eigenvalues near 0: the Cayley transform's T + I is near the identity
    return Q @ (np.diag(rng.uniform(-1e-3, 1e-3, n)) + 0.02 * strict) @ Q.T, True


@pytest.mark.parametrize("kind", ["discrete, eigenvalues near -1 and +1", "continuous, stiff (1e-4 .. 1e4)",
                                  "discrete, eigenvalues near 0"])
def test_hard_spectra_agree_with_slicot(kind):
    """HSVs within 1e-10 of SLICOT's where the Cayley transform (|1 + l| = 1e-3) or the scale
    spread (1e8) could cost digits (measured 6e-12, 2e-12, 3e-14)."""
    slycot = pytest.importorskip("slycot")
    rng = np.random.default_rng(5)
    n = 60
    A, discrete = _hard_spectrum(kind, rng, n)
    B, C = rng.standard_normal((n, 2)), rng.standard_normal((2, n))
    ours = lr.hankel_singular_values(lr.StateSpace(A, B, C, dt=1.0 if discrete else 0.0))
    theirs = np.asarray(slycot.ab09ad("D" if discrete else "C", "B", "N", n, 2, 2, np.array(A, order="F"),
                                      np.array(B, order="F"), np.array(C, order="F"), nr=1)[4])
    large = theirs >= 1e-6 * theirs[0]
    assert np.max(np.abs(ours[:theirs.size][large] - theirs[large]) / theirs[large]) <= 1e-10


@pytest.mark.parametrize("b, width", [(1, 1), (2, 0), (7, 3), (16, 16), (40, 70), (64, 1)])
def test_compiled_leaf_equals_python_leaf(b, width):
    """The compiled leaf fills U, Ahat, Bhat as the Python loop does (to rounding), through
    strided, reversed and Fortran-ordered views, with an exactly zero and a tiny input row."""
    if _blocked_factor.compiled_leaf is None:
        pytest.skip("the compiled leaf (lti_reduce._hammarling_leaf) is not built here")
    rng = np.random.default_rng([b, width])
    T = stable_triangular(rng, b, False)
    M = rng.standard_normal((b, width)) + 1j * rng.standard_normal((b, width))
    if b > 3 and width:
        M[1] = 0.0
        M[2] *= 1e-170
    T_view = np.asfortranarray(T)                     # column-major
    M_view = np.ascontiguousarray(M[::-1])[::-1]      # negative row stride
    outputs = []
    for run in (_blocked_factor._leaf, _blocked_factor._run_leaf):
        big = np.full((2 * b + 1, 2 * b + 1), np.nan, dtype=complex, order="F")
        U, Ah = big[1:b + 1, 1:b + 1], big[b + 1:, b + 1:]        # views with offsets
        Bh = np.full((b, 2 * width), np.nan, dtype=complex)[:, ::2]  # column stride 2
        run(T_view if run is _blocked_factor._run_leaf else T, M_view, U, Ah, Bh)
        outputs.append((U.copy(), Ah.copy(), Bh.copy()))
        assert np.all(np.isnan(big[0])) and np.all(np.isnan(big[1:b + 1, b + 1:])), "wrote outside its views"
    for ours in outputs[1]:
        assert np.all(np.isfinite(ours))
    if width >= b:      # full rank: the factor is unique up to rounding, entry by entry
        for ours, reference in zip(outputs[1], outputs[0]):
            assert np.linalg.norm(ours - reference) <= 1e-13 * max(np.linalg.norm(reference), 1e-300)
    else:               # rank <= width: rows past the rank carry rounding directions; X = U U^H is unique
        X, X_ref = (out[0] @ out[0].conj().T for out in outputs[::-1])
        assert np.linalg.norm(X - X_ref) <= 1e-13 * np.linalg.norm(X_ref)
    U, Ah, Bh = outputs[1]
    assert np.all(np.tril(U, -1) == 0) and np.all(np.tril(Ah, -1) == 0)
    assert np.allclose(np.diag(Ah), np.diag(T), rtol=0, atol=1e-15)
    # the identities that define Ahat and Bhat
    scale = np.linalg.norm(T) * np.linalg.norm(U) + np.linalg.norm(M)
    assert np.linalg.norm(U @ Ah - T @ U) <= 100 * b * EPS * scale
    assert np.linalg.norm(U @ Bh - M) <= 100 * b * EPS * scale
    if width:     # (with no input column every row of Bhat is empty and U = 0)
        assert np.linalg.norm(Ah + Ah.conj().T + Bh @ Bh.conj().T) <= 100 * b * EPS * np.linalg.norm(T)


def test_without_the_compiled_leaf_the_python_leaf_runs():
    """Where the optional extension is not built (no C compiler), the import still works, the
    Python leaf runs, and the factors equal the compiled path's to rounding."""
    code = (
        "import sys; sys.modules['lti_reduce._hammarling_leaf'] = None\n"   # import raises ImportError
        "import numpy as np, lti_reduce as lr\n"
        "from lti_reduce import _blocked_factor as bf\n"
        "assert bf.compiled_leaf is None and bf._leaf_size() == bf.PYTHON_LEAF\n"
        "from lti_reduce import _real_schur_factor; assert _real_schur_factor.compiled is None\n"
        "rng = np.random.default_rng(0)\n"
        "A = rng.standard_normal((40, 40)); A = A / (1.2 * max(abs(np.linalg.eigvals(A))))\n"
        "system = lr.StateSpace(A, rng.standard_normal((40, 2)), rng.standard_normal((3, 40)), dt=True)\n"
        "np.save(sys.argv[1], lr.hankel_singular_values(system))\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/hsv.npy"
        subprocess.run([sys.executable, "-c", code, path], check=True, timeout=120)
        python_hsv = np.load(path)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((40, 40))
    A = A / (1.2 * max(abs(np.linalg.eigvals(A))))
    system = lr.StateSpace(A, rng.standard_normal((40, 2)), rng.standard_normal((3, 40)), dt=True)
    hsv = lr.hankel_singular_values(system)
    large = hsv >= 1e-6 * hsv[0]
    assert np.max(np.abs(python_hsv[large] - hsv[large]) / hsv[large]) <= 1e-11


def test_factors_from_concurrent_threads_equal_sequential_ones():
    """The compiled leaf runs without the GIL (ctypes releases it) and keeps no state between
    calls: factors computed by 4 threads at once equal those computed one after another."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(21)
    cases = [(stable_triangular(rng, n, discrete), rng.standard_normal((n, 3)) + 1j * rng.standard_normal((n, 3)),
              discrete) for n, discrete in ((40, False), (70, True), (130, False), (200, True))] * 2
    sequential = [_blocked_factor.blocked_triangular_factor(*case) for case in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda case: _blocked_factor.blocked_triangular_factor(*case), cases))
    for U, V in zip(sequential, concurrent):     # (BLAS may split its work differently: rounding only)
        assert np.linalg.norm(U - V) <= 1e-12 * np.linalg.norm(U)
