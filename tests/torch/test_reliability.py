"""Issue 8 items 8, 9, 10, 13: refusals change nothing, events happen once, rollback rewinds RNGs."""

import errno
import io
import json
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lti_reduce_torch import (InferenceModeError, UnsupportedOptimizerError, register_optimizer_policy,  # noqa: E402
                              optimizer_rebind_policy, rebind_optimizer_, CompressorLogWarning)
from lti_reduce_torch.checkpoint import load_reduced_state_dict_  # noqa: E402
from lti_reduce_torch.reduce import reduce_, state_sizes  # noqa: E402
from lti_reduce_torch.schedule import Compressor  # noqa: E402
from tests.torch.test_reduce import Net, batch, train  # noqa: E402


# ------------------------------------------------------------------------------------ helpers
def capture(model, optimizers=()):
    """Everything a failed operation must leave as it was: objects, shapes, values."""
    slots = {}
    for module_name, module in model.named_modules():
        for kind in ("_parameters", "_buffers"):
            for name, t in getattr(module, kind).items():
                slots[(module_name, kind, name)] = (t, None if t is None else t.detach().clone())
    optim = []
    for opt in optimizers:
        groups = [({k: v for k, v in g.items() if k != "params"}, list(g["params"])) for g in opt.param_groups]
        state = {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for p, s in opt.state.items()}
        optim.append((opt, groups, state))
    return slots, optim


def assert_unchanged(model, captured):
    slots, optim = captured
    now = {(m, kind, name): t for m, module in model.named_modules()
           for kind in ("_parameters", "_buffers") for name, t in getattr(module, kind).items()}
    assert set(now) == set(slots)
    for key, (obj, value) in slots.items():
        assert now[key] is obj, key
        if obj is not None:
            assert obj.shape == value.shape and obj.dtype == value.dtype and torch.equal(obj.detach(), value), key
    for opt, groups, state in optim:
        assert len(opt.param_groups) == len(groups)
        for g, (hyper, params) in zip(opt.param_groups, groups):
            assert {k: v for k, v in g.items() if k != "params"} == hyper
            assert len(g["params"]) == len(params) and all(a is b for a, b in zip(g["params"], params))
        assert {id(p) for p in opt.state} == set(state)
        for p, s in opt.state.items():
            assert set(s) == set(state[id(p)])
            for k, v in s.items():
                saved = state[id(p)][k]
                assert torch.equal(v, saved) if torch.is_tensor(v) else v == saved, k


def closure_step(model, opt, seed):
    u, y = batch(seed)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(u), y)
        loss.backward()
        return loss

    return float(opt.step(closure).detach())


# ------------------------------------------------------------------------------------ item 8
def test_reduce_inside_inference_mode_is_refused_before_anything_changes():
    model = Net(("lru", "s4d"), n=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, opt, 2)
    captured = capture(model, [opt])
    with torch.inference_mode():
        with pytest.raises(InferenceModeError, match=r"reduce_.*inference_mode"):
            reduce_(model, order=4, optimizers=opt)
    assert_unchanged(model, captured)

    comp = Compressor(model, opt, mode="fixed", fraction=0.5, events=[1])
    with torch.inference_mode(), pytest.raises(InferenceModeError):
        comp.step(1)
    assert comp.fired == set() and comp.history == []      # the event stays due
    assert_unchanged(model, captured)
    assert comp.step(2).changed                             # and fires outside inference mode
    assert state_sizes(model) == {"blocks.0.ssm": 4, "blocks.1.ssm": 4}
    assert not any(p.is_inference() for p in model.parameters())
    train(model, opt, 1, seed=5)                            # the next training step works

    fresh = Net(("lru", "s4d"), n=8, seed=3)
    captured = capture(fresh)
    with torch.inference_mode(), pytest.raises(InferenceModeError, match="load_reduced_state_dict_"):
        load_reduced_state_dict_(fresh, model.state_dict())
    assert_unchanged(fresh, captured)
    with torch.inference_mode(), torch.inference_mode(False):   # explicitly disabled: allowed
        reduce_(fresh, order=6)
    assert not any(p.is_inference() for p in fresh.parameters())


