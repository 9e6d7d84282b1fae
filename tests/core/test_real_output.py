"""Real-output reduction (issue 12 item 3): the real system ``u -> Re(C x + D u)`` of a
complex layer is reduced and mapped back to complex diagonal form."""

import numpy as np
import pytest
import torch

from lti_reduce import (DiagonalStateSpace, StateSpace, InvalidParameterError, NotDiagonalizableError, ShapeError,
                        UnstableSystemError, balanced_truncation, complex_modal_form, error_bound, hinf_norm,
                        real_output_balanced_truncation, real_output_system, select_order)


def layer(seed, n=10, m=2, p=3, discrete=True, d=True):
    """A stable complex diagonal layer (LRU/S5-like), discrete or continuous."""
    rng = np.random.default_rng(seed)
    if discrete:
        lam = np.exp(-rng.uniform(0.05, 1.0, n) + 1j * rng.uniform(0.0, np.pi, n))
    else:
        lam = -rng.uniform(0.1, 2.0, n) + 1j * rng.uniform(-3.0, 3.0, n)
    B = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    D = rng.standard_normal((p, m)) if d else None
    return DiagonalStateSpace(lam, B, C, D, dt=True if discrete else 0.0)


def simulate_layer(system, u):
    """Discrete ``x[k+1] = diag(l) x[k] + B u[k]``, ``y[k] = Re(C x[k] + D u[k])`` from x = 0."""
    lam, B, C, D = (np.asarray(a) for a in (system.eigenvalues, system.B, system.C, system.D))
    x = np.zeros(lam.shape[0], complex)
    out = []
    for uk in u:
        out.append((C @ x + D @ uk).real)
        x = lam * x + B @ uk
    return np.array(out)


def simulate_real(system, u):
    A, B, C, D = (np.asarray(a) for a in (system.A, system.B, system.C, system.D))
    assert not np.iscomplexobj(A)
    x = np.zeros(A.shape[0])
    out = []
    for uk in u:
        out.append(C @ x + D @ uk)
        x = A @ x + B @ uk
    return np.array(out)


def difference(G, H):
    """Real system G - H (block diagonal A)."""
    n, r = G.n, H.n
    A = np.block([[np.asarray(G.A), np.zeros((n, r))], [np.zeros((r, n)), np.asarray(H.A)]])
    return StateSpace(A, np.vstack([G.B, H.B]), np.hstack([G.C, -np.asarray(H.C)]),
                      np.asarray(G.D) - np.asarray(H.D), dt=G.dt)


def response_points(discrete):
    w = np.linspace(0.0, 3.0, 9)
    return np.exp(1j * w) * 1.01 if discrete else 1j * w + 0.01


# ------------------------------------------------------------------------ realification
@pytest.mark.parametrize("discrete", [True, False])
def test_real_output_system_is_the_real_part_of_the_response(discrete):
    sys = layer(0, discrete=discrete)
    real = real_output_system(sys)
    assert real.n == 2 * sys.n and not real.is_complex
    s = response_points(discrete)
    expected = (np.asarray(sys.evaluate(s)) + np.conj(np.asarray(sys.evaluate(np.conj(s))))) / 2
    assert np.allclose(real.evaluate(s), expected, rtol=1e-12, atol=1e-12)
    # 2x2 blocks [[Re l, -Im l], [Im l, Re l]] on the diagonal, nothing else
    A = np.asarray(real.A)
    l0 = sys.eigenvalues[0]
    assert np.array_equal(A[:2, :2], [[l0.real, -l0.imag], [l0.imag, l0.real]])
    assert np.count_nonzero(A) == 4 * sys.n


def test_real_output_system_simulates_the_layer():
    sys = layer(1)
    u = np.random.default_rng(2).standard_normal((40, sys.m))
    assert np.allclose(simulate_real(real_output_system(sys), u), simulate_layer(sys, u), atol=1e-12)


