"""GPU readiness, checked on the CPU: how often a reduction event reads values back to the host.

On a GPU every host read (``bool(t)``, ``float(t)``, ``.item()``, ``.tolist()``, ``.cpu()``,
``.numpy()``) waits for the device to finish. The counts below are taken with
:class:`lti_reduce_torch.diagnostics.HostReadCounter`, which sees these calls on CPU tensors
too, so a guard that reads one value per parameter, per channel or per intermediate
container cannot creep back in.

Budget of one ``reduce_`` (issue 13, item 4): per layer, at most ``PER_LAYER`` reads (the
adapter's check of its own system, the guards of the rebuild fetched together, the commit
check); per group of stacked layers, at most ``PER_GROUP`` (stability, the host factor
recursion's transfers, the HSVs, one finiteness check of all reduced matrices). Neither
grows with n, h, or the number of S4D channels.
"""

import pytest

torch = pytest.importorskip("torch")
from lti_reduce_torch import reduce_, register_adapter  # noqa: E402
from lti_reduce_torch.adapters import LRUAdapter  # noqa: E402
from lti_reduce_torch.diagnostics import HostReadCounter  # noqa: E402
from lti_reduce_torch.layers import LRU, S4D, S5  # noqa: E402
from lti_reduce_torch.toolkit import probe_points  # noqa: E402

#: measured 2026-11-30: 7 per layer and 9 per group (4 of them the host factor recursion's
#: transfers); the budget leaves one spare per layer (before issue 13: 63 for one LRU layer,
#: 628 for one S4D layer of 64 channels)
PER_LAYER = 8
PER_GROUP = 9


def _count_reduce(model, **criterion):
    probe_points()                  # made once per device and cached: not part of every event
    with HostReadCounter() as counter:
        report = reduce_(model, **criterion)
    return counter, report


def test_counter_sees_each_kind_of_read():
    x = torch.randn(4)
    with HostReadCounter() as counter:
        bool((x > 0).all())
        float(x.max())
        int(x.argmax())
        x.tolist()
        x.cpu().numpy()
        torch.tensor([1.0, 2.0])
    assert counter.reads == {"__bool__": 1, "__float__": 1, "__int__": 1, "tolist": 1, "cpu": 1}
    assert counter.uploads == 1


@pytest.mark.parametrize("make", [lambda n: LRU(8, n), lambda n: S5(8, n), lambda n: S4D(8, n)],
                         ids=["LRU", "S5", "S4D"])
def test_one_layer_event_reads_a_small_constant(make):
    torch.manual_seed(0)
    counts = []
    for n in (16, 48):                              # the count does not grow with n
        model = torch.nn.Sequential(make(n))
        counter, report = _count_reduce(model, energy=0.1)
        assert report.layers[0].status == "reduced"
        counts.append(counter.total)
    assert counts[0] == counts[1]
    assert counts[0] <= PER_LAYER + PER_GROUP, counter.reads


def test_s4d_reads_do_not_grow_with_channels():
    torch.manual_seed(0)
    counts = []
    for h in (2, 32):
        counter, report = _count_reduce(torch.nn.Sequential(S4D(h, 24)), energy=0.1)
        assert report.layers[0].status == "reduced"
        counts.append(counter.total)
    assert counts[0] == counts[1]


def test_stacked_lru_event_reads_per_layer_and_per_group():
    torch.manual_seed(0)
    layers = 4
    model = torch.nn.Sequential(*(LRU(8, 32) for _ in range(layers)))
    counter, report = _count_reduce(model, energy=0.1)
    assert all(entry.status == "reduced" for entry in report.layers)
    assert counter.total <= layers * PER_LAYER + PER_GROUP, counter.reads
    assert counter.uploads == 0


@pytest.mark.parametrize("mode", ["sequential", "chunked", "assoc", "fft"])
@pytest.mark.parametrize("cls", [LRU, S5, S4D])
def test_forward_and_backward_without_host_traffic(cls, mode):
    torch.manual_seed(0)
    layer = cls(4, 8, mode=mode)
    u = torch.randn(2, 20, 4)
    with HostReadCounter() as counter:
        layer(u).square().sum().backward()
    assert counter.total == 0, counter.reads
    assert counter.uploads == 0


def test_check_finite_names_the_array_and_can_be_skipped():
    import numpy as np
    from lti_reduce import DiagonalStateSpace, NonFiniteError, StateSpace
    lam, B, C = np.array([0.5, 0.2]), np.ones((2, 1)), np.ones((1, 2))
    bad = C.copy()
    bad[0, 1] = np.nan
    with pytest.raises(NonFiniteError, match="^C contains NaN"):
        DiagonalStateSpace(lam, B, bad, dt=True)
    with pytest.raises(NonFiniteError, match="^C contains NaN"):
        StateSpace(np.diag(lam), B, bad, dt=True)
    unchecked = DiagonalStateSpace(lam, B, bad, dt=True, check_finite=False)
    assert np.isnan(unchecked.C[0, 1])


