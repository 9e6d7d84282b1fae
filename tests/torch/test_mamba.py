"""Selective SSMs (experimental): d_state reduction of mambapy Mamba blocks through the LTI proxy."""

import doctest
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mambapy")

from torch import nn  # noqa: E402
from mambapy.mamba import Mamba, MambaConfig, MambaBlock  # noqa: E402

from lti_reduce import DiagonalStateSpace, hankel_singular_values, InvalidParameterError  # noqa: E402
import lti_reduce_torch.mamba as mamba_mod  # noqa: E402
from lti_reduce_torch.mamba import (reduce_mamba_, mamba_state_sizes, proxy_systems, state_energy,  # noqa: E402
                                    load_reduced_mamba_state_dict_, CalibrationError, UnsupportedMambaError,
                                    MambaReductionReport)

D_MODEL = 8


def make(seed=0, n_layers=2, d_state=16, **kw):
    torch.manual_seed(seed)
    return Mamba(MambaConfig(d_model=D_MODEL, n_layers=n_layers, d_state=d_state, **kw))


def batch(seed, b=4, L=10):
    return torch.randn(b, L, D_MODEL, generator=torch.Generator().manual_seed(seed))


def snapshot(model):
    return ({k: v for k, v in model.named_parameters()},
            {k: v.detach().clone() for k, v in model.named_parameters()},
            [blk.mixer.config for blk in model.layers])


def assert_unchanged(model, snap):
    objs, values, configs = snap
    now = dict(model.named_parameters())
    assert now.keys() == objs.keys()
    for k in objs:
        assert now[k] is objs[k] and torch.equal(now[k].detach(), values[k]), k
    assert all(blk.mixer.config is c for blk, c in zip(model.layers, configs))