# ------------------------------------------------------------------------------------ item 9
PER_PARAMETER = {
    "SGD": lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9),
    "Adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "AdamW": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "RMSprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.5),
    "Adagrad": lambda ps: torch.optim.Adagrad(ps, lr=1e-2, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("name", sorted(PER_PARAMETER))
def test_builtin_per_parameter_optimizers_keep_training_after_a_reduction(name):
    model = Net(("lru", "s4d"), n=8)
    opt = PER_PARAMETER[name](model.parameters())
    assert optimizer_rebind_policy(opt) == "per_parameter"
    train(model, opt, 2)
    untouched = {n: opt.state[p] for n, p in model.named_parameters() if ".ssm." not in n}
    old_ids = {id(p) for p in model.parameters()}
    reduce_(model, order=4, optimizers=opt)
    replaced = [p for p in model.parameters() if id(p) not in old_ids]
    assert replaced
    params = [p for g in opt.param_groups for p in g["params"]]
    assert {id(p) for p in params} == {id(p) for p in model.parameters()}
    for n, p in model.named_parameters():
        if ".ssm." not in n:
            assert opt.state[p] is untouched[n]             # the very same state dict
    if name == "Adagrad":       # restarted exactly as Adagrad starts a parameter: step 0, sum 0.1
        for p in replaced:
            assert float(opt.state[p]["step"]) == 0 and bool((opt.state[p]["sum"] == 0.1).all())
    else:
        assert not any(p in opt.state for p in replaced)       # restarted: created at the next step
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(model, opt, 2, seed=7)
    for n, p in model.named_parameters():
        assert torch.isfinite(p).all(), n
    assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if ".ssm." in n)


def test_lbfgs_history_is_cleared_and_the_next_step_works():
    model = Net(("lru",), n=8)
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, history_size=4, max_iter=3)
    assert optimizer_rebind_policy(opt) == "reset"
    for k in range(2):
        closure_step(model, opt, k)
    assert opt.state[opt.param_groups[0]["params"][0]]["old_dirs"]      # a history exists
    reduce_(model, order=4, optimizers=opt)
    assert len(opt.state) == 0
    assert opt._params is opt.param_groups[0]["params"]                  # LBFGS's own view stays valid
    losses = [closure_step(model, opt, 10 + k) for k in range(3)]        # fails on a size mismatch before
    assert all(np.isfinite(losses))
    assert state_sizes(model) == {"blocks.0.ssm": 4}
    # rebind_optimizer_ directly: the summary says everything replaced was dropped
    model2 = Net(("lru",), n=4)
    opt2 = torch.optim.LBFGS(model2.parameters())
    closure_step(model2, opt2, 0)
    old = model2.blocks[0].ssm.B_re
    new = nn.Parameter(old.detach()[:2].clone())
    summary = rebind_optimizer_(opt2, {old: new})
    assert (summary.replaced, summary.mapped, summary.dropped) == (1, 0, 1) and len(opt2.state) == 0
    # a pragmatic rollback after LBFGS stepped on the reduced model: LBFGS steps on at full size
    model3 = Net(("lru",), n=8)
    opt3 = torch.optim.LBFGS(model3.parameters(), lr=0.5, history_size=4, max_iter=3)
    comp = Compressor(model3, opt3, mode="pragmatic", fraction=0.5, events=[1])
    closure_step(model3, opt3, 0)
    comp.step(0, metric=1.0)
    closure_step(model3, opt3, 1)
    assert comp.step(1).changed
    closure_step(model3, opt3, 2)
    comp.step(2, metric=0.0)
    assert comp.stopped and state_sizes(model3) == {"blocks.0.ssm": 8}
    assert np.isfinite(closure_step(model3, opt3, 3))


class SignMomentum(torch.optim.Optimizer):
    """An optimizer from outside torch.optim (sign of a momentum buffer)."""

    def __init__(self, params, lr=1e-2, beta=0.9):
        super().__init__(params, {"lr": lr, "beta": beta})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                buf.mul_(group["beta"]).add_(p.grad)
                p.add_(buf.sign(), alpha=-group["lr"])


def test_unknown_optimizer_is_refused_by_name_and_nothing_changes():
    model = Net(("lru", "s4d"), n=8)
    opt = SignMomentum(model.parameters())
    adam_head = torch.optim.Adam(model.head.parameters(), lr=1e-2)
    train(model, [opt, adam_head], 2)
    assert optimizer_rebind_policy(opt) is None
    captured = capture(model, [opt, adam_head])
    with pytest.raises(UnsupportedOptimizerError, match=r"SignMomentum.*register_optimizer_policy"):
        reduce_(model, order=4, optimizers=[adam_head, opt])
    assert_unchanged(model, captured)
    assert isinstance(UnsupportedOptimizerError("x"), TypeError)
    with pytest.raises(UnsupportedOptimizerError, match="SignMomentum"):   # a Compressor refuses at once
        Compressor(model, [adam_head, opt], mode="fixed", fraction=0.5, events=[1])
    # an unknown optimizer holding no reduced parameter is no obstacle
    model2 = Net(("lru",), n=8)
    head_only = SignMomentum(model2.head.parameters())
    train(model2, head_only, 1)
    assert Compressor(model2, head_only, mode="fixed", fraction=0.5, events=[1]).step(1).changed
    reduce_(model2, order=2, optimizers=head_only)
    # declared per-parameter: supported, its state restarts
    assert register_optimizer_policy(SignMomentum, "per_parameter") is None
    try:
        reduce_(model, order=4, optimizers=[adam_head, opt])
        train(model, [opt, adam_head], 2, seed=3)
        assert all(torch.isfinite(p).all() for p in model.parameters())
    finally:
        assert register_optimizer_policy(SignMomentum, None) == "per_parameter"
    assert optimizer_rebind_policy(SignMomentum) is None
    with pytest.raises(ValueError, match="policy"):
        register_optimizer_policy(SignMomentum, "keep")
    with pytest.raises(TypeError, match="optimizer_class"):
        register_optimizer_policy(object, "reset")


