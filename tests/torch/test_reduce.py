"""reduce_: batched, atomic, in-place balanced truncation of registered layers."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lti_reduce  # noqa: E402
import lti_reduce_torch._planning  # noqa: E402
import lti_reduce_torch.selection  # noqa: E402
from lti_reduce import InvalidParameterError, hankel_singular_values, select_order  # noqa: E402
from lti_reduce_torch import ReductionRefusedError, UnsupportedLayerError, register_adapter  # noqa: E402
from lti_reduce_torch.adapters import LRUAdapter  # noqa: E402
from lti_reduce_torch.layers import LRU, S4D, DenseLTI  # noqa: E402
from lti_reduce_torch.reduce import reduce_, ReductionReport, LayerReduction, state_sizes  # noqa: E402

H, L = 4, 8


# ------------------------------------------------------------------------------------ helpers
class FlakyLRU(LRU):
    """An LRU whose adapter fails on request (``fail`` in {None, 'rebuild', 'refuse', 'size'})."""

    def __init__(self, *args, fail=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fail = fail
        self.n0 = self.n


class FlakyAdapter(LRUAdapter):
    def state_size(self, module):
        n = super().state_size(module)
        return n + 1 if module.fail == "size" and n != module.n0 else n

    def rebuild(self, module, reduced):
        if module.fail == "rebuild":
            raise RuntimeError("injected failure")
        if module.fail == "refuse":
            raise ReductionRefusedError("injected refusal")
        return super().rebuild(module, reduced)


register_adapter(FlakyLRU, FlakyAdapter())


def make_layer(kind, n, dtype=torch.float32, **kw):
    if kind == "lru":
        return LRU(H, n, readout="pre", dtype=dtype)
    if kind == "flaky":
        return FlakyLRU(H, n, readout="pre", dtype=dtype, **kw)
    if kind == "s4d":
        return S4D(H, n, readout="pre", dtype=dtype)
    if kind == "dense":
        return DenseLTI(H, n, readout="pre", dtype=dtype)
    raise ValueError(kind)


class Block(nn.Module):
    def __init__(self, ssm, dtype):
        super().__init__()
        self.norm = nn.BatchNorm1d(H, dtype=dtype)
        self.ssm = ssm

    def forward(self, x):
        z = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x + nn.functional.gelu(self.ssm(z))


class Net(nn.Module):
    """Encoder -> blocks (BatchNorm -> SSM -> GELU, residual) -> mean pool -> head."""

    def __init__(self, kinds=("lru", "lru", "s4d"), n=16, dtype=torch.float32, seed=0, **kw):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Linear(2, H, dtype=dtype)
        self.blocks = nn.ModuleList(Block(make_layer(k, n, dtype, **(kw if k == "flaky" else {})), dtype)
                                    for k in kinds)
        self.head = nn.Linear(H, 3, dtype=dtype)

    def forward(self, u):
        x = self.encoder(u)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(1))


def batch(seed, dtype=torch.float32, size=6):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(size, L, 2, generator=g, dtype=dtype),
            torch.randint(0, 3, (size,), generator=g))


def train(model, optimizers, steps, seed=0):
    optimizers = optimizers if isinstance(optimizers, (list, tuple)) else [optimizers]
    for k in range(steps):
        u, y = batch(seed + k, next(model.parameters()).dtype)
        loss = nn.functional.cross_entropy(model(u), y)
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in optimizers:
            opt.step()
    return model


def param_snapshot(model):
    return {name: (p, p.detach().clone()) for name, p in model.named_parameters()}


def assert_params_unchanged(model, snap):
    now = dict(model.named_parameters())
    assert set(now) == set(snap)
    for name, (p, value) in snap.items():
        assert now[name] is p, name
        assert torch.equal(p.detach(), value), name


def max_response_error(before, after, count=64):
    omega = torch.linspace(0, np.pi, count, dtype=torch.float64)
    G0 = before.frequency_response(omega)
    G1 = after.frequency_response(omega)
    diff = (G0 - G1).cpu().numpy()
    return float(np.linalg.svd(diff, compute_uv=False).max())


# ------------------------------------------------------------------------------------ tests
def test_energy_reduction_sizes_hsv_and_bounds():
    model = Net(("lru", "lru", "s4d", "dense"), n=16, dtype=torch.float64)
    layers = {f"blocks.{i}.ssm": b.ssm for i, b in enumerate(model.blocks)}
    before = {name: _adapter(m).to_lti(m) for name, m in layers.items()}
    report = reduce_(model, energy=0.1)
    assert isinstance(report, ReductionReport) and len(report.layers) == 4
    for entry in report.layers:
        module = layers[entry.name]
        sys0 = before[entry.name]
        hsv = hankel_singular_values(sys0).numpy()
        np.testing.assert_allclose(np.asarray(entry.hsv), hsv, rtol=1e-12, atol=0)
        flat = hsv.reshape(-1, hsv.shape[-1])
        expected = max(select_order(s, energy=0.1) for s in flat)   # max over channels (S4D)
        assert entry.status == "reduced", entry
        assert entry.new_n == expected == state_sizes(model)[entry.name] == module.n
        assert entry.old_n == 16 and entry.seconds >= 0
        bound = max(2 * s[entry.new_n:].sum() for s in flat)
        assert entry.error_bound == pytest.approx(bound, rel=1e-9)
        err = max_response_error(sys0, _adapter(module).to_lti(module))
        assert err <= entry.error_bound * (1 + 1e-6) + 1e-9
    # the layers' outputs obey the bound: ||y - y_r||_2 <= bound * ||u||_2 per sequence
    model2 = Net(("lru", "s4d"), n=16, dtype=torch.float64)
    u = torch.randn(5, 40, H, dtype=torch.float64)
    outs = [b.ssm(u) for b in model2.blocks]
    report = reduce_(model2, energy=0.2)
    for b, y0, entry in zip(model2.blocks, outs, report.layers):
        y1 = b.ssm(u)
        assert y1.shape == y0.shape
        err = torch.linalg.vector_norm(y1 - y0, dim=(1, 2))
        assert bool((err <= entry.error_bound * torch.linalg.vector_norm(u, dim=(1, 2)) + 1e-9).all())


def _adapter(module):
    from lti_reduce_torch import get_adapter
    return get_adapter(module)


def test_groups_are_stacked_one_core_call_each(monkeypatch):
    calls = {"hsv": [], "bt": []}
    real_hsv, real_bt = lti_reduce.hankel_factors, lti_reduce.balanced_truncation

    def hsv(system, **kw):
        calls["hsv"].append(getattr(system, "batch_shape", ()))
        return real_hsv(system, **kw)

    def bt(system, *args, **kw):
        calls["bt"].append(getattr(system, "batch_shape", ()))
        return real_bt(system, *args, **kw)

    # the stages import the core's functions at module level (no lazy imports): patch them there
    monkeypatch.setattr(lti_reduce_torch._planning, "hankel_factors", hsv)
    monkeypatch.setattr(lti_reduce_torch.selection, "balanced_truncation", bt)
    model = Net(("lru", "s4d", "lru", "s4d", "lru"), n=16)
    model.blocks.append(Block(make_layer("lru", 12), torch.float32))
    report = reduce_(model, order=10)
    assert all(e.status == "reduced" and e.new_n == 10 for e in report.layers)
    assert sorted(calls["hsv"]) == sorted([(3,), (2, H), (1,)])
    assert sorted(calls["bt"]) == sorted([(3,), (2, H), (1,)])


def test_unexpected_failure_changes_nothing():
    for fail in ("rebuild", "size"):
        model = Net(("lru", "flaky", "s4d"), n=12, fail=fail)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        train(model, opt, 2)
        snap = param_snapshot(model)
        groups = [list(g["params"]) for g in opt.param_groups]
        state = {p: dict(s) for p, s in opt.state.items()}
        with pytest.raises(RuntimeError, match="injected failure" if fail == "rebuild" else "undone"):
            reduce_(model, order=6, optimizers=opt)
        assert_params_unchanged(model, snap)
        assert [list(g["params"]) for g in opt.param_groups] == groups
        assert all(a is b for g0, g1 in zip(groups, opt.param_groups) for a, b in zip(g0, g1["params"]))
        assert set(opt.state) == set(state)
        for p, s in state.items():
            assert all(opt.state[p][k] is v for k, v in s.items())


def test_refused_layer_is_left_alone_and_reported():
    model = Net(("lru", "flaky"), n=12, fail="refuse")
    flaky = model.blocks[1].ssm
    params = {k: v for k, v in flaky.named_parameters()}
    report = reduce_(model, order=5)
    assert report["blocks.0.ssm"].status == "reduced" and model.blocks[0].ssm.n == 5
    entry = report["blocks.1.ssm"]
    assert entry.status == "refused" and "injected refusal" in entry.reason
    assert entry.new_n == entry.old_n == 12 and entry.error_bound == 0.0
    assert all(getattr(flaky, k) is v for k, v in params.items())


@pytest.mark.parametrize("kwargs, exc, match", [
    ({}, InvalidParameterError, "exactly one"),
    ({"order": 4, "energy": 0.1}, InvalidParameterError, "exactly one"),
    ({"energy": 0.0}, InvalidParameterError, "energy"),
    ({"energy": 1.0}, InvalidParameterError, "energy"),
    ({"energy": True}, InvalidParameterError, "energy"),
    ({"tol": -1.0}, InvalidParameterError, "tol"),
    ({"tol": float("inf")}, InvalidParameterError, "tol"),
    ({"order": -1}, InvalidParameterError, r"order must be in \[0, n\]"),   # the core's rule (tol=0,
    ({"order": 13}, InvalidParameterError, r"order .* \[0, n=12\]"),      # order=0 now accepted)
    ({"order": 2.0}, TypeError, "order"),
    ({"order": True}, TypeError, "order"),
    ({"order": {"blocks.0.ssm": "3"}}, TypeError, "order"),
    ({"order": {"nope": 3}}, InvalidParameterError, "nope"),
    ({"order": {"blocks.0.ssm": 3}, "layers": ["blocks.0.ssm"]}, InvalidParameterError, "layers=None"),
    ({"order": 4, "select": "largest"}, InvalidParameterError, "select"),
    ({"order": 4, "select": "random"}, TypeError, "generator"),
    ({"order": 4, "generator": 3}, TypeError, "generator"),
    ({"order": 4, "min_ratio": 0.0}, InvalidParameterError, "min_ratio"),
    ({"order": 4, "min_ratio": 1.5}, InvalidParameterError, "min_ratio"),
    ({"order": 4, "horizon": -2}, InvalidParameterError, "horizon"),
    ({"order": 4, "optimizers": [object()]}, TypeError, "optimizers"),
    ({"order": 4, "layers": ["blocks.7.ssm"]}, InvalidParameterError, "blocks.7.ssm"),
    ({"order": 4, "layers": ["blocks.0.norm"]}, UnsupportedLayerError, "BatchNorm1d"),
])
def test_argument_errors_name_the_argument(kwargs, exc, match):
    model = Net(("lru",), n=12)
    snap = param_snapshot(model)
    with pytest.raises(exc, match=match):
        reduce_(model, **kwargs)
    assert_params_unchanged(model, snap)


def test_model_without_layers_and_wrong_model_type():
    with pytest.raises(InvalidParameterError, match="no submodule with a registered adapter"):
        reduce_(nn.Linear(3, 3), order=2)
    with pytest.raises(TypeError, match="model"):
        reduce_("model", order=2)


def test_min_ratio_skips_small_cuts():
    model = Net(("lru",), n=20)
    report = reduce_(model, order=19, min_ratio=0.95)
    entry = report.layers[0]
    assert entry.status == "unchanged" and entry.new_n == 20 and "min_ratio" in entry.reason
    assert not report.changed
    report = reduce_(model, order=18, min_ratio=0.95)
    assert report.layers[0].status == "reduced" and model.blocks[0].ssm.n == 18


def test_new_parameters_keep_attributes_dtype_and_requires_grad():
    model = Net(("lru", "s4d"), n=12)
    lru = model.blocks[0].ssm
    lru.theta_log.requires_grad_(False)
    lru.B_re.custom_tag = {"group": "ssm"}
    report = reduce_(model, order=6)
    assert report.changed
    assert isinstance(lru.nu_log, nn.Parameter) and lru.nu_log._no_weight_decay is True
    assert lru.theta_log.requires_grad is False and lru.nu_log.requires_grad is True
    assert lru.B_re.custom_tag == {"group": "ssm"}
    for p in model.parameters():
        assert p.dtype == torch.float32 and p.device.type == "cpu"
    # untouched parameters (D, BatchNorm, encoder) are the same objects
    s4d = model.blocks[1].ssm
    assert s4d.log_step.shape == (H,) and s4d.A_im.shape == (H, 6)


def test_order_mapping_and_layers_restriction():
    model = Net(("lru", "lru", "s4d"), n=12)
    report = reduce_(model, order={"blocks.1.ssm": 5})
    assert [e.name for e in report.layers] == ["blocks.1.ssm"]
    assert state_sizes(model) == {"blocks.0.ssm": 12, "blocks.1.ssm": 5, "blocks.2.ssm": 12}
    report = reduce_(model, energy=0.3, layers=["blocks.2.ssm"])
    assert [e.name for e in report.layers] == ["blocks.2.ssm"]
    assert state_sizes(model)["blocks.0.ssm"] == 12


def test_smallest_ablation_keeps_lowest_energy_modes_and_bound():
    model = Net(("lru",), n=12, dtype=torch.float64)
    lru = model.blocks[0].ssm
    sys0 = _adapter(lru).to_lti(lru)
    old = {k: v.detach().clone() for k, v in lru.named_parameters()}
    report = reduce_(model, order=5, select="smallest")
    score = (torch.linalg.vector_norm(sys0.B, dim=-1) * torch.linalg.vector_norm(sys0.C, dim=-2)
             / (1 - sys0.eigenvalues.abs()))
    keep = torch.sort(torch.argsort(score)[:5]).values
    assert torch.equal(lru.nu_log.detach(), old["nu_log"][keep])
    assert torch.equal(lru.C_re.detach(), old["C_re"][:, keep])
    dropped = torch.ones(12, dtype=torch.bool)
    dropped[keep] = False
    assert report.layers[0].error_bound == pytest.approx(float(score[dropped].sum()), rel=1e-12)
    err = max_response_error(sys0, _adapter(lru).to_lti(lru))
    assert err <= report.layers[0].error_bound * (1 + 1e-9)


def test_random_ablation_is_reproducible_from_the_generator():
    def run(seed):
        model = Net(("lru", "s4d"), n=12)
        reduce_(model, order=5, select="random", generator=torch.Generator().manual_seed(seed))
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(a[k].shape == c[k].shape and not torch.equal(a[k], c[k]) for k in a)


def test_modal_ablation_needs_a_diagonal_layer():
    model = Net(("dense",), n=8)
    with pytest.raises(TypeError, match="dense"):
        reduce_(model, order=4, select="smallest")


def test_channel_of_low_rank_is_padded_exactly():
    model = Net(("s4d",), n=10, dtype=torch.float64)
    s4d = model.blocks[0].ssm
    with torch.no_grad():
        s4d.C_re[0].zero_()
        s4d.C_im[0].zero_()
    sys0 = _adapter(s4d).to_lti(s4d)
    report = reduce_(model, order=4)
    entry = report.layers[0]
    assert entry.status == "reduced" and entry.new_n == 4 and "padded" in entry.reason
    sys1 = _adapter(s4d).to_lti(s4d)
    assert max_response_error(sys0[0], sys1[0]) < 1e-12   # channel 0: still zero dynamics
    assert max_response_error(sys0, sys1) <= entry.error_bound * (1 + 1e-6) + 1e-9


def test_unstable_layer_is_refused_unless_finite_horizon():
    model = Net(("dense", "lru"), n=8, dtype=torch.float64)
    dense = model.blocks[0].ssm
    with torch.no_grad():
        dense.A.mul_(1.3 / float(torch.linalg.eigvals(dense.A).abs().max()))
    report = reduce_(model, order=4)
    assert report["blocks.0.ssm"].status == "refused" and "unstable" in report["blocks.0.ssm"].reason
    assert report["blocks.1.ssm"].status == "reduced"
    # finite-horizon Gramians need no stability; no a-priori bound is reported then
    report = reduce_(model, order=3, horizon=L, layers=["blocks.1.ssm"])
    entry = report.layers[0]
    assert entry.status == "reduced" and entry.error_bound is None and model.blocks[1].ssm.n == 3
    assert json.loads(report.to_json())["layers"][0]["error_bound"] is None


def test_report_json_and_table():
    model = Net(("lru", "s4d"), n=10)
    report = reduce_(model, tol=1e3)
    line = report.to_json()
    assert "\n" not in line
    data = json.loads(line)
    assert data["criterion"] == "tol=1000.0" and data["select"] == "balanced"
    assert [x["name"] for x in data["layers"]] == ["blocks.0.ssm", "blocks.1.ssm"]
    lru, s4d = report.layers
    assert isinstance(lru, LayerReduction)
    assert all(isinstance(v, float) for v in lru.hsv)
    assert len(s4d.hsv) == H and all(len(row) == 10 for row in s4d.hsv)
    assert lru.new_n == 1 and s4d.new_n == 1    # a huge budget keeps one state
    text = str(report)
    assert "blocks.0.ssm" in text and "n_new" in text and "tol=1000.0" in text
    with pytest.raises(KeyError):
        report["nope"]
    assert report.sizes == {"blocks.0.ssm": 1, "blocks.1.ssm": 1}


def test_reduced_model_trains_and_forward_shapes():
    model = Net(("lru", "s4d", "dense"), n=12)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train(model, opt, 2)
    reduce_(model, energy=0.2, optimizers=opt)
    train(model, opt, 2, seed=10)
    u, _ = batch(0)
    out = model(u)
    assert out.shape == (6, 3) and bool(torch.isfinite(out).all())