def test_real_output_system_of_a_dense_complex_system():
    rng = np.random.default_rng(3)
    A = 0.3 * (rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4)))
    sys = StateSpace(A, rng.standard_normal((4, 1)) + 0j, rng.standard_normal((2, 4)) + 1j, dt=True)
    real = real_output_system(sys)
    s = np.exp(1j * np.array([0.2, 1.3]))
    expected = (np.asarray(sys.evaluate(s)) + np.conj(np.asarray(sys.evaluate(np.conj(s))))) / 2
    assert np.allclose(real.evaluate(s), expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ modal form
@pytest.mark.parametrize("discrete", [True, False])
def test_complex_modal_form_reproduces_a_real_system_with_real_eigenvalues(discrete):
    rng = np.random.default_rng(4)
    # spectrum: two conjugate pairs and two real eigenvalues (one negative)
    blocks = [np.array([[0.5, -0.4], [0.4, 0.5]]), np.array([[-0.2, -0.7], [0.7, -0.2]]),
              np.array([[0.6]]), np.array([[-0.3]])]
    if not discrete:
        blocks = [b - 1.2 * np.eye(len(b)) for b in blocks]
    T = rng.standard_normal((6, 6)) + 3 * np.eye(6)
    A = np.linalg.solve(T, __import__("scipy.linalg").linalg.block_diag(*blocks) @ T)
    real = StateSpace(A, rng.standard_normal((6, 2)), rng.standard_normal((3, 6)), rng.standard_normal((3, 2)),
                      dt=True if discrete else 0.0)
    modal = complex_modal_form(real)
    lam = np.asarray(modal.eigenvalues)
    assert modal.n == 4
    is_real = lam.imag == 0
    assert is_real.sum() == 2 and np.all(lam[~is_real].imag > 0)
    # real eigenvalues carry real b and c
    assert np.all(np.asarray(modal.B)[is_real].imag == 0) and np.all(np.asarray(modal.C)[:, is_real].imag == 0)
    back = real_output_system(modal)
    s = response_points(discrete)
    assert np.allclose(back.evaluate(s), real.evaluate(s), rtol=1e-10, atol=1e-10)
    if discrete:
        u = rng.standard_normal((30, 2))
        assert np.allclose(simulate_layer(modal, u), simulate_real(real, u), atol=1e-10)


def test_complex_modal_form_refuses_a_jordan_block_and_complex_input():
    jordan = StateSpace([[0.5, 1.0], [0.0, 0.5]], [[0.0], [1.0]], [[1.0, 0.0]], dt=True)
    with pytest.raises(NotDiagonalizableError, match="condition number"):
        complex_modal_form(jordan)
    with pytest.raises(InvalidParameterError, match="real system"):
        complex_modal_form(StateSpace([[0.5j]], [[1.0]], [[1.0]], dt=True))


# ------------------------------------------------------------------------ reduction
@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("k", [1, 3, 6, 8])
def test_reduced_layer_output_equals_reduced_real_system_and_bound_holds(discrete, k):
    sys = layer(10 + k, discrete=discrete)
    res = real_output_balanced_truncation(sys, order=k)
    assert res.order == res.system.n == k
    assert res.real_order == 2 * k - res.real_eigenvalues
    assert res.hsv.shape == (2 * sys.n,)
    assert np.all(np.diff(res.hsv) <= 0)
    assert res.error_bound == error_bound(res.hsv, res.real_order)
    # the layer's real output is the reduced real system's
    s = response_points(discrete)
    assert np.allclose(real_output_system(res.system).evaluate(s), res.real_system.evaluate(s),
                       rtol=1e-9, atol=1e-9 * float(np.abs(res.real_system.evaluate(s)).max()))
    if discrete:
        u = np.random.default_rng(k).standard_normal((50, sys.m))
        y = simulate_layer(res.system, u)
        assert np.allclose(y, simulate_real(res.real_system, u), atol=1e-9 * np.abs(y).max())
    # s_{r+1} <= ||G - G_r||_inf <= 2 sum_{i>r} s_i for the real output maps
    err = hinf_norm(difference(real_output_system(sys), real_output_system(res.system)), rtol=1e-8).norm
    assert res.hsv[res.real_order] * (1 - 1e-7) <= err <= res.error_bound * (1 + 1e-7)


def test_real_eigenvalues_occur_and_are_counted_as_one_state():
    counts = []
    for seed in range(6):
        for discrete in (True, False):
            res = real_output_balanced_truncation(layer(seed, discrete=discrete), order=4)
            lam = np.asarray(res.system.eigenvalues)
            assert res.real_eigenvalues == np.count_nonzero(lam.imag == 0)
            # at most 4 states; fewer only when no real order <= 8 gives exactly 4
            assert res.system.n <= 4 and res.real_order == 2 * res.system.n - res.real_eigenvalues
            # the real reduced spectrum is the layer's spectrum and its conjugates
            real_spectrum = np.sort_complex(np.linalg.eigvals(np.asarray(res.real_system.A)))
            doubled = np.sort_complex(np.concatenate([lam, np.conj(lam[lam.imag != 0])]))
            assert np.allclose(real_spectrum, doubled, atol=1e-10)
            counts.append(res.real_eigenvalues)
    assert max(counts) > 0      # the real-eigenvalue path is exercised


def test_real_hsvs_interlace_with_the_complex_ones():
    """The real output's Hankel operator is (H + conj H)/2, so by Weyl's inequality
    s_{2k+1}(real) <= s_{k+1}(complex)."""
    from lti_reduce import hankel_singular_values
    for seed in range(4):
        sys = layer(seed, n=12, discrete=bool(seed % 2))
        real_hsv = np.asarray(hankel_singular_values(real_output_system(sys)))
        cplx = np.asarray(hankel_singular_values(sys))
        for k in range(sys.n):
            assert real_hsv[2 * k] <= cplx[k] * (1 + 1e-9)


@pytest.mark.parametrize("criterion", [{"tol": 0.5}, {"energy": 0.1}])
def test_tol_and_energy_pick_the_largest_real_order_for_their_state_count(criterion):
    sys = layer(21, n=14, m=1, p=1)
    res = real_output_balanced_truncation(sys, **criterion)
    r0 = select_order(res.hsv, **criterion)
    assert res.real_order >= r0
    if "tol" in criterion:
        assert res.error_bound <= criterion["tol"]
    else:
        assert res.hsv[:res.real_order].sum() >= (1 - criterion["energy"]) * res.hsv.sum()
    same = real_output_balanced_truncation(sys, order=res.order)
    assert same.real_order == res.real_order and same.order == res.order


def test_bfsr_and_dc_match_options():
    sys = layer(5)
    sr = real_output_balanced_truncation(sys, order=4)
    bf = real_output_balanced_truncation(sys, order=4, method="bfsr")
    s = response_points(True)
    assert bf.real_order == sr.real_order
    assert np.allclose(bf.real_system.evaluate(s), sr.real_system.evaluate(s), rtol=1e-8, atol=1e-8)
    dc = real_output_balanced_truncation(sys, order=4, match="dc")
    assert dc.system.n <= 4
    # SPA keeps the DC gain G(1) of the real output map
    assert np.allclose(real_output_system(dc.system).dc_gain(), real_output_system(sys).dc_gain(), atol=1e-9)


def test_batched_and_torch_inputs():
    systems = [layer(s, n=6, m=1, p=1) for s in (30, 31, 32)]
    batch = DiagonalStateSpace(*(np.stack([getattr(s, a) for s in systems]) for a in
                                 ("eigenvalues", "B", "C", "D")), dt=True)
    results = real_output_balanced_truncation(batch, order=[2, 3, 4])
    assert [r.order for r in results] == [2, 3, 4]
    for sys, res, k in zip(systems, results, (2, 3, 4)):
        single = real_output_balanced_truncation(sys, order=k)
        assert np.array_equal(res.real_system.A, single.real_system.A)
    tsys = DiagonalStateSpace(*(torch.as_tensor(np.asarray(getattr(systems[0], a))) for a in
                                ("eigenvalues", "B", "C", "D")), dt=True)
    tres = real_output_balanced_truncation(tsys, order=2)
    assert isinstance(tres.system.eigenvalues, torch.Tensor) and isinstance(tres.hsv, torch.Tensor)
    assert np.array_equal(tres.real_system.A.numpy(), results[0].real_system.A)


def test_order_zero_and_full():
    sys = layer(7, n=4)
    zero = real_output_balanced_truncation(sys, order=0)
    assert zero.system.n == 0 and zero.real_order == 0
    full = real_output_balanced_truncation(sys, order=4)
    err = hinf_norm(difference(real_output_system(sys), real_output_system(full.system))).norm
    assert full.real_order == 8 and err <= 1e-8 * hinf_norm(real_output_system(sys)).norm


def test_bad_input_is_refused_with_typed_errors():
    sys = layer(8, n=4)
    with pytest.raises(InvalidParameterError, match=r"order \(complex states\) must be in \[0, n=4\], got 5"):
        real_output_balanced_truncation(sys, order=5)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        real_output_balanced_truncation(sys, order=2, tol=0.1)
    unstable = DiagonalStateSpace([1.2 + 0.1j], [[1.0]], [[1.0]], dt=True)
    with pytest.raises(UnstableSystemError):
        real_output_balanced_truncation(unstable, order=1)
    with pytest.raises(InvalidParameterError, match="entries"):
        real_output_balanced_truncation(DiagonalStateSpace(np.stack([sys.eigenvalues] * 2),
                                                           np.stack([sys.B] * 2), np.stack([sys.C] * 2),
                                                           np.stack([sys.D] * 2), dt=True), order=[1, 2, 3])


def test_complex_reduction_bound_also_holds_for_the_real_output():
    """The published (complex) reduction's bound covers the real output too (|Re e| <= |e|),
    which is the baseline the real-output reduction is compared with."""
    sys = layer(40, n=12)
    cplx = balanced_truncation(sys, order=5)
    A, B, C = (np.asarray(a) for a in (cplx.system.A, cplx.system.B, cplx.system.C))
    lam, X = np.linalg.eig(A)
    modal = DiagonalStateSpace(lam, np.linalg.solve(X, B), C @ X, np.asarray(cplx.system.D), dt=True)
    err = hinf_norm(difference(real_output_system(sys), real_output_system(modal))).norm
    assert err <= cplx.error_bound * (1 + 1e-7)


def test_docstring_examples_run():
    import doctest
    import importlib
    module = importlib.import_module("lti_reduce._real_output")
    outcome = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert outcome.attempted >= 10 and outcome.failed == 0


def test_reused_factors_give_the_same_result():
    from lti_reduce import hankel_factors
    sys = layer(50, n=8)
    factors = hankel_factors(real_output_system(sys))
    for criterion in ({"order": 3}, {"tol": 1.0}, {"energy": 0.2}):
        a = real_output_balanced_truncation(sys, **criterion)
        b = real_output_balanced_truncation(sys, **criterion, factors=factors)
        assert a.real_order == b.real_order and np.array_equal(a.real_system.A, b.real_system.A)
    with pytest.raises(ShapeError, match="HSVs of shape"):
        real_output_balanced_truncation(layer(51, n=5), order=2, factors=factors)


def test_a_layer_with_real_eigenvalues_is_kept_whole_at_full_size():
    """S4D/S5 initialisations have a real eigenvalue (k = 0 in ``A = -1/2 + i pi k``): the real
    system has it twice, and near full real order rounding may count n + 1 states; the
    layer's own n states are returned instead, exactly."""
    rng = np.random.default_rng(60)
    n = 6
    lam = np.exp(0.1 * (-0.5 + 1j * np.pi * np.arange(n)))
    sys = DiagonalStateSpace(lam, rng.standard_normal((n, 1)) + 1j * rng.standard_normal((n, 1)),
                             rng.standard_normal((1, n)) + 1j * rng.standard_normal((1, n)), dt=True)
    for res in (real_output_balanced_truncation(sys, tol=1e-14), real_output_balanced_truncation(sys, order=n)):
        assert res.order <= n
        if res.order == n:
            assert np.array_equal(res.system.eigenvalues, sys.eigenvalues) and res.error_bound == 0.0
    dense = StateSpace(np.diag(lam), sys.B, sys.C, dt=True)
    whole = real_output_balanced_truncation(dense, order=n)
    assert whole.order == n and np.allclose(np.sort_complex(whole.system.eigenvalues), np.sort_complex(lam))


def test_avoid_positive_real_eigenvalues_for_lru_like_layers():
    """LRU cannot hold an exactly real positive eigenvalue (angle 0): with the option, no
    reduced eigenvalue is real and positive, criteria still hold, and the layer still
    reproduces the reduced real system."""
    hits = 0
    for seed in range(8):
        sys = layer(70 + seed, n=10, m=2, p=2)
        for criterion in ({"order": 4}, {"energy": 0.1}, {"tol": 2.0}):
            plain = real_output_balanced_truncation(sys, **criterion)
            lam0 = np.asarray(plain.system.eigenvalues)
            hits += bool(np.any((lam0.imag == 0) & (lam0.real > 0)))
            res = real_output_balanced_truncation(sys, **criterion, avoid_positive_real=True)
            lam = np.asarray(res.system.eigenvalues)
            assert not np.any((lam.imag == 0) & (lam.real > 0))
            if "tol" in criterion:
                assert res.error_bound <= criterion["tol"]
            if "energy" in criterion:
                assert res.hsv[:res.real_order].sum() >= (1 - criterion["energy"]) * res.hsv.sum()
            if "order" in criterion:
                assert res.order <= 4
            s = response_points(True)
            assert np.allclose(real_output_system(res.system).evaluate(s), res.real_system.evaluate(s),
                               rtol=1e-9, atol=1e-9 * float(np.abs(res.real_system.evaluate(s)).max()))
    assert hits > 0       # the avoidance was exercised


def test_finite_horizon_gives_no_bound():
    sys = layer(80, n=6)
    res = real_output_balanced_truncation(sys, order=3, horizon=40)
    assert res.error_bound is None and res.order <= 3
    s = response_points(True)
    assert np.allclose(real_output_system(res.system).evaluate(s), res.real_system.evaluate(s),
                       rtol=1e-9, atol=1e-9 * float(np.abs(res.real_system.evaluate(s)).max()))
