"""Compressor: events, modes, rollback, logging, state."""

import io
import json

import pytest

torch = pytest.importorskip("torch")

from lti_reduce import InvalidParameterError  # noqa: E402
from lti_reduce_torch.schedule import Compressor, CompressorWarning  # noqa: E402
from lti_reduce_torch.reduce import ReductionReport, state_sizes  # noqa: E402
from tests.torch.test_reduce import Net, train  # noqa: E402


def make(kinds=("lru", "s4d"), n=16, **kw):
    model = Net(kinds, n=n)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, opt, Compressor(model, opt, **kw)


@pytest.mark.parametrize("kw, match", [
    ({"events": [3, 3]}, "strictly increasing"),
    ({"events": [5, 3]}, "strictly increasing"),
    ({"events": [-1]}, "non-negative"),
    ({"events": [1.0]}, "non-negative int"),
    ({"events": [True]}, "non-negative int"),
    ({}, "events="),
    ({"events": [1], "window": (0, 10), "interval": 2}, "not both"),
    ({"window": (0, 10)}, "exactly one of interval"),
    ({"window": (0, 10), "interval": 2, "count": 2}, "exactly one of interval"),
    ({"window": (5, 5), "interval": 1}, "start < stop"),
    ({"window": (0, 10), "interval": 0}, "interval"),
    ({"window": (0, 10), "count": 11}, "count"),
    ({"window": (0, 10, 2), "count": 1}, "window"),
])
def test_event_validation(kw, match):
    model = Net(("lru",), n=8)
    with pytest.raises(InvalidParameterError, match=match):
        Compressor(model, (), energy=0.1, **kw)


@pytest.mark.parametrize("kw, exc, match", [
    ({"mode": "sometimes", "energy": 0.1}, InvalidParameterError, "mode"),
    ({"mode": "tolerance"}, InvalidParameterError, "energy"),
    ({"mode": "tolerance", "energy": 0.1, "fraction": 0.1}, InvalidParameterError, "no fraction"),
    ({"mode": "fixed", "energy": 0.1}, InvalidParameterError, "fraction"),
    ({"mode": "fixed", "fraction": 1.0}, InvalidParameterError, "fraction"),
    ({"mode": "pragmatic"}, InvalidParameterError, "exactly one"),
    ({"energy": 1.5}, InvalidParameterError, "energy"),
    ({"energy": 0.1, "select": "worst"}, InvalidParameterError, "select"),
    ({"energy": 0.1, "min_ratio": 0}, InvalidParameterError, "min_ratio"),
    ({"energy": 0.1, "rollback_tolerance": -0.1}, InvalidParameterError, "rollback_tolerance"),
    ({"energy": 0.1, "metric_mode": "up"}, InvalidParameterError, "metric_mode"),
    ({"energy": 0.1, "log": 3}, TypeError, "log"),
    ({"energy": 0.1, "seed": "0"}, TypeError, "seed"),
])
def test_option_validation(kw, exc, match):
    model = Net(("lru",), n=8)
    with pytest.raises(exc, match=match):
        Compressor(model, (), events=[1], **kw)


def test_window_resolution():
    model = Net(("lru",), n=8)
    assert Compressor(model, (), energy=0.1, window=(0, 18000), count=4).events == (4500, 9000, 13500, 18000)
    assert Compressor(model, (), energy=0.1, window=(100, 400), interval=100).events == (200, 300, 400)
    assert Compressor(model, (), energy=0.1, window=(0, 10), count=3).events == (3, 6, 10)


def test_each_event_fires_exactly_once_at_its_step():
    model, opt, comp = make(mode="fixed", fraction=0.25, events=[2, 5, 7])
    fired = []
    for step in range(12):
        train(model, opt, 1, seed=step)
        report = comp.step(step)
        if report is not None:
            assert isinstance(report, ReductionReport) and report.step == step
            fired.append(step)
    assert fired == [2, 5, 7]
    # fixed: n - max(1, round(0.25 n)) per event: 16 -> 12 -> 9 -> 7
    assert state_sizes(model) == {"blocks.0.ssm": 7, "blocks.1.ssm": 7}
    assert comp.step(2) is None and comp.step(100) is None


