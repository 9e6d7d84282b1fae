"""Fast paths of a batched diagonal reduction (issue 13): they must give what the plain path gives.

* a batch whose elements get different orders is projected once at the largest order and
  each element's matrices are leading blocks: equal to reducing the element alone;
* triangular Gramian factors are multiplied with BLAS ``trmm`` and the Cholesky route's
  Gramian is formed as a lower triangle by ``herk``: equal to the plain products.
"""

import numpy as np
import pytest

from lti_reduce import DiagonalStateSpace, balanced_truncation, gramian, hankel_singular_values
from lti_reduce import _gramians


def _batch(count=4, n=24, m=5, p=3, seed=0):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0.3, 0.97, (count, n)) * np.exp(1j * rng.uniform(0.1, 6.2, (count, n)))
    B = rng.standard_normal((count, n, m)) + 1j * rng.standard_normal((count, n, m))
    C = rng.standard_normal((count, p, n)) + 1j * rng.standard_normal((count, p, n))
    return DiagonalStateSpace(lam, B, C, dt=True)


def _response(system, z):
    A, B, C, D = (np.asarray(x) for x in (system.A, system.B, system.C, system.D))
    return C @ np.linalg.solve(z * np.eye(A.shape[0]) - A, B) + D


@pytest.mark.parametrize("method", ["sr", "bfsr"])
def test_batch_of_different_orders_equals_each_element_alone(method):
    batch = _batch()
    orders = [3, 9, 0, 14]
    results = balanced_truncation(batch, order=orders, method=method, warn=False)
    for i, (res, r) in enumerate(zip(results, orders)):
        alone = balanced_truncation(batch[i], order=r, method=method, warn=False)
        assert res.order == alone.order == r
        assert res.system.n == r and np.asarray(res.V).shape == (24, r)
        np.testing.assert_allclose(res.hsv, alone.hsv, rtol=1e-12, atol=0)
        for z in (1.2 + 0.3j, -1.5):
            np.testing.assert_allclose(_response(res.system, z), _response(alone.system, z), rtol=1e-10, atol=1e-12)
        # W^H V = I for the projections handed out (leading blocks of the batch's)
        np.testing.assert_allclose(np.asarray(res.W).conj().T @ np.asarray(res.V), np.eye(r), atol=1e-9)


def test_rank_deficient_element_next_to_a_full_one():
    # element 1 has one input direction only: its numerical rank is below the other's order,
    # the batch is projected at the larger order, and its own columns stay finite and exact
    batch = _batch(count=2, n=20, m=3, seed=1)
    B = np.array(batch.B)
    B[1] = B[1][:, :1] @ np.ones((1, 3))
    lam = np.array(batch.eigenvalues)
    lam[1, 10:] = lam[1, :10]                  # repeated poles: rank of the Hankel operator <= 10
    batch = DiagonalStateSpace(lam, B, batch.C, dt=True)
    hsv = hankel_singular_values(batch)
    rank = int(np.sum(hsv[1] > 0))
    assert rank <= 10
    results = balanced_truncation(batch, order=[15, rank], warn=False)
    assert all(np.all(np.isfinite(np.asarray(r.system.A))) for r in results)
    alone = balanced_truncation(batch[1], order=rank, warn=False)
    np.testing.assert_allclose(_response(results[1].system, 1.3j), _response(alone.system, 1.3j), rtol=1e-9)


def test_lower_triangle_gramian_and_triangular_products_match_plain_ones(monkeypatch):
    batch = _batch(count=3, n=30, m=7, p=4, seed=2)
    for kind in ("c", "o"):
        full = _gramians.diagonal_gramian(batch, kind)
        lower = _gramians.diagonal_gramian(batch, kind, hermitian=False)
        np.testing.assert_allclose(lower, np.tril(full), rtol=0, atol=1e-13 * np.abs(full).max())
        assert not np.any(np.triu(lower, 1))
    # factors from the Cholesky route (lower triangular) and plain HSVs agree with the exact recursion
    Lc = gramian(batch, "c", factor=True)
    assert not np.any(np.triu(Lc, 1))
    hsv_route = hankel_singular_values(batch)
    monkeypatch.setattr(_gramians, "CHOLESKY_ROUTE", False)
    hsv_exact = hankel_singular_values(batch)
    np.testing.assert_allclose(hsv_route, hsv_exact, rtol=1e-11, atol=0)


def test_triangle_test_agrees_with_triu_and_tril_entry_by_entry():
    """_triangle decides between trmm and a plain product: one nonzero entry anywhere off the
    triangle, in any matrix of the batch, must make it refuse that triangle."""
    from lti_reduce._balanced import _triangle
    rng = np.random.default_rng(7)

    def reference(L):
        flat = L.reshape((-1,) + L.shape[-2:])
        if not np.any(np.triu(flat, 1)):
            return "lower"
        if not np.any(np.tril(flat, -1)):
            return "upper"
        return None

    for n in (2, 3, 5):
        for batch in ((), (1,), (3,), (2, 2)):
            base = np.tril(rng.standard_normal(batch + (n, n)) + 1j * rng.standard_normal(batch + (n, n)))
            for L in (base, np.conj(np.swapaxes(base, -1, -2)).copy(), np.zeros(batch + (n, n))):
                assert _triangle(L) == reference(L)
                for index in np.ndindex(*(batch + (n, n))):
                    if index[-1] == index[-2]:
                        continue
                    poked = L.copy()
                    poked[index] = 1e-300
                    assert _triangle(poked) == reference(poked), (n, batch, index)