# ------------------------------------------------------------------------------------ item 10
class FullDisk(io.StringIO):
    full = True

    def write(self, text):
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(text)


def test_failing_log_write_does_not_repeat_the_event():
    model = Net(("lru", "s4d"), n=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    log = FullDisk()
    comp = Compressor(model, opt, mode="fixed", fraction=0.5, events=[1, 3], log=log)
    with pytest.warns(CompressorLogWarning, match="No space left on device") as caught:
        report = comp.step(1)
    assert caught[0].filename == __file__                  # stacklevel: the caller's step() line
    assert report.changed and comp.fired == {1}
    assert state_sizes(model) == {"blocks.0.ssm": 4, "blocks.1.ssm": 4}
    assert comp.step(2) is None                             # applied once, not again
    assert state_sizes(model) == {"blocks.0.ssm": 4, "blocks.1.ssm": 4}
    assert [r["event"] for r in comp.history] == ["reduce"]
    log.full = False
    comp.step(3)                                            # the backlog is written first, in order
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(r["event"], r["step"]) for r in lines] == [("reduce", 1), ("reduce", 3)]
    assert state_sizes(model) == {"blocks.0.ssm": 2, "blocks.1.ssm": 2}


def test_unwritable_log_path_warns_and_later_catches_up(tmp_path):
    path = tmp_path / "missing" / "compress.jsonl"          # its directory does not exist yet
    model = Net(("lru",), n=8)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    comp = Compressor(model, opt, mode="pragmatic", fraction=0.5, events=[1, 2, 4], log=path)
    comp.step(0, metric=0.9)
    with pytest.warns(CompressorLogWarning, match="missing"):
        assert comp.step(1).changed
    with pytest.warns(CompressorLogWarning) as caught:
        comp.step(2, metric=0.5)                            # rollback, then the event at 2 is skipped
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "'rollback' record" in messages[0] and "'skip' record" in messages[1]
    assert "3 unwritten" in messages[1] and all(w.filename == __file__ for w in caught)
    assert comp.stopped and comp.fired == {1, 2} and state_sizes(model) == {"blocks.0.ssm": 8}
    path.parent.mkdir()
    comp.step(3, metric=0.5)                                # nothing due: nothing written
    assert not path.exists()
    comp.step(4)                                            # the next record flushes the backlog
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == \
        ["reduce", "rollback", "skip", "skip"]
    assert [r["event"] for r in comp.history] == ["reduce", "rollback", "skip", "skip"]


# ------------------------------------------------------------------------------------ item 13
def noisy_step(model, opt):
    """One training step whose data and dropout come from the global random streams."""
    u = torch.randn(6, 8, 2) + float(np.random.standard_normal()) + random.random()
    y = torch.randint(0, 3, (6,))
    loss = nn.functional.cross_entropy(nn.functional.dropout(model(u), 0.3, training=True), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def seeded_run():
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    model = Net(("lru", "s4d"), n=8, seed=2)
    torch.manual_seed(11)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, opt


def test_rollback_continues_exactly_like_a_run_that_never_reduced():
    # run A tries a reduction at step 3 (random modal selection: uses the compressor's
    # generator), trains two steps, and rolls back at step 5
    model_a, opt_a = seeded_run()
    comp = Compressor(model_a, opt_a, mode="pragmatic", fraction=0.5, events=[3], select="random", seed=5)
    generator_state = comp.generator.get_state()
    for step in range(4):
        noisy_step(model_a, opt_a)
        assert (comp.step(step, metric=1.0) is not None) == (step == 3)
    for step in (4, 5):
        noisy_step(model_a, opt_a)
    comp.step(5, metric=0.0)
    assert comp.stopped
    for _ in range(3):
        noisy_step(model_a, opt_a)

    streams_a = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())

    # run B never tried: four steps, then the same three
    model_b, opt_b = seeded_run()
    for _ in range(4 + 3):
        noisy_step(model_b, opt_b)
    streams_b = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())

    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert a.shape == b.shape and torch.equal(a, b), name
    for sa, sb in zip(opt_a.state.values(), opt_b.state.values()):
        assert set(sa) == set(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(comp.generator.get_state(), generator_state)     # the random selection is undone
    assert torch.equal(streams_a[0], streams_b[0])
    assert np.array_equal(streams_a[1], streams_b[1]) and streams_a[2] == streams_b[2]
