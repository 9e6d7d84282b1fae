"""The diagonal path on torch tensors: same numbers as numpy, results stay torch tensors.

The core reaches torch only through the array-API namespace of the arrays it is given;
arithmetic is promoted to float64/complex128 whatever the input precision.
"""

import subprocess
import sys

import numpy as np
import pytest

from lti_reduce import DiagonalStateSpace, balanced_truncation, gramian, hankel_singular_values

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0 CPU)")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True, params=[True, False], ids=["host-fast-path", "array-api-path"])
def host_fast_path(request, monkeypatch):
    """Every test runs twice: with the numpy fast path for host tensors, and with the pure
    array-API (torch) loop that non-CPU devices take."""
    from lti_reduce import _hammarling
    monkeypatch.setattr(_hammarling, "HOST_FAST_PATH", request.param)
    return request.param


def lru_data(seed, n=12, m=3, p=2, batch=(), discrete=False):
    """LRU-like complex diagonal data (numpy complex128)."""
    rng = np.random.default_rng(seed)
    shape = batch + (n,)
    if discrete:
        lam = 0.95 * np.sqrt(rng.uniform(0.05, 1.0, shape)) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))
    else:
        lam = -rng.uniform(0.05, 2.0, shape) + 1j * rng.uniform(-4.0, 4.0, shape)
    B = rng.standard_normal(batch + (n, m)) + 1j * rng.standard_normal(batch + (n, m))
    C = rng.standard_normal(batch + (p, n)) + 1j * rng.standard_normal(batch + (p, n))
    D = rng.standard_normal(batch + (p, m)) + 0j
    return lam, B, C, D


def as_torch(arrays, device="cpu", dtype=None):
    return [torch.tensor(a, device=device, dtype=dtype) for a in arrays]


def to_np(x):
    return x.detach().cpu().resolve_conj().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def points(discrete):
    if discrete:
        return np.concatenate([np.exp(1j * np.array([0.0, 0.4, 1.3, -2.0, 3.0])), [1.5 + 0.2j]])
    return np.concatenate([1j * np.array([0.0, 0.7, -2.5, 4.0]), [0.5 + 1.0j, -0.01 + 3j]])


def assert_torch(x, device, dtype):
    assert isinstance(x, torch.Tensor), type(x)
    assert x.device.type == torch.device(device).type
    assert x.dtype == dtype, (x.dtype, dtype)


# --------------------------------------------------------------------------------------
# same numbers as numpy
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("device", DEVICES)
def test_hsv_equal_numpy(discrete, seed, device):
    data = lru_data(seed, discrete=discrete)
    dt = 1.0 if discrete else 0.0
    s_np = hankel_singular_values(DiagonalStateSpace(*data, dt=dt))
    s_t = hankel_singular_values(DiagonalStateSpace(*as_torch(data, device), dt=dt))
    assert_torch(s_t, device, torch.float64)
    np.testing.assert_allclose(to_np(s_t), s_np, rtol=1e-10, atol=1e-12 * s_np[0])
    # and both equal the dense numpy path
    s_dense = hankel_singular_values(DiagonalStateSpace(*data, dt=dt).to_dense())
    np.testing.assert_allclose(to_np(s_t), s_dense, rtol=1e-10, atol=1e-12 * s_np[0])


@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("match", ["truncate", "dc"])
@pytest.mark.parametrize("method", ["sr", "bfsr"])
@pytest.mark.parametrize("device", DEVICES)
def test_reduced_transfer_function_equal_numpy(discrete, match, method, device):
    data = lru_data(3, n=16, discrete=discrete)
    dt = 1.0 if discrete else 0.0
    r = 6
    ours_np = balanced_truncation(DiagonalStateSpace(*data, dt=dt), r, match=match, method=method)
    ours_t = balanced_truncation(DiagonalStateSpace(*as_torch(data, device), dt=dt), r, match=match,
                                 method=method)
    assert ours_t.order == ours_np.order == r
    assert ours_t.error_bound == pytest.approx(ours_np.error_bound, rel=1e-10)
    for x in (ours_t.system.A, ours_t.system.B, ours_t.system.C, ours_t.system.D, ours_t.V, ours_t.W):
        assert_torch(x, device, torch.complex128)
    assert_torch(ours_t.hsv, device, torch.float64)
    assert ours_t.system.dt == dt
    z = points(discrete)
    G_t = to_np(ours_t.system.evaluate(torch.tensor(z, device=device)))
    G_np = ours_np.system.evaluate(z)
    np.testing.assert_allclose(G_t, G_np, rtol=0, atol=1e-10 * np.abs(G_np).max())


