"""Acceptance tests of in-training compression: planted structure, the published readout,
unit-circle refusals through ``reduce_``, a short training run, and ``torch.compile``."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import lti_reduce  # noqa: E402
from lti_reduce_torch import Compressor, get_adapter, reduce_  # noqa: E402
from lti_reduce_torch.layers import LRU, S4D, S5  # noqa: E402

F64 = torch.float64


def _planted_lru(h, n, k, seed=0, leak=1e-4):
    """An LRU whose modes ``0..k-1`` carry almost all input-output energy (the others' B
    and C are scaled by ``leak``)."""
    torch.manual_seed(seed)
    layer = LRU(h, n, dtype=F64)
    with torch.no_grad():
        scale = torch.full((n,), leak, dtype=F64)
        scale[:k] = 1.0
        layer.B_re.mul_(scale[:, None])
        layer.B_im.mul_(scale[:, None])
        layer.C_re.mul_(scale[None, :])
        layer.C_im.mul_(scale[None, :])
    return layer


def _eigenvalues(layer):
    return get_adapter(layer).reduction_system(layer).eigenvalues


def test_planted_modes_are_found_and_kept():
    h, n, k = 4, 24, 3
    layer = _planted_lru(h, n, k)
    planted = _eigenvalues(layer)[:k].clone()
    report = reduce_(layer, energy=1e-3)
    entry = report.layers[0]
    assert entry.status == "reduced" and entry.new_n == k and layer.n == k
    # the HSV energy outside the planted modes is tiny: the chosen cut is exactly k
    hsv = torch.tensor(entry.hsv, dtype=F64)
    assert float(hsv[k:].sum() / hsv.sum()) < 1e-3 < float(hsv[k - 1:].sum() / hsv.sum())
    kept = _eigenvalues(layer)
    # every planted eigenvalue is kept (perturbed only by the leak's square)
    distance = (planted[:, None] - kept[None, :]).abs().min(dim=1).values
    assert float(distance.max()) < 1e-6


@pytest.mark.parametrize("cls", [LRU, S5, S4D])
def test_published_readout_obeys_the_error_bound(cls):
    torch.manual_seed(1)
    h, n = 3, 20
    layer = cls(h, n, dtype=F64)
    assert layer.readout == "post"
    u = torch.randn(4, 200, h, dtype=F64)
    y = layer(u).detach()
    report = reduce_(layer, order=6)
    entry = report.layers[0]
    assert entry.status == "reduced" and layer.n == 6
    y_r = layer(u).detach()
    # per channel-stacked sequence norm: ||y - y_r||_2 <= bound ||u||_2 (the bound of the
    # complex system holds for its real part, and for S4D for every channel)
    error = torch.linalg.vector_norm(y - y_r, dim=(1, 2))
    budget = entry.error_bound * torch.linalg.vector_norm(u, dim=(1, 2))
    assert bool((error <= budget).all()), (error, budget)
    assert float(error.max()) > 0


def test_reduced_eigenvalue_outside_the_unit_circle_leaves_the_layer_alone():
    # a finite horizon allows an unstable layer; its reduced system keeps the unstable
    # mode, which the LRU cannot hold: reported as refused, parameters untouched
    torch.manual_seed(2)
    layer = LRU(2, 6, dtype=F64)
    with torch.no_grad():
        layer.nu_log[0] = -50.0               # |lambda_0| = exp(-exp(-50)) == 1.0 in float64
        layer.B_re[0].mul_(10.0)              # and make that mode dominant, so it is kept
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    report = reduce_(layer, order=3, horizon=50)
    entry = report.layers[0]
    assert entry.status == "refused", entry
    assert "modulus" in entry.reason or "unit circle" in entry.reason, entry.reason
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())


class _Classifier(nn.Module):
    def __init__(self, h=8, n=32, classes=2):
        super().__init__()
        self.encoder = nn.Linear(1, h)
        self.ssm = LRU(h, n)
        self.head = nn.Linear(h, classes)

    def forward(self, u):
        x = self.encoder(u)
        x = x + nn.functional.gelu(self.ssm(x))
        return self.head(x.mean(dim=1))


def _batch(generator, size=64, length=48):
    """Label: does the first half of the sequence carry more energy than the second?"""
    u = torch.randn(size, length, 1, generator=generator)
    u[: size // 2, : length // 2] *= 2.0
    u[size // 2:, length // 2:] *= 2.0
    labels = torch.cat([torch.zeros(size // 2), torch.ones(size - size // 2)]).long()
    return u, labels


def test_training_compresses_mid_run_and_keeps_learning():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = _Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    compressor = Compressor(model, optimizer, mode="tolerance", energy=0.05, events=[15, 25])
    losses, sizes = [], []
    for step in range(1, 81):
        u, labels = _batch(generator)
        loss = nn.functional.cross_entropy(model(u), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        compressor.step(step)
        sizes.append(model.ssm.n)
    assert sizes[0] == 32 and sizes[-1] < 32, sizes          # compressed mid-training
    assert set(model.parameters()) == {p for g in optimizer.param_groups for p in g["params"]}
    after_event = sum(losses[25:35]) / 10
    final = sum(losses[-10:]) / 10
    assert final < after_event, (after_event, final)        # still learning after the cut
    assert final < 0.5 * losses[0]


@pytest.mark.slow
# torch's own deprecations, raised inside dynamo while it traces (not by this package)
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
# expected: the complex recurrence runs as eager code inside the compiled graph
@pytest.mark.filterwarnings("ignore:Torchinductor does not support code generation for complex:UserWarning")
def test_compiled_reduced_model_matches_eager():
    torch.manual_seed(3)
    model = _Classifier(h=4, n=16).eval()
    reduce_(model, order=5)
    u = torch.randn(2, 24, 1)
    eager = model(u)
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(u), eager, rtol=1e-5, atol=1e-6)
    # surgery after compiling needs a recompile: the compiled module follows the new sizes
    reduce_(model, order=3)
    torch.testing.assert_close(torch.compile(model)(u), model(u), rtol=1e-5, atol=1e-6)


def test_core_is_called_on_the_parameters_device_in_complex128():
    layer = LRU(2, 8)      # float32 parameters
    system = get_adapter(layer).reduction_system(layer)
    assert system.B.dtype == torch.complex128 and system.B.device == layer.B_re.device
    result = lti_reduce.balanced_truncation(system, order=3)
    assert isinstance(result.system.A, torch.Tensor) and result.system.A.dtype == torch.complex128
