"""``reduce_(..., output='real')`` and ``Compressor(..., output='real')``: the real system a
complex diagonal layer computes is reduced and the layer rebuilt from it."""

import copy

import numpy as np
import pytest
import torch

from lti_reduce import InvalidParameterError, real_output_balanced_truncation, real_output_system
from lti_reduce_torch import LRU, S4D, S5, Compressor, DenseLTI, get_adapter, reduce_

LAYERS = {"LRU": LRU, "S5": S5, "S4D": S4D}


def make(kind, h=3, n=12, seed=0, **kwargs):
    torch.manual_seed(seed)
    return torch.nn.Sequential(LAYERS[kind](h, n, dtype=torch.float64, **kwargs))


def real_response(system, points):
    """Transfer function of the real output map of a (torch) diagonal system, per element."""
    out = []
    systems = [system] if not system.batch_shape else [system[i] for i in range(system.batch_shape[0])]
    for s in systems:
        out.append(np.asarray(real_output_system(s).evaluate(points)))
    return np.stack(out)


@pytest.mark.parametrize("kind", ["LRU", "S5", "S4D"])
@pytest.mark.parametrize("readout", ["post", "pre"])
def test_reduced_layer_computes_the_reduced_real_system(kind, readout):
    model = make(kind, readout=readout)
    layer = model[0]
    adapter = get_adapter(layer)
    system = adapter.reduction_system(layer)
    report = reduce_(model, order=5, output="real")
    entry = report["0"]
    assert entry.status == "reduced", entry.reason
    assert entry.new_n == layer.n <= 5
    assert len(entry.hsv if kind != "S4D" else entry.hsv[0]) == 2 * 12
    # the layer's real output map is what the core's real-output reduction gives
    expected = real_output_balanced_truncation(system, order=5, avoid_positive_real=(kind == "LRU"))
    expected = expected if isinstance(expected, tuple) else (expected,)
    points = np.exp(1j * np.array([0.1, 0.7, 2.0, 3.0]))
    got = real_response(adapter.reduction_system(layer), points)
    want = np.stack([np.asarray(r.real_system.evaluate(points)) for r in expected])
    assert np.allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(want).max())
    assert entry.error_bound == pytest.approx(max(r.error_bound for r in expected), rel=1e-12)


@pytest.mark.parametrize("kind", ["LRU", "S5", "S4D"])
def test_output_error_is_within_the_bound(kind):
    """||y - y_r||_2 <= bound * ||u||_2 for every input sequence (zero initial state)."""
    model = make(kind, seed=1)
    full = copy.deepcopy(model)
    report = reduce_(model, energy=0.1, output="real")
    bound = report["0"].error_bound
    assert report["0"].status == "reduced" and bound > 0
    u = torch.randn(4, 300, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        err = (full(u) - model(u)).pow(2).sum(dim=(1, 2)).sqrt()
    assert bool((err <= bound * u.pow(2).sum(dim=(1, 2)).sqrt() * (1 + 1e-9)).all())


def test_lru_gets_no_real_positive_eigenvalue():
    """LRU's theta_log = log(angle) cannot hold angle 0: output='real' skips such orders
    instead of having the adapter refuse the layer."""
    refused_without = 0
    for seed in range(6):
        model = make("LRU", h=2, n=16, seed=seed)
        system = get_adapter(model[0]).reduction_system(model[0])
        report = reduce_(model, energy=0.1, output="real")
        assert report["0"].status == "reduced", report["0"].reason
        lam = get_adapter(model[0]).reduction_system(model[0]).eigenvalues
        assert not bool(((lam.imag.abs() < 1e-12) & (lam.real > 0)).any())
        assert torch.isfinite(model[0].theta_log).all()
        plain = real_output_balanced_truncation(system, energy=0.1)
        lam0 = plain.system.eigenvalues
        refused_without += bool(((lam0.imag == 0) & (lam0.real > 0)).any())
    assert refused_without > 0      # the avoidance mattered for some seed


def test_dense_layers_take_the_ordinary_path():
    torch.manual_seed(0)
    a = torch.nn.Sequential(DenseLTI(2, 6, dtype=torch.float64))
    b = copy.deepcopy(a)
    ra = reduce_(a, order=3, output="real")
    rb = reduce_(b, order=3)
    assert ra["0"].new_n == rb["0"].new_n == 3
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_compressor_with_real_output():
    model = make("S5", seed=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    comp = Compressor(model, opt, mode="tolerance", energy=0.1, events=[1], output="real", min_ratio=None)
    report = comp.step(1)
    assert report.changed and "output=real" in report.criterion
    assert model[0].n == report["0"].new_n < 12
    # the optimizer holds the new parameters
    held = {id(p) for group in opt.param_groups for p in group["params"]}
    assert all(id(p) in held for p in model.parameters())


def test_bad_output_arguments():
    model = make("S5")
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InvalidParameterError, match="output must be 'complex'.*'real'.*got 'imag'"):
        reduce_(model, order=4, output="imag")
    with pytest.raises(InvalidParameterError, match="select='balanced'.*smallest"):
        reduce_(model, order=4, output="real", select="smallest")
    with pytest.raises(InvalidParameterError, match="output must be"):
        Compressor(model, energy=0.1, events=[1], output=None)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_s4d_channels_share_one_order_and_low_rank_channels_are_padded():
    model = make("S4D", h=4, n=12)
    layer = model[0]
    with torch.no_grad():                 # channel 0 sees one mode only: rank 2 as a real system
        layer.C_re[0, 1:] = 0.0
        layer.C_im[0, 1:] = 0.0
    full = copy.deepcopy(model)
    system = get_adapter(layer).reduction_system(layer)
    per_channel = real_output_balanced_truncation(system, energy=0.2)
    k = max(r.order for r in per_channel)
    report = reduce_(model, energy=0.2, output="real")
    entry = report["0"]
    assert entry.status == "reduced" and entry.new_n == layer.n == k
    assert "padded with dead states" in entry.reason
    # every other channel is the core's reduction of that channel at order k
    reduced = get_adapter(layer).reduction_system(layer)
    points = np.exp(1j * np.array([0.2, 1.0, 2.5]))
    for c in range(1, 4):
        want = real_output_balanced_truncation(system[c], order=k).real_system.evaluate(points)
        got = real_output_system(reduced[c]).evaluate(points)
        assert np.allclose(got, want, rtol=1e-8, atol=1e-8 * np.abs(np.asarray(want)).max())
    # channel 0 is kept exactly (its one mode plus dead states)
    u = torch.randn(2, 80, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model(u)[..., 0], full(u)[..., 0], atol=1e-10)


def test_complex_reduction_taken_when_better_for_the_real_output():
    """An LRU mode of nearly zero angle makes the real-output family skip most orders (real
    positive eigenvalues): at order=k the published reduction, whose bound also holds for
    the real output, is then taken when its bound is smaller."""
    from lti_reduce import balanced_truncation
    model = make("LRU", h=2, n=16, seed=0)
    with torch.no_grad():
        model[0].theta_log[0] = float(np.log(1e-3))
    system = get_adapter(model[0]).reduction_system(model[0])
    real = real_output_balanced_truncation(system, order=10, avoid_positive_real=True)
    cplx = balanced_truncation(system, order=10)
    report = reduce_(model, order=10, output="real")
    entry = report["0"]
    assert entry.status == "reduced"
    assert real.order < 10 and cplx.error_bound < real.error_bound       # the premise of the test
    assert "complex reduction is better" in entry.reason
    assert entry.new_n == model[0].n == 10 and entry.error_bound == pytest.approx(cplx.error_bound)
