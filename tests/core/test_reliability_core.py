"""Issue 8 items 2-5 and 7 (core): extreme scaling, static gains, the stable/unstable split at
the boundary, factors of another system, ``dt=np.True_``. Each test failed before the fix."""

import numpy as np
import pytest

import lti_reduce as lr
from lti_reduce import InvalidParameterError, LTIReduceError


def _system(seed, n=6, complex_=False, dt=0.0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    if complex_:
        A = A + 0.3j * rng.standard_normal((n, n))
    A = A - (np.linalg.eigvals(A).real.max() + 0.5) * np.eye(n)
    if dt:
        A = 0.9 * A / np.abs(np.linalg.eigvals(A)).max()
    return lr.StateSpace(A, rng.standard_normal((n, 2)), rng.standard_normal((3, n)), dt=dt)


# --------------------------------------------------------------------------------------
# item 2: extreme scaling is refused (a typed error), never a wrong number
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("exponent", [138, 150, -140, -150])
@pytest.mark.parametrize("complex_", [False, True])
def test_extreme_scaling_raises_instead_of_wrong_numbers(exponent, complex_):
    """Before: HSVs / hinf_norm of A * 10**exponent wrong by up to O(1) (measured 8.2 and 0.096
    relative), silently."""
    base = _system(0, complex_=complex_)
    scaled = lr.StateSpace(base.A * 10.0 ** exponent, base.B, base.C)
    for call in (lambda: lr.hankel_singular_values(scaled), lambda: lr.hinf_norm(scaled),
                 lambda: lr.h2_norm(scaled), lambda: lr.gramian(scaled),
                 lambda: lr.balanced_truncation(scaled, 2), lambda: lr.hankel_norm(scaled)):
        with pytest.raises(InvalidParameterError, match=r"A has entries of size .* rescale time"):
            call()


@pytest.mark.parametrize("exponent", [100, -100])
def test_large_but_representable_scaling_is_exact(exponent):
    """Inside the accepted range the continuous-time scaling law holds: hsv(aA) = hsv(A) / a."""
    base = _system(1, complex_=True)
    a = 10.0 ** exponent
    scaled = lr.StateSpace(base.A * a, base.B, base.C)
    s0, s = lr.hankel_singular_values(base), lr.hankel_singular_values(scaled)
    np.testing.assert_allclose(s * a, s0, rtol=1e-12, atol=1e-12 * s0[0])
    assert lr.hinf_norm(scaled).norm * a == pytest.approx(lr.hinf_norm(base).norm, rel=1e-10)


# --------------------------------------------------------------------------------------
# item 3: n = 0 (a static gain)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [0.0, 1.0])
@pytest.mark.parametrize("diagonal", [False, True])
def test_static_gain_n0(dt, diagonal):
    D = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])
    if diagonal:
        G = lr.DiagonalStateSpace(np.zeros(0), np.zeros((0, 2)), np.zeros((3, 0)), D, dt=dt)
    else:
        G = lr.StateSpace(np.zeros((0, 0)), np.zeros((0, 2)), np.zeros((3, 0)), D, dt=dt)
    hsv = np.asarray(lr.hankel_singular_values(G))
    assert hsv.shape == (0,) and hsv.dtype == np.float64
    for kind in ("c", "o"):
        for factor in (False, True):
            assert np.asarray(lr.gramian(G, kind, factor=factor)).shape == (0, 0)
    assert lr.hankel_norm(G) == 0.0
    assert lr.hinf_norm(G).norm == pytest.approx(np.linalg.norm(D, 2), rel=1e-15)
    expected_h2 = np.linalg.norm(D) if dt else np.inf       # continuous: D delta(t) has infinite energy
    assert lr.h2_norm(G) == pytest.approx(expected_h2, rel=1e-15)
    factors = lr.hankel_factors(G)
    assert factors.U.shape == factors.Vh.shape == (0, 0) and factors.hsv.shape == (0,)


