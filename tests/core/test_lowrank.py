"""Low-rank Gramian factors (LR-ADI) and balanced truncation of sparse / descriptor systems.

Small systems (n <= 400) so that the dense path can check every figure."""

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

import lti_reduce as lr


def heat_2d(N, m=2, p=3, seed=0, advection=0.0, mass=False):
    """2-D FD heat operator on an N x N grid (optionally with a random upwind-ish advection
    term and a random SPD-ish mass matrix), random dense B and C."""
    rng = np.random.default_rng(seed)
    n = N * N
    T = sp.diags([np.ones(N - 1), -2 * np.ones(N), np.ones(N - 1)], [-1, 0, 1]) * (N + 1) ** 2
    I = sp.identity(N)
    A = sp.kron(T, I) + sp.kron(I, T)
    if advection:
        A = A + advection * sp.diags(rng.standard_normal(n - 1), 1)
    E = None
    if mass:
        E = sp.diags(1 + rng.random(n)) + sp.diags(0.1 * np.ones(n - 1), 1)
    return sp.csc_array(A), rng.standard_normal((n, m)), rng.standard_normal((p, n)), E


def oscillator_chain(k, seed=1):
    """Sparse real system with complex poles: k damped 2x2 oscillators, weakly coupled."""
    rng = np.random.default_rng(seed)
    blocks = [np.array([[-a, w], [-w, -a]]) for a, w in zip(1 + rng.random(k), 2 + 8 * rng.random(k))]
    A = sp.block_diag(blocks) + 0.05 * sp.diags(np.ones(2 * k - 1), 1)
    return sp.csc_array(A), rng.standard_normal((2 * k, 2)), rng.standard_normal((2, 2 * k))


def dense_of(M, n):
    return np.eye(n) if M is None else (M.toarray() if sp.issparse(M) else np.asarray(M))


def lyapunov_residual(A, E, Z, rhs, discrete, adjoint):
    """Relative residual of the equation Z solves, formed densely (rhs = B or C^H)."""
    n = A.shape[0]
    A, E = dense_of(A, n), dense_of(E, n)
    if adjoint:
        A, E = A.conj().T, E.conj().T
    X = Z @ Z.conj().T
    F = rhs @ rhs.conj().T
    R = (A @ X @ A.conj().T - E @ X @ E.conj().T if discrete else A @ X @ E.conj().T + E @ X @ A.conj().T) + F
    return np.linalg.norm(R, 2) / np.linalg.norm(F, 2)


CASES = {
    "continuous": dict(dt=0, advection=0.0, mass=False),
    "continuous-E-nonsymmetric": dict(dt=0, advection=40.0, mass=True),
    "discrete-E": dict(dt=1, advection=0.0, mass=True),
}