def test_batched_truncation_equals_element_by_element():
    """The batch is truncated in groups of equal order; each result is the single system's."""
    import numpy as np
    from lti_reduce import DiagonalStateSpace, balanced_truncation
    rng = np.random.default_rng(3)
    lam = 0.95 * np.exp(1j * rng.uniform(0, 6, (3, 10))) * rng.uniform(0.3, 1, (3, 10))
    B = rng.standard_normal((3, 10, 2)) + 1j * rng.standard_normal((3, 10, 2))
    C = rng.standard_normal((3, 2, 10)) + 1j * rng.standard_normal((3, 2, 10))
    batch = DiagonalStateSpace(torch.as_tensor(lam), torch.as_tensor(B), torch.as_tensor(C), dt=True)
    results = balanced_truncation(batch, order=[4, 6, 4])
    assert [r.order for r in results] == [4, 6, 4]
    for i, got in enumerate(results):
        one = balanced_truncation(batch[i], order=got.order)
        for name in "ABCD":
            assert torch.allclose(getattr(got.system, name), getattr(one.system, name), rtol=1e-10, atol=1e-12)
        assert got.error_bound == pytest.approx(one.error_bound, rel=1e-12)


class _NaNLRU(LRU):
    """An LRU whose adapter returns a NaN in one new value (the guard must still name it)."""


class _NaNAdapter(LRUAdapter):
    def rebuild(self, module, reduced):
        values = super().rebuild(module, reduced)
        values["theta_log"] = values["theta_log"].clone()
        values["theta_log"][0] = float("nan")
        return values


register_adapter(_NaNLRU, _NaNAdapter())


def test_guards_fetched_together_still_name_the_culprit():
    torch.manual_seed(0)
    model = torch.nn.Sequential(_NaNLRU(4, 12), LRU(4, 12))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    with pytest.raises(ValueError, match="new value of 'theta_log' contains NaN or infinity"):
        reduce_(model, energy=0.1)
    assert list(model.parameters()) == params                  # same objects: nothing swapped
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_unchanged_values_keep_their_parameter_objects():
    torch.manual_seed(0)
    model = torch.nn.Sequential(LRU(4, 12))
    D = model[0].D
    report = reduce_(model, order=12)                        # full order: nothing to reduce
    assert report.layers[0].status == "unchanged" and model[0].D is D
    report = reduce_(model, order=6)
    assert report.layers[0].status == "reduced" and model[0].n == 6
    assert model[0].D is D                       # D comes back bit-identical: the object is kept


class _Calls(torch.overrides.TorchFunctionMode):
    """Counts torch function calls (each one a kernel launch on an accelerator)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def test_diagonal_recursion_runs_on_host_copies_not_as_a_loop_of_kernels(monkeypatch):
    """The exact diagonal recursion of torch tensors runs on host numpy arrays: a fixed number of
    torch calls whatever n (on a GPU the device loop would launch about 35 kernels per state and
    factor). An accelerator's tensors take that route too (two transfers); the meta device and
    tensors that require grad keep the array-API loop, which runs on meta (shapes only)."""
    import array_api_compat.torch as xp

    from lti_reduce import _hammarling
    calls = []
    for n in (16, 64):
        lam = torch.full((n,), 0.9, dtype=torch.complex128) * torch.exp(1j * torch.linspace(0, 3, n))
        M = torch.randn(n, 1, dtype=torch.complex128)
        with _Calls() as mode:
            U = _hammarling.diagonal_factor(xp, lam, M, True)
        calls.append(mode.calls)
        assert U.shape == (n, n) and U.device.type == "cpu"
    assert calls[0] == calls[1] <= 20, calls          # measured 15 (transfers, views, result)
    # the device loop, for comparison: its torch calls grow with n
    monkeypatch.setattr(_hammarling, "HOST_FAST_PATH", False)
    with _Calls() as mode:
        _hammarling.diagonal_factor(xp, lam, M, True)
    assert mode.calls > 10 * n                        # n = 64 states
    monkeypatch.setattr(_hammarling, "HOST_FAST_PATH", True)
    # the routing decision
    assert _hammarling._host_route(lam, M)
    assert not _hammarling._host_route(lam, M.clone().requires_grad_())
    meta = (lam.to("meta"), M.to("meta"))
    assert not _hammarling._host_route(*meta)
    U = _hammarling.diagonal_factor(xp, *meta, True)
    assert U.shape == (n, n) and U.device.type == "meta"
    monkeypatch.setattr(_hammarling, "_device", lambda x: torch.device("cuda", 0))
    assert _hammarling._host_route(lam, M)          # an accelerator's tensors: host copies