def test_docstring_examples_run():
    result = doctest.testmod(mamba_mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_reduction_truncates_a_log_and_x_proj_and_gives_each_block_its_config():
    model = make()
    shared = model.config
    x = batch(0)
    report = reduce_mamba_(model, x, order=8, held_out=batch(1))
    assert isinstance(report, MambaReductionReport)
    assert mamba_state_sizes(model) == {"layers.0.mixer": 8, "layers.1.mixer": 8}
    cfg = shared
    for blk in model.layers:
        m = blk.mixer
        assert m.A_log.shape == (cfg.d_inner, 8)
        assert m.x_proj.weight.shape == (cfg.dt_rank + 16, cfg.d_inner)
        assert m.config is not shared and m.config.d_state == 8
        assert getattr(m.A_log, "_no_weight_decay", False)
    assert shared.d_state == 16                     # the built size, for freshly built models
    for entry in report.blocks:
        assert entry.old_d_state == 16 and entry.new_d_state == 8 and len(entry.kept) == 8
        assert list(entry.kept) == sorted(entry.kept) and len(entry.scores) == 16
        assert 0 < entry.kept_fraction <= 1 and math.isfinite(entry.calibration_change)
    assert math.isfinite(report.calibration_change) and math.isfinite(report.held_out_change)
    with torch.no_grad():                            # both forward modes and the recurrent step work
        y = model(x)
        model.config.pscan = False
        y_seq = model(x)
        caches = [(None, torch.zeros(4, cfg.d_inner, cfg.d_conv - 1)) for _ in model.layers]
        y_step, _ = model.step(x[:, 0], caches)
    assert torch.allclose(y, y_seq, atol=1e-5) and torch.allclose(y_step, y[:, 0], atol=1e-5)


def test_kept_rows_and_columns_are_the_old_ones():
    model = make()
    m = model.layers[0].mixer
    A_log, W = m.A_log.detach().clone(), m.x_proj.weight.detach().clone()
    dt_rank, n = m.config.dt_rank, 16
    report = reduce_mamba_(model, batch(0), order=5)
    keep = torch.tensor(report.blocks[0].kept)
    assert torch.equal(m.A_log.detach(), A_log[:, keep])
    rows = torch.cat([torch.arange(dt_rank), dt_rank + keep, dt_rank + n + keep])
    assert torch.equal(m.x_proj.weight.detach(), W[rows])


@pytest.mark.parametrize("select", ["hankel", "magnitude"])
def test_states_without_output_weight_are_dropped_exactly(select):
    """Indices whose C row of x_proj is zero never reach the output: zero Hankel energy
    (and zero magnitude); dropping them leaves the model's output unchanged."""
    model = make(d_state=12)
    for blk in model.layers:
        m = blk.mixer
        with torch.no_grad():
            m.x_proj.weight[m.config.dt_rank + 12 + 6:] = 0        # C rows of indices 6..11
    x = batch(0)
    with torch.no_grad():
        y0 = model(x)
    report = reduce_mamba_(model, x, order=6, select=select)
    assert all(b.kept == (0, 1, 2, 3, 4, 5) for b in report.blocks)
    assert all(b.scores[i] == 0 for b in report.blocks for i in range(6, 12))
    with torch.no_grad():
        y1 = model(x)
    assert torch.allclose(y0, y1, rtol=0, atol=1e-6)
    assert report.calibration_change <= 1e-6


def test_proxy_is_the_averaged_system_and_energy_matches_hsv_of_one_state():
    model = make(n_layers=1, d_state=4)
    m = model.layers[0].mixer
    x = torch.randn(3, 5, m.config.d_inner, dtype=torch.float64)
    sys = proxy_systems(m, x)
    assert isinstance(sys, DiagonalStateSpace) and sys.batch_shape == (m.config.d_inner,)
    # recompute by hand for channel 0 and state index 2
    W = m.x_proj.weight.detach().double()
    proj = x.reshape(-1, m.config.d_inner) @ W.T
    r = m.config.dt_rank
    delta = nn.functional.softplus(proj[:, :r] @ m.dt_proj.weight.detach().double().T
                                   + m.dt_proj.bias.detach().double())
    d_bar = delta.mean(0)[0]
    lam = torch.exp(-d_bar * torch.exp(m.A_log.detach().double()[0, 2]))
    assert torch.allclose(torch.as_tensor(sys.eigenvalues[0, 2]).real, lam, rtol=1e-12)
    assert torch.allclose(torch.as_tensor(sys.B[0, 2, 0]).real, d_bar * proj[:, r + 2].mean(), rtol=1e-12)
    assert torch.allclose(torch.as_tensor(sys.C[0, 0, 2]).real, proj[:, r + 4 + 2].mean(), rtol=1e-12)
    # a one-state system is balanced: its Hankel energy is its HSV
    one = DiagonalStateSpace(sys.eigenvalues[:, 2:3], sys.B[:, 2:3], sys.C[:, :, 2:3], sys.D, dt=True)
    hsv = torch.as_tensor(hankel_singular_values(one)).reshape(-1)
    assert torch.allclose(state_energy(one).reshape(-1), hsv.double(), rtol=1e-10)


def test_energy_criterion_and_report():
    model = make()
    report = reduce_mamba_(model, batch(0), energy=0.3)
    for entry in report.blocks:
        assert 1 <= entry.new_d_state < 16
        assert entry.kept_fraction >= 0.7 - 1e-12
        ranked = sorted(entry.scores, reverse=True)
        # the fewest indices: one fewer would miss the criterion
        assert sum(ranked[:entry.new_d_state - 1]) < 0.7 * sum(ranked)
    assert report.to_dict()["select"] == "hankel"


def test_random_selection_is_reproducible():
    a, b = make(), make()
    ra = reduce_mamba_(a, batch(0), order=7, select="random", generator=torch.Generator().manual_seed(5))
    rb = reduce_mamba_(b, batch(0), order=7, select="random", generator=torch.Generator().manual_seed(5))
    assert [x.kept for x in ra.blocks] == [x.kept for x in rb.blocks]


def test_training_continues_with_optimizer_state_indexed():
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, target = batch(0), batch(1)
    for _ in range(2):
        opt.zero_grad()
        ((model(x) - target) ** 2).mean().backward()
        opt.step()
    m = model.layers[0].mixer
    avg_A, avg_W = opt.state[m.A_log]["exp_avg"].clone(), opt.state[m.x_proj.weight]["exp_avg"].clone()
    other = model.layers[0].mixer.dt_proj.weight
    other_state = opt.state[other]["exp_avg"]
    report = reduce_mamba_(model, x, order=8, optimizers=opt)
    keep = torch.tensor(report.blocks[0].kept)
    dt_rank = m.config.dt_rank
    rows = torch.cat([torch.arange(dt_rank), dt_rank + keep, dt_rank + 16 + keep])
    assert torch.equal(opt.state[m.A_log]["exp_avg"], avg_A[:, keep])
    assert torch.equal(opt.state[m.x_proj.weight]["exp_avg"], avg_W[rows])
    assert opt.state[other]["exp_avg"] is other_state
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.parameters()}
    for _ in range(2):
        opt.zero_grad()
        loss = ((model(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert math.isfinite(float(loss.detach())) and m.A_log.grad.shape == m.A_log.shape


def test_reduced_state_dict_loads_into_a_fresh_full_size_model():
    model = make()
    reduce_mamba_(model, batch(0), order=6)
    fresh = make(seed=3)
    resized = load_reduced_mamba_state_dict_(fresh, model.state_dict())
    assert resized == {"layers.0.mixer": (16, 6), "layers.1.mixer": (16, 6)}
    with torch.no_grad():
        assert torch.equal(fresh(batch(2)), model(batch(2)))


@pytest.mark.parametrize("bad, match", [
    (torch.randn(4, 10, D_MODEL + 1), r"\(batch, L, d_model=8\).*\(4, 10, 9\)"),
    (torch.randn(10, D_MODEL), r"\(batch, L, d_model=8\).*\(10, 8\)"),
    (torch.randn(0, 10, D_MODEL), "batch, L >= 1"),
    (torch.full((2, 3, D_MODEL), math.nan), "NaN"),
    ([[0.0] * D_MODEL], "torch.Tensor"),
])
def test_wrong_calibration_batch_is_a_typed_error_and_changes_nothing(bad, match):
    model = make()
    opt = torch.optim.Adam(model.parameters())
    snap = snapshot(model)
    with pytest.raises(CalibrationError, match=match):
        reduce_mamba_(model, bad, order=8, optimizers=opt)
    with pytest.raises(CalibrationError, match="held_out"):
        reduce_mamba_(model, batch(0), order=8, held_out=bad)
    assert_unchanged(model, snap)
    assert issubclass(CalibrationError, ValueError)


def test_wrapped_model_takes_its_own_input_and_refuses_one_that_does_not_run():
    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(3, D_MODEL)
            self.mamba = make()
            self.head = nn.Linear(D_MODEL, 4)

        def forward(self, x):
            return self.head(self.mamba(self.encoder(x)).mean(1))

    model = Classifier()
    snap = snapshot(model.mamba)
    with pytest.raises(CalibrationError, match=r"\(4, 10, 5\) does not run through the model"):
        reduce_mamba_(model, torch.randn(4, 10, 5), order=8)
    assert_unchanged(model.mamba, snap)
    report = reduce_mamba_(model, torch.randn(4, 10, 3), order=8, held_out=torch.randn(4, 10, 3))
    assert mamba_state_sizes(model) == {"mamba.layers.0.mixer": 8, "mamba.layers.1.mixer": 8}
    assert math.isfinite(report.held_out_change)


def test_calibration_that_never_reaches_the_blocks():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.mamba = make()

        def forward(self, x):
            return x * 2

    with pytest.raises(CalibrationError, match="never reached"):
        reduce_mamba_(Skip(), batch(0), order=8)


def test_variants_the_proxy_does_not_understand_are_refused():
    model = make(inner_layernorms=True)
    snap = snapshot(model)
    with pytest.raises(UnsupportedMambaError, match="inner_layernorms"):
        reduce_mamba_(model, batch(0), order=8)
    assert_unchanged(model, snap)

    class OwnScan(MambaBlock):
        def ssm(self, x, z):
            return super().ssm(x, z)

    with pytest.raises(UnsupportedMambaError, match="overrides"):
        reduce_mamba_(OwnScan(MambaConfig(d_model=D_MODEL, n_layers=1)), batch(0), order=8)

    class HeadScalarA(nn.Module):                 # Mamba-2 style: A_log (n_heads,)
        def __init__(self):
            super().__init__()
            self.A_log = nn.Parameter(torch.zeros(4))

    wrapped = nn.Sequential(make(n_layers=1), HeadScalarA())
    with pytest.raises(UnsupportedMambaError, match="not mambapy.mamba.MambaBlock"):
        reduce_mamba_(wrapped, batch(0), order=8)
    with pytest.raises(TypeError, match="no mambapy.mamba.MambaBlock"):
        reduce_mamba_(nn.Linear(3, 3), batch(0), order=2)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({}, InvalidParameterError, "exactly one of order"),
    ({"order": 8, "energy": 0.1}, InvalidParameterError, "exactly one of order"),
    ({"order": 17}, InvalidParameterError, "exceeds d_state=16"),
    ({"order": 0}, InvalidParameterError, "order must be an int >= 1"),
    ({"energy": 1.5}, InvalidParameterError, "energy"),
    ({"order": 8, "select": "svd"}, InvalidParameterError, "select"),
    ({"order": 8, "statistic": "median"}, InvalidParameterError, "statistic"),
    ({"order": 8, "select": "random"}, TypeError, "generator"),
])
def test_argument_errors(kwargs, exc, match):
    model = make()
    snap = snapshot(model)
    with pytest.raises(exc, match=match):
        reduce_mamba_(model, batch(0), **kwargs)
    assert_unchanged(model, snap)


def test_failure_after_the_swap_restores_model_configs_and_optimizer():
    model = make()
    opt = torch.optim.Adam(model.parameters())
    model(batch(0)).sum().backward()
    opt.step()
    snap = snapshot(model)
    groups = [list(g["params"]) for g in opt.param_groups]
    states = {p: s for p, s in opt.state.items()}
    calls = []

    def fail_third(mod, args, out):               # 1: calibration, 2: held-out, 3: after the swap
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated failure after the swap")

    model.register_forward_hook(fail_third)
    with pytest.raises(CalibrationError, match="simulated failure"):
        reduce_mamba_(model, batch(0), order=8, held_out=batch(1), optimizers=opt)
    assert_unchanged(model, snap)
    assert [list(g["params"]) for g in opt.param_groups] == groups
    assert set(opt.state) == set(states) and all(opt.state[p] is states[p] for p in states)