def test_late_calls_merge_due_events_with_a_warning():
    model, opt, comp = make(mode="fixed", fraction=0.25, events=[3, 4, 9])
    assert comp.step(0) is None
    with pytest.warns(CompressorWarning, match=r"\[3, 4\]"):
        report = comp.step(5)
    assert report is not None and report.step == 5 and state_sizes(model)["blocks.0.ssm"] == 12
    assert comp.step(20) is not None          # late but single: no warning
    assert comp.fired == {3, 4, 9}


def test_tolerance_mode_uses_current_system_and_min_ratio():
    model, opt, comp = make(mode="tolerance", energy=0.3, events=[1, 2, 3, 4])
    sizes = [state_sizes(model)]
    for step in range(1, 5):
        report = comp.step(step)
        for entry in report.layers:
            assert entry.old_n == sizes[-1][entry.name]
            if entry.status == "reduced":
                assert entry.new_n < 0.95 * entry.old_n
            else:
                assert entry.new_n == entry.old_n
        sizes.append(state_sizes(model))
    assert sizes[-1]["blocks.0.ssm"] < 16


def _capture(model, opts):
    params = {}
    for module_name, module in model.named_modules():
        for name, p in module._parameters.items():
            params[f"{module_name}.{name}"] = (p, p.detach().clone())
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    optim = [([list(g["params"]) for g in opt.param_groups],
              {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for p, s in opt.state.items()})
             for opt in opts]
    return params, buffers, optim


def _assert_restored(model, opts, captured):
    params, buffers, optim = captured
    for module_name, module in model.named_modules():
        for name, p in module._parameters.items():
            obj, value = params[f"{module_name}.{name}"]
            assert p is obj, name
            assert p.shape == value.shape and torch.equal(p.detach(), value), name
    now = dict(model.named_buffers())
    assert set(now) == set(buffers)
    for name, value in buffers.items():
        assert torch.equal(now[name], value), name
    for opt, (groups, state) in zip(opts, optim):
        assert len(opt.param_groups) == len(groups)
        for g, saved in zip(opt.param_groups, groups):
            assert len(g["params"]) == len(saved) and all(a is b for a, b in zip(g["params"], saved))
        assert {id(p) for p in opt.state} == set(state)
        for p, s in opt.state.items():
            assert set(s) == set(state[id(p)])
            for k, v in s.items():
                assert torch.equal(v, state[id(p)][k]) if torch.is_tensor(v) else v == state[id(p)][k]


def test_pragmatic_rollback_is_bit_exact_and_stops():
    buf = io.StringIO()
    model = Net(("lru", "s4d"), n=16)
    opt_ssm = torch.optim.Adam([p for b in model.blocks for p in b.ssm.parameters()], lr=1e-2)
    rest = [p for n, p in model.named_parameters() if ".ssm." not in n]
    opt_rest = torch.optim.SGD(rest, lr=1e-2, momentum=0.9)
    opts = [opt_ssm, opt_rest]
    comp = Compressor(model, opts, mode="pragmatic", fraction=0.5, events=[3, 6], log=buf)
    train(model, opts, 3)
    captured = _capture(model, opts)
    report = comp.step(3, metric=0.80)
    assert report.changed and comp.pending
    assert state_sizes(model) == {"blocks.0.ssm": 8, "blocks.1.ssm": 8}
    train(model, opts, 2, seed=30)            # the reduced model trains; BatchNorm stats move
    assert comp.step(4) is None and comp.pending     # no metric: nothing checked yet
    assert comp.step(5, metric=0.70) is None         # dropped by 0.10 > 0.02 absolute: roll back
    assert comp.stopped and not comp.pending
    _assert_restored(model, opts, captured)
    assert state_sizes(model) == {"blocks.0.ssm": 16, "blocks.1.ssm": 16}
    assert all(p.grad is None for p in model.parameters())
    assert comp.step(6, metric=0.9) is None          # stopped: the event is skipped
    train(model, opts, 1, seed=60)                   # and the restored model trains
    events = [json.loads(line)["event"] for line in buf.getvalue().splitlines()]
    assert events == ["reduce", "rollback", "skip"]