@pytest.mark.parametrize("kind", ["c", "o"])
@pytest.mark.parametrize("factor", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_gramian_equal_numpy(kind, factor, device):
    data = lru_data(4)
    P_np = gramian(DiagonalStateSpace(*data), kind)
    out = gramian(DiagonalStateSpace(*as_torch(data, device)), kind, factor=factor)
    assert_torch(out, device, torch.complex128)
    P_t = to_np(out) @ to_np(out).conj().T if factor else to_np(out)
    np.testing.assert_allclose(P_t, P_np, rtol=0, atol=1e-12 * np.abs(P_np).max())


# --------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
def test_batched_per_element_orders(device):
    batch = (2, 3)
    data = lru_data(5, n=8, batch=batch)
    system_t = DiagonalStateSpace(*as_torch(data, device))
    assert system_t.batch_shape == batch
    hsv = hankel_singular_values(system_t)
    assert_torch(hsv, device, torch.float64)
    assert tuple(hsv.shape) == batch + (8,)
    orders = [1, 2, 3, 4, 5, 8]
    results = balanced_truncation(system_t, orders)
    assert len(results) == 6
    for i, result in enumerate(results):
        j, k = divmod(i, 3)
        single = DiagonalStateSpace(*(a[j, k] for a in data))
        expected = balanced_truncation(single, orders[i])
        assert result.order == orders[i]
        assert_torch(result.system.A, device, torch.complex128)
        np.testing.assert_allclose(to_np(hsv[j, k]), hankel_singular_values(single), rtol=1e-10)
        z = points(False)
        np.testing.assert_allclose(to_np(result.system.evaluate(torch.tensor(z, device=device))),
                                   expected.system.evaluate(z), rtol=0, atol=1e-10 * single.n)
        # indexing the torch batch gives the same element
        element = system_t[j][k]
        assert element.batch_shape == ()
        np.testing.assert_array_equal(to_np(element.eigenvalues), data[0][j, k])


# --------------------------------------------------------------------------------------
# precision: 32-bit inputs are promoted, the arithmetic is 64-bit
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("low, high", [(torch.complex64, torch.complex128), (torch.float32, torch.float64)],
                         ids=["complex64", "float32"])
def test_low_precision_inputs_are_promoted(low, high):
    data = lru_data(6, n=10)
    if low == torch.float32:
        data = [np.real(data[0]), np.real(data[1]), np.real(data[2]), np.real(data[3])]
    tensors = as_torch(data, dtype=low)
    system = DiagonalStateSpace(*tensors)
    for x in (system.eigenvalues, system.B, system.C, system.D):
        assert x.dtype == high
    # reference: numpy float64 on the *rounded* 32-bit values; 32-bit arithmetic would miss it by ~1e-7
    rounded = [t.to(high).numpy() for t in tensors]
    s_ref = hankel_singular_values(DiagonalStateSpace(*rounded))
    s = hankel_singular_values(system)
    assert s.dtype == torch.float64
    np.testing.assert_allclose(to_np(s), s_ref, rtol=1e-10, atol=1e-12 * s_ref[0])
    result = balanced_truncation(system, 4)
    assert result.system.A.dtype == high
    expected = balanced_truncation(DiagonalStateSpace(*rounded), 4)
    z = points(False)
    np.testing.assert_allclose(to_np(result.system.evaluate(torch.tensor(z))), expected.system.evaluate(z),
                               rtol=0, atol=1e-10 * np.abs(expected.system.evaluate(z)).max())


def test_core_does_not_import_torch():
    """lti_reduce itself never imports torch (only the arrays passed in may be torch tensors)."""
    code = ("import sys, numpy as np, lti_reduce as lr\n"
            "s = lr.DiagonalStateSpace(np.array([-1.0, -2.0]), np.ones((2, 1)), np.ones((1, 2)))\n"
            "lr.balanced_truncation(s, 1); lr.hankel_singular_values(s.to_dense())\n"
            "assert 'torch' not in sys.modules, 'lti_reduce imported torch'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