# --------------------------------------------------------------------------------------
# item 4: unstable='keep' with eigenvalues within rounding of the boundary
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("discrete", [False, True])
def test_keep_split_at_the_boundary_is_consistent_or_typed(seed, discrete):
    """Eigenvalues at alpha +- 1e-17: a consistent split (the kept states have inf HSVs, the
    reduced system keeps their poles) or a typed error, never LAPACK's sort-condition error."""
    rng = np.random.default_rng(seed)
    n = 7
    boundary = 1.0 if discrete else 0.0
    lam = np.concatenate([boundary + np.array([1e-17, -1e-17, 0.0]) + 1j * rng.uniform(-1, 1, 3) * 1e-17,
                          (0.5 if discrete else -1.0) * rng.uniform(0.2, 1, n - 3) + 0.3j * rng.standard_normal(n - 3)])
    T = np.diag(lam) + 3 * np.triu(rng.standard_normal((n, n)), 1)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    G = lr.StateSpace(Q @ T @ Q.conj().T, rng.standard_normal((n, 2)), rng.standard_normal((2, n)),
                      dt=1.0 if discrete else 0.0)
    try:
        result = lr.balanced_truncation(G, tol=1e300, unstable="keep")   # keep only the split-off part
    except LTIReduceError as error:
        assert isinstance(error, ValueError)
        return
    hsv = np.asarray(result.hsv)
    kept = int(np.isinf(hsv).sum())
    assert 0 < kept == result.order and np.all(np.isfinite(hsv[kept:]))


# --------------------------------------------------------------------------------------
# item 5: factors of another system are refused
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [0.0, 1.0])
def test_factors_of_another_system_are_refused(dt):
    """Before: the factors of a system of the same size were used silently (bound 0.195 reported,
    5.98 actual)."""
    G1, G2 = _system(3, dt=dt), _system(4, dt=dt)
    with pytest.raises(InvalidParameterError, match="factors do not belong to this system"):
        lr.balanced_truncation(G1, 3, factors=lr.hankel_factors(G2))
    own = lr.balanced_truncation(G1, 3, factors=lr.hankel_factors(G1))
    np.testing.assert_array_equal(np.asarray(own.hsv), np.asarray(lr.hankel_singular_values(G1)))


def test_factors_of_another_batch_element_are_refused():
    rng = np.random.default_rng(5)
    lam = -rng.uniform(0.1, 2, (2, 4)) + 1j * rng.standard_normal((2, 4))
    B, C = rng.standard_normal((2, 4, 1)) + 0j, rng.standard_normal((2, 2, 4)) + 0j
    G = lr.DiagonalStateSpace(lam, B, C)
    swapped = lr.DiagonalStateSpace(lam[::-1].copy(), B[::-1].copy(), C[::-1].copy())
    with pytest.raises(InvalidParameterError, match=r"batch element 0"):
        lr.balanced_truncation(G, [2, 2], factors=lr.hankel_factors(swapped))
    with pytest.raises(lr.ShapeError, match="factors.Lc has shape"):
        lr.balanced_truncation(G[0], 2, factors=lr.hankel_factors(G))


def test_factors_must_be_hankel_factors():
    G = _system(6)
    with pytest.raises(InvalidParameterError, match="HankelFactors"):
        lr.balanced_truncation(G, 2, factors=(1, 2, 3))


# --------------------------------------------------------------------------------------
# item 7: dt=np.True_ is accepted like True
# --------------------------------------------------------------------------------------
def test_numpy_bool_dt_accepted_like_python_bool():
    A, B, C = np.array([[0.5]]), np.array([[1.0]]), np.array([[1.0]])
    assert lr.StateSpace(A, B, C, dt=np.True_).dt is True
    assert lr.DiagonalStateSpace(np.array([0.5]), B, C, dt=np.True_).dt is True
    assert lr.StateSpace(-A, B, C, dt=np.False_).dt == 0.0