def make(case, N=12):
    spec = CASES[case]
    A, B, C, E = heat_2d(N, advection=spec["advection"], mass=spec["mass"])
    if spec["dt"]:
        A = sp.csc_array(sp.identity(N * N) + A / (8.5 * (N + 1) ** 2))   # |eig| < 1
    return lr.SparseStateSpace(A, B, C, E=E, dt=spec["dt"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_reported_residual_is_the_true_residual(case):
    system = make(case)
    gc, go = lr.lowrank_gramian_factors(system, residual_tol=1e-11)
    for g, rhs, adjoint in ((gc, system.B, False), (go, system.C.conj().T, True)):
        true = lyapunov_residual(system.A, system.E, g.Z, rhs, system.is_discrete, adjoint)
        assert g.residual <= 1e-11
        assert true == pytest.approx(g.residual, rel=1e-4, abs=1e-15)
        assert g.residual_history[0] == 1.0 and g.residual_history[-1] == g.residual
        assert len(g.residual_history) == g.iterations + 1 == len(g.shifts) + 1
        assert np.all(g.shifts.real < 0)
        assert g.Z.dtype == np.float64


@pytest.mark.parametrize("case", sorted(CASES))
def test_hsvs_match_the_dense_path(case):
    system = make(case)
    hsv = lr.lowrank_hankel_singular_values(system, residual_tol=1e-14)
    dense = np.asarray(lr.hankel_singular_values(system.to_dense()))
    k = 12
    assert len(hsv) >= k
    big = dense[:k] >= 1e-6 * dense[0]
    assert np.max(np.abs(hsv[:k] - dense[:k])[big] / dense[:k][big]) <= 1e-8
    assert np.max(np.abs(hsv[:k] - dense[:k])) <= 1e-10 * dense[0]


def test_real_system_with_complex_shifts_keeps_real_factors():
    A, B, C = oscillator_chain(60)
    system = lr.SparseStateSpace(A, B, C)
    gc, go = lr.lowrank_gramian_factors(system)
    assert np.any(gc.shifts.imag != 0), "the test needs complex shifts to mean anything"
    # pairs are listed together, conjugate
    pairs = np.flatnonzero(gc.shifts.imag > 0)
    np.testing.assert_array_equal(gc.shifts[pairs + 1], np.conj(gc.shifts[pairs]))
    for g, rhs, adjoint in ((gc, B, False), (go, C.T, True)):
        assert g.Z.dtype == np.float64
        assert lyapunov_residual(A, None, g.Z, rhs, False, adjoint) == pytest.approx(g.residual, rel=1e-4)
    dense = np.asarray(lr.hankel_singular_values(system.to_dense()))
    hsv = lr.lowrank_balanced_truncation(system, order=6, error_samples=0).hsv
    np.testing.assert_allclose(hsv[:6], dense[:6], rtol=1e-7)


def test_complex_system_gives_complex_factor_with_true_residual():
    A, B, C = oscillator_chain(40)
    rng = np.random.default_rng(3)
    A = sp.csc_array(A + 1j * sp.diags(rng.standard_normal(80)))
    B = B + 1j * rng.standard_normal(B.shape)
    system = lr.SparseStateSpace(A, B, C)
    gc, go = lr.lowrank_gramian_factors(system)
    assert gc.Z.dtype == np.complex128
    assert lyapunov_residual(A, None, gc.Z, B, False, False) == pytest.approx(gc.residual, rel=1e-4)
    assert lyapunov_residual(A, None, go.Z, C.conj().T, False, True) == pytest.approx(go.residual, rel=1e-4)
    dense = np.asarray(lr.hankel_singular_values(system.to_dense()))
    np.testing.assert_allclose(lr.lowrank_hankel_singular_values(system)[:5], dense[:5], rtol=1e-7)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["sr", "bfsr"])
def test_balanced_truncation_matches_dense_path(case, method):
    system = make(case)
    res = lr.lowrank_balanced_truncation(system, order=6, method=method, residual_tol=1e-13)
    dense = lr.balanced_truncation(system.to_dense(), order=6, method=method)
    assert isinstance(res, lr.BalancedTruncationResult) and res.order == 6
    E = dense_of(system.E, system.n)
    np.testing.assert_allclose(res.W.conj().T @ E @ res.V, np.eye(6), atol=1e-10)
    w = np.geomspace(1e-2, 1e4, 30) if not system.is_discrete else np.linspace(0, np.pi, 30)
    G_lr, G_d = res.system.frequency_response(w), dense.system.frequency_response(w)
    scale = np.max(np.abs(system.frequency_response(w)))
    assert np.max(np.abs(G_lr - G_d)) <= 1e-8 * scale
    assert res.error_bound == pytest.approx(dense.error_bound, rel=1e-6)
    # the sampled error is a lower bound of the true error, which the bound covers
    assert 0 < res.error_estimate <= res.error_bound
    assert res.error_frequencies[0] == 0 and len(res.error_frequencies) == 48
    assert res.error_estimate == pytest.approx(lr.sampled_error(system, res.system, res.error_frequencies), rel=1e-12)
    static = np.linalg.norm((system.frequency_response([0.0]) - res.system.frequency_response([0.0]))[0], 2)
    assert res.error_estimate >= static
    if method == "sr":   # balanced: W^H P W = V^H Q V = diag(s_r) (Q = E^H Q_E E)
        P = res.controllability.Z @ res.controllability.Z.T
        Q = E.T @ res.observability.Z @ res.observability.Z.T @ E
        np.testing.assert_allclose(res.W.T @ E @ P @ E.T @ res.W, np.diag(res.hsv[:6]), atol=1e-9 * res.hsv[0])
        np.testing.assert_allclose(res.V.T @ Q @ res.V, np.diag(res.hsv[:6]), atol=1e-9 * res.hsv[0])


def test_core_functions_dispatch_on_sparse_systems():
    system = make("continuous-E-nonsymmetric")
    res = lr.balanced_truncation(system, tol=1e-3)
    assert isinstance(res, lr.LowRankBalancedTruncationResult)
    assert res.error_bound <= 1e-3 and res.error_estimate <= 1e-3
    hsv = lr.hankel_singular_values(system)
    np.testing.assert_allclose(hsv[:5], res.hsv[:5], rtol=1e-6)
    Lc, Lo = lr.gramian(system, "c", factor=True), lr.gramian(system, "o", factor=True)
    np.testing.assert_allclose(sla.svdvals(Lo.T @ Lc)[:5], hsv[:5], rtol=1e-6)


def test_given_shifts_are_cycled_and_converge():
    system = make("continuous")
    eigs = -np.geomspace(2 * np.pi ** 2, 8 * 13 ** 2, 8)
    g = lr.lowrank_gramian_factor(system, "c", shifts=eigs, maxiter=400)
    assert g.residual <= 1e-10
    assert set(np.round(g.shifts.real, 6)) <= set(np.round(eigs, 6))
    assert lyapunov_residual(system.A, None, g.Z, system.B, False, False) == pytest.approx(g.residual, rel=1e-4)


# --------------------------------------------------------------------------------------
# dense E on the dense path
# --------------------------------------------------------------------------------------
def test_dense_descriptor_system_uses_the_standard_form_when_E_is_well_conditioned():
    A, B, C, E = heat_2d(8, mass=True, advection=10.0)
    system = lr.SparseStateSpace(A.toarray(), B, C, E=E.toarray())
    res = lr.balanced_truncation(system, order=5)
    assert type(res) is lr.BalancedTruncationResult and len(res.hsv) == system.n
    np.testing.assert_allclose(res.W.T @ E.toarray() @ res.V, np.eye(5), atol=1e-10)
    np.testing.assert_allclose(res.W.T @ A.toarray() @ res.V, res.system.A, atol=1e-8 * np.abs(res.system.A).max())
    np.testing.assert_allclose(res.W.T @ B, res.system.B, atol=1e-10 * np.abs(B).max())


def test_dense_descriptor_system_keeps_an_ill_conditioned_E():
    A, B, C, _ = heat_2d(8)
    rng = np.random.default_rng(5)
    Q = np.linalg.qr(rng.standard_normal((64, 64)))[0]
    E = Q @ np.diag(np.geomspace(1, 1e-7, 64)) @ Q.T   # cond 1e7: E^-1 A would lose 7 digits
    system = lr.SparseStateSpace(A.toarray(), B, C, E=E)
    res = lr.balanced_truncation(system, order=4)
    assert isinstance(res, lr.LowRankBalancedTruncationResult)
    np.testing.assert_allclose(res.W.T @ E @ res.V, np.eye(4), atol=1e-8)
    # the dense check of the residual has its own rounding level (about cond(E) eps here)
    assert res.controllability.residual <= 1e-10
    assert lyapunov_residual(A, E, res.controllability.Z, B, False, False) <= 1e-9


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_singular_E_is_a_typed_error_naming_E():
    A, B, C, E = heat_2d(6, mass=True)
    E = E.tolil()
    E[3, :] = 0
    with pytest.raises(lr.SingularDescriptorError, match="E of shape"):
        lr.SparseStateSpace(A, B, C, E=E.tocsc())
    with pytest.raises(ValueError, match="numerically singular|singular"):
        lr.SparseStateSpace(A, B, C, E=np.diag(np.r_[np.ones(35), 1e-15]))


def test_unstable_system_raises_unstable_error():
    A, B, C, _ = heat_2d(10)
    unstable = lr.SparseStateSpace(sp.csc_array(A + 60 * sp.identity(100)), B, C)   # lambda_min ~ -19.6
    with pytest.raises(lr.UnstableSystemError, match="right half plane|unstable"):
        lr.lowrank_gramian_factors(unstable)
    discrete = lr.SparseStateSpace(sp.csc_array(1.02 * sp.identity(100) + A / 1000), B, C, dt=1)
    with pytest.raises(lr.UnstableSystemError):
        lr.lowrank_balanced_truncation(discrete, order=2)


def test_marginally_stable_system_stalls_with_a_typed_error():
    A, B, C, _ = heat_2d(8)
    A = sp.block_diag([A, np.array([[0.0, 3.0], [-3.0, 0.0]])], format="csc")   # poles +-3j
    B = np.vstack([B, np.ones((2, B.shape[1]))])
    C = np.hstack([C, np.ones((C.shape[0], 2))])
    with pytest.raises((lr.ConvergenceError, lr.UnstableSystemError)) as info:
        lr.lowrank_gramian_factors(lr.SparseStateSpace(A, B, C), maxiter=60)
    assert "marginally stable" in str(info.value) or "unstable" in str(info.value)


def test_budget_exhausted_reports_the_residual_and_what_to_change():
    system = make("continuous")
    with pytest.raises(lr.ConvergenceError, match="maxiter=3") as info:
        lr.lowrank_gramian_factors(system, maxiter=3)
    assert isinstance(info.value, RuntimeError)
    assert info.value.residual > 1e-10 and f"{info.value.residual:.3g}" in str(info.value)
    assert "Raise maxiter" in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(residual_tol=0), "residual_tol"),
    (dict(residual_tol=1.5), "residual_tol"),
    (dict(maxiter=0), "maxiter"),
    (dict(shifts="wachspress"), "shifts"),
    (dict(shifts=[-1.0, 2.0]), "Re"),
    (dict(shifts=[-1.0 + 2j]), "conjugate pairs"),
])
def test_bad_options(kwargs, match):
    system = make("continuous", N=5)
    with pytest.raises(lr.InvalidParameterError, match=match):
        lr.lowrank_gramian_factors(system, **kwargs)


