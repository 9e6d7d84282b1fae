"""The issue's stress case: one input, a thousand states. A Cholesky factorisation of the
formed Gramian fails here (it is numerically rank deficient); the square-root factors must
not, and they must still give accurate Hankel singular values."""

import numpy as np
import pytest

from lti_reduce import StateSpace, balanced_truncation, gramian, hankel_singular_values


def _system(n, discrete, seed=0):
    rng = np.random.default_rng(seed)
    poles = -rng.uniform(0.1, 10.0, n)
    A = np.diag(poles) + 0.1 * rng.standard_normal((n, n)) / np.sqrt(n)
    if discrete:
        A = 0.9 * np.eye(n) + 0.05 * A / 10.0
    return StateSpace(A, rng.standard_normal((n, 1)), rng.standard_normal((1, n)), dt=1.0 if discrete else 0.0)


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
def test_m1_n1000_factors_and_hsvs(discrete):
    system = _system(1000, discrete)
    P = None
    with pytest.raises(np.linalg.LinAlgError):
        P = gramian(system, "c")
        np.linalg.cholesky(P)            # what a formed-Gramian method would do
    L = gramian(system, "c", factor=True)
    assert np.all(np.isfinite(L))
    # the factor reproduces the Gramian to rounding relative to its size
    assert np.linalg.norm(L @ L.T - P) <= 1e-10 * np.linalg.norm(P)
    hsv = hankel_singular_values(system)
    assert np.all(np.isfinite(hsv)) and np.all(np.diff(hsv) <= 0) and hsv[0] > 0
    # most of the thousand HSVs are numerically zero (m = p = 1), and exactly zero
    assert np.count_nonzero(hsv) < 100
    r = min(10, int(np.count_nonzero(hsv)) - 1)
    result = balanced_truncation(system, order=r)
    assert result.system.n == r and result.system.is_stable()
