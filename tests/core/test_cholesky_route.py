"""The closed-form Gramian + Cholesky route of diagonal factors against the exact recursion.

The route is taken only where its a-posteriori estimate promises the HSV accuracy of the
exact recursion (1e-10 relative to SLICOT for ``s_i >= 1e-6 s_1``); these tests check
both that it is taken for LRU-shaped systems (the fast path is real) and that its HSVs
then agree with the exact route's, and that ill-conditioned systems fall back.
"""

import numpy as np
import pytest

from lti_reduce import DiagonalStateSpace, hankel_singular_values
from lti_reduce import _gramians

EPS = np.finfo(float).eps


def lru_like(n, m, p, seed, r_min=0.9, r_max=0.999, continuous=False):
    rng = np.random.default_rng(seed)
    modulus = np.sqrt(rng.uniform(r_min ** 2, r_max ** 2, n))
    lam = modulus * np.exp(1j * rng.uniform(0, 2 * np.pi, n))
    B = (rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))) / np.sqrt(2 * m)
    C = (rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))) / np.sqrt(n)
    if continuous:
        lam = np.log(lam)
        return DiagonalStateSpace(lam, B, C, dt=0.0)
    return DiagonalStateSpace(lam, B, C, dt=True)


def exact_hsv(system, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(_gramians, "CHOLESKY_ROUTE", False)
        return hankel_singular_values(system)


def route_taken(system):
    P = _gramians.diagonal_gramian(system, "c")
    _, accurate = _gramians._cholesky_route(np, P, system.m)
    return accurate


def compare(fast, exact):
    keep = exact >= 1e-6 * exact[..., :1]
    return np.max(np.abs(fast - exact)[keep] / exact[keep])


@pytest.mark.parametrize("n, m, p, continuous", [(96, 128, 128, False), (96, 4, 4, False), (64, 64, 8, False),
                                                 (64, 16, 16, True)])
def test_route_is_taken_and_matches_the_exact_recursion(n, m, p, continuous, monkeypatch):
    system = lru_like(n, m, p, seed=n + m, continuous=continuous)
    accurate = route_taken(system)
    assert accurate is not None and bool(np.all(accurate))
    assert compare(hankel_singular_values(system), exact_hsv(system, monkeypatch)) < 1e-11


def test_batched_route_with_one_element_falling_back(monkeypatch):
    good = lru_like(24, 8, 8, seed=1)
    # eigenvalues clustered in 1e-3 and one input: the Cauchy-Gramian is numerically singular
    rng = np.random.default_rng(2)
    lam = 0.5 + 1e-3 * rng.uniform(size=24) + 1j * 1e-3 * rng.uniform(size=24)
    bad = DiagonalStateSpace(lam, np.tile(rng.standard_normal((24, 1)), (1, 8)), good.C, dt=True)
    assert not bool(np.all(route_taken(bad) if route_taken(bad) is not None else [False]))
    stacked = DiagonalStateSpace(np.stack([good.eigenvalues, bad.eigenvalues]), np.stack([good.B, bad.B]),
                                 np.stack([good.C, bad.C]), dt=True)
    fast = hankel_singular_values(stacked)
    exact = exact_hsv(stacked, monkeypatch)
    assert compare(fast, exact) < 1e-11
    # the element that failed the test got the exact recursion's own controllability factor
    Lc = _gramians.diagonal_factors(stacked)[0]
    assert np.array_equal(Lc[1], _gramians.diagonal_factor(np, bad.eigenvalues, bad.B, True))


def test_rank_deficient_gramian_falls_back(monkeypatch):
    """m = 1 with n = 40 spread eigenvalues: the Cauchy Gramian's condition number is far beyond
    1/eps, so the route must be refused and the exact factor used (small HSVs kept accurate)."""
    system = lru_like(40, 1, 1, seed=5, r_min=0.0, r_max=0.9)
    accurate = route_taken(system)
    assert accurate is None or not bool(np.all(accurate))
    fast, exact = hankel_singular_values(system), exact_hsv(system, monkeypatch)
    assert np.array_equal(fast, exact)


def test_slycot_agrees_on_the_route(monkeypatch):
    slycot = pytest.importorskip("slycot")
    system = lru_like(24, 12, 12, seed=7)
    assert bool(np.all(route_taken(system)))
    lam, B, C = system.eigenvalues, system.B, system.C
    # realified system: states (Re x, Im x), inputs and outputs split likewise
    A = np.block([[np.diag(lam.real), -np.diag(lam.imag)], [np.diag(lam.imag), np.diag(lam.real)]])
    Br = np.block([[B.real, -B.imag], [B.imag, B.real]])
    Cr = np.block([[C.real, -C.imag], [C.imag, C.real]])
    n = A.shape[0]
    out = slycot.ab09ad("D", "B", "N", n, Br.shape[1], Cr.shape[0], A, Br, Cr, nr=2, tol=0.0)
    hsv_ref = np.sort(out[-1])[::-1][::2]              # each HSV of the complex system twice
    hsv = hankel_singular_values(system)
    assert compare(hsv, hsv_ref) < 1e-10


def test_array_api_path_of_the_route_with_a_fallback(monkeypatch):
    """The device path (torch without the host shortcut) takes the route and falls back per element."""
    torch = pytest.importorskip("torch")
    from lti_reduce import _hammarling
    good = lru_like(24, 8, 8, seed=1)
    rng = np.random.default_rng(2)
    lam = 0.5 + 1e-3 * rng.uniform(size=24) + 1j * 1e-3 * rng.uniform(size=24)
    bad = DiagonalStateSpace(lam, np.tile(rng.standard_normal((24, 1)), (1, 8)), good.C, dt=True)
    arrays = [torch.as_tensor(np.stack([getattr(good, k), getattr(bad, k)])) for k in ("eigenvalues", "B", "C", "D")]
    stacked = DiagonalStateSpace(*arrays, dt=True)
    host = hankel_singular_values(stacked)
    monkeypatch.setattr(_hammarling, "HOST_FAST_PATH", False)
    device_path = hankel_singular_values(stacked)
    assert isinstance(device_path, torch.Tensor)
    assert compare(device_path.numpy(), host.numpy()) < 1e-11