def test_bad_shapes_and_values():
    A, B, C, E = heat_2d(5, mass=True)
    with pytest.raises(lr.ShapeError, match="B must have shape"):
        lr.SparseStateSpace(A, B[:-1], C)
    with pytest.raises(lr.ShapeError, match="E must have shape"):
        lr.SparseStateSpace(A, B, C, E=sp.identity(24))
    with pytest.raises(lr.ShapeError, match="A must be square"):
        lr.SparseStateSpace(sp.csc_array(np.ones((25, 24))), B, C)
    bad = A.copy()
    bad.data[0] = np.nan
    with pytest.raises(lr.NonFiniteError, match="A contains NaN"):
        lr.SparseStateSpace(bad, B, C)
    system = lr.SparseStateSpace(A, B, C, E=E)
    with pytest.raises(lr.InvalidParameterError, match="match='dc'"):
        lr.lowrank_balanced_truncation(system, order=2, match="dc")
    with pytest.raises(lr.InvalidParameterError, match="horizon"):
        lr.balanced_truncation(system, order=2, horizon=3.0)
    with pytest.raises(lr.InvalidParameterError, match="SparseStateSpace"):
        lr.lowrank_gramian_factors(system.to_dense())


def test_one_lu_per_shift_serves_both_gramians(monkeypatch):
    import lti_reduce._lowrank as lowrank_module
    factorised = []

    class CountingLU(lowrank_module.MatrixLU):
        def __init__(self, M):
            factorised.append(M.shape)
            super().__init__(M)

    monkeypatch.setattr(lowrank_module, "MatrixLU", CountingLU)
    A, B, C = oscillator_chain(30)
    gc, go = lr.lowrank_gramian_factors(lr.SparseStateSpace(A, B, C))
    distinct = {complex(p) for p in gc.shifts if p.imag >= 0} | {complex(np.conj(p)) for p in go.shifts
                                                                  if p.imag <= 0}
    # shifts are applied to both equations (the observability one with conj(p)) until each converges
    assert len(factorised) == len(distinct) < len(gc.shifts) + len(go.shifts)
    # cycled user shifts keep their LUs: 3 shifts, any number of cycles, 3 factorisations
    factorised.clear()
    system = make("continuous", N=8)
    g = lr.lowrank_gramian_factor(system, "c", shifts=[-20.0, -150.0, -900.0], maxiter=300)
    assert len(factorised) == 3 and g.iterations > 3


def test_dense_statespace_refuses_a_sparse_matrix_and_names_the_sibling_class():
    A = sp.diags([-np.arange(1.0, 6.0)], [0]).tocsr()
    for make in (lr.StateSpace, lr.DiagonalStateSpace):
        with pytest.raises(lr.InvalidParameterError, match=r"A is a scipy\.sparse csr_matrix of shape \(5, 5\).*"
                                                           r"SparseStateSpace"):
            make(A, np.ones((5, 1)), np.ones((1, 5)))
    with pytest.raises(lr.InvalidParameterError, match=r"B is a scipy\.sparse"):
        lr.StateSpace(-np.eye(5), sp.csr_matrix(np.ones((5, 1))), np.ones((1, 5)))