def test_pragmatic_accepts_small_drops_and_relative_mode():
    model, opt, comp = make(mode="pragmatic", energy=0.3, events=[1, 3], min_ratio=None)
    assert comp.step(1, metric=0.80) is not None and comp.pending
    assert comp.step(2, metric=0.79) is None and not comp.pending and not comp.stopped
    assert comp.history[-1]["event"] == "accept"
    # relative: 10 -> 10.15 on a loss ("min") is a 1.5% increase, below 2%
    model, opt, comp = make(mode="pragmatic", fraction=0.25, events=[1], metric_mode="min",
                            rollback_relative=True)
    comp.step(0, metric=10.0)
    assert comp.step(1) is not None                  # pre-reduction metric: the latest one (10.0)
    comp.step(2, metric=10.15)
    assert not comp.stopped and comp.history[-1]["event"] == "accept"


def test_pragmatic_needs_a_metric_before_reducing():
    model, opt, comp = make(mode="pragmatic", energy=0.3, events=[1])
    with pytest.raises(InvalidParameterError, match="metric"):
        comp.step(1)


def test_log_file_holds_one_json_line_per_event(tmp_path):
    path = tmp_path / "compress.jsonl"
    model, opt, comp = make(mode="tolerance", energy=0.2, events=[0, 2], log=str(path))
    comp.step(0)
    comp.step(1)
    comp.step(2)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    for line, step in zip(lines, (0, 2)):
        record = json.loads(line)
        assert record["event"] == "reduce" and record["step"] == step and record["scheduled"] == [step]
        names = [x["name"] for x in record["layers"]]
        assert names == ["blocks.0.ssm", "blocks.1.ssm"]
        for x in record["layers"]:
            assert {"old_n", "new_n", "hsv", "error_bound", "seconds", "status"} <= set(x)
        assert record["seconds"] >= 0 and record["criterion"] == "energy=0.2"


def test_random_selection_is_seeded_and_state_dict_roundtrip(tmp_path):
    def run(seed):
        model, opt, comp = make(mode="fixed", fraction=0.5, events=[1, 2], select="random", seed=seed)
        comp.step(1)
        comp.step(2)
        return {k: v.clone() for k, v in model.state_dict().items()}

    a, b = run(4), run(4)
    assert all(torch.equal(a[k], b[k]) for k in a)

    model, opt, comp = make(mode="fixed", fraction=0.5, events=[1, 2], select="random", seed=4)
    comp.step(1)
    path = tmp_path / "comp.pt"
    torch.save(comp.state_dict(), path)
    state = torch.load(path, weights_only=True)
    model2, opt2, comp2 = make(mode="fixed", fraction=0.5, events=[1, 2], select="random", seed=99)
    comp2.load_state_dict(state)
    assert comp2.fired == {1} and comp2.history == comp.history
    assert torch.equal(comp2.generator.get_state(), comp.generator.get_state())
    with pytest.raises(InvalidParameterError, match="mode"):
        Compressor(model2, (), mode="tolerance", energy=0.1, events=[1]).load_state_dict(state)
    with pytest.raises(InvalidParameterError, match="state_dict"):
        comp2.load_state_dict({"version": 0})


def test_pending_check_is_not_saved():
    model, opt, comp = make(mode="pragmatic", fraction=0.5, events=[1])
    comp.step(1, metric=0.5)
    state = comp.state_dict()
    assert state["pending"] == {"step": 1, "metric": 0.5}
    model2, opt2, comp2 = make(mode="pragmatic", fraction=0.5, events=[1])
    with pytest.warns(CompressorWarning, match="not checked"):
        comp2.load_state_dict(state)
    assert not comp2.pending


def test_step_argument_checks():
    model, opt, comp = make(events=[1], energy=0.1)
    with pytest.raises(InvalidParameterError, match="step"):
        comp.step(-1)
    with pytest.raises(InvalidParameterError, match="step"):
        comp.step(1.5)
    with pytest.raises(InvalidParameterError, match="metric"):
        comp.step(1, metric=float("nan"))
