"""Reduced checkpoints load strictly into freshly built full-size models and resume exactly."""

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lti_reduce import ShapeError, InvalidParameterError  # noqa: E402
from lti_reduce_torch.checkpoint import (load_reduced_state_dict_, save_checkpoint, load_checkpoint,  # noqa: E402
                                         ReducedLoadResult)
from lti_reduce_torch.optim import rebind_optimizer_  # noqa: E402
from lti_reduce_torch.reduce import reduce_, state_sizes  # noqa: E402
from lti_reduce_torch.schedule import Compressor  # noqa: E402
from tests.torch.test_reduce import Net, train  # noqa: E402

KINDS = ("lru", "s4d", "dense")


def groups_by_decay(model):
    decay = [p for p in model.parameters() if not getattr(p, "_no_weight_decay", False)]
    no_decay = [p for p in model.parameters() if getattr(p, "_no_weight_decay", False)]
    return [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}]


def reduced_run(tmp_path):
    model = Net(KINDS, n=16)
    opt = torch.optim.AdamW(groups_by_decay(model), lr=1e-2)
    comp = Compressor(model, opt, mode="tolerance", energy=0.2, events=[2])
    for step in range(4):
        train(model, opt, 1, seed=step)
        comp.step(step)
    assert state_sizes(model)["blocks.0.ssm"] < 16
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, opt, comp, extra={"step": 4, "note": "sCIFAR", "lr": [1e-2]})
    return model, opt, comp, path


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]), k


def test_resume_into_fresh_full_size_model_is_bit_identical(tmp_path):
    model, opt, comp, path = reduced_run(tmp_path)
    train(model, opt, 3, seed=100)

    fresh = Net(KINDS, n=16, seed=123)           # other init, full size
    opt2 = torch.optim.AdamW(groups_by_decay(fresh), lr=1e-2)
    comp2 = Compressor(fresh, opt2, mode="tolerance", energy=0.2, events=[2])
    extra = load_checkpoint(path, fresh, opt2, comp2)
    assert extra == {"step": 4, "note": "sCIFAR", "lr": [1e-2]}
    assert comp2.fired == {2}
    assert [len(g["params"]) for g in opt2.param_groups] == [len(g["params"]) for g in opt.param_groups]
    assert {id(p) for g in opt2.param_groups for p in g["params"]} == {id(p) for p in fresh.parameters()}
    train(fresh, opt2, 3, seed=100)
    assert_same_state(model, fresh)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i in s1["state"]:
        for k, v in s1["state"][i].items():
            assert torch.equal(v, s2["state"][i][k])


def test_build_the_optimizer_after_loading(tmp_path):
    model, opt, comp, path = reduced_run(tmp_path)
    train(model, opt, 2, seed=200)
    fresh = Net(KINDS, n=16, seed=5)
    result = load_reduced_state_dict_(fresh, torch.load(path, weights_only=True)["model"])
    assert isinstance(result, ReducedLoadResult)
    assert result.resized["blocks.0.ssm"] == (16, state_sizes(model)["blocks.0.ssm"])
    assert result.missing_keys == [] and result.unexpected_keys == []
    # parameter attributes survive the resize (they decide the groups)
    assert fresh.blocks[0].ssm.nu_log._no_weight_decay is True
    opt2 = torch.optim.AdamW(groups_by_decay(fresh), lr=1e-2)
    opt2.load_state_dict(torch.load(path, weights_only=True)["optimizer"])
    train(fresh, opt2, 2, seed=200)
    assert_same_state(model, fresh)


def test_rebind_an_optimizer_built_before_loading(tmp_path):
    model, opt, comp, path = reduced_run(tmp_path)
    fresh = Net(KINDS, n=16, seed=7)
    opt2 = torch.optim.AdamW(groups_by_decay(fresh), lr=1e-2)
    result = load_reduced_state_dict_(fresh, torch.load(path, weights_only=True)["model"])
    rebind_optimizer_(opt2, result.replacements)
    assert {id(p) for g in opt2.param_groups for p in g["params"]} == {id(p) for p in fresh.parameters()}
    opt2.load_state_dict(torch.load(path, weights_only=True)["optimizer"])
    train(model, opt, 1, seed=300)
    train(fresh, opt2, 1, seed=300)
    assert_same_state(model, fresh)


def _snapshot(model):
    return {k: v for k, v in model.named_parameters()}


def test_inconsistent_shapes_are_rejected_and_nothing_changes():
    source = Net(KINDS, n=16)
    reduce_(source, order=6)
    state = source.state_dict()
    fresh = Net(KINDS, n=16)
    before = _snapshot(fresh)
    bad = dict(state)
    bad["blocks.0.ssm.B_re"] = torch.zeros(7, 4)          # disagrees with nu_log's n=6
    with pytest.raises(ShapeError, match="blocks.0.ssm"):
        load_reduced_state_dict_(fresh, bad)
    assert all(getattr_path(fresh, k) is v for k, v in before.items())
    bad = dict(state)
    bad["blocks.0.ssm.D"] = torch.zeros(5)                  # h differs: not a state dimension
    with pytest.raises(ShapeError, match=r"blocks\.0\.ssm\.D"):
        load_reduced_state_dict_(fresh, bad)
    bad = Net(KINDS, n=16).state_dict()                     # full size, but h differs in one tensor
    bad["blocks.1.ssm.D"] = torch.zeros(5)
    with pytest.raises(ShapeError, match="other than the state dimension"):
        load_reduced_state_dict_(fresh, bad)
    bad = dict(state)
    bad["blocks.9.extra"] = torch.zeros(1)                  # strict load fails: resizes are undone
    with pytest.raises(RuntimeError, match="Unexpected key"):
        load_reduced_state_dict_(fresh, bad)
    assert all(getattr_path(fresh, k) is v for k, v in before.items())
    assert state_sizes(fresh)["blocks.0.ssm"] == 16


def getattr_path(module, name):
    for part in name.split("."):
        module = getattr(module, part)
    return module


def test_full_size_state_dict_into_a_reduced_model():
    full = Net(KINDS, n=16, seed=1)
    small = Net(KINDS, n=16, seed=2)
    reduce_(small, order=5)
    load_reduced_state_dict_(small, full.state_dict())
    assert state_sizes(small) == state_sizes(full)
    assert_same_state(full, small)


def test_save_rejects_non_plain_extra_and_bad_files(tmp_path):
    model = Net(("lru",), n=8)
    path = tmp_path / "x.pt"
    with pytest.raises(TypeError, match="extra"):
        save_checkpoint(path, model, extra={"fn": print})
    with pytest.raises(TypeError, match="extra"):
        save_checkpoint(path, model, extra={"obj": nn.Linear(1, 1)})
    assert not path.exists() and list(tmp_path.iterdir()) == []
    torch.save({"weights": torch.ones(1)}, path)
    with pytest.raises(InvalidParameterError, match="not an lti_reduce_torch checkpoint"):
        load_checkpoint(path, model)
    save_checkpoint(path, model)
    with pytest.raises(InvalidParameterError, match="no optimizer"):
        load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_several_optimizers_roundtrip(tmp_path):
    model = Net(("lru",), n=10)
    ssm = list(model.blocks[0].ssm.parameters())
    ids = {id(p) for p in ssm}
    opts = [torch.optim.Adam(ssm, lr=1e-3), torch.optim.SGD([p for p in model.parameters() if id(p) not in ids],
                                                            lr=1e-2, momentum=0.9)]
    train(model, opts, 2)
    reduce_(model, order=4, optimizers=opts)
    train(model, opts, 1, seed=3)
    save_checkpoint(tmp_path / "c.pt", model, opts)
    fresh = Net(("lru",), n=10, seed=8)
    ssm2 = list(fresh.blocks[0].ssm.parameters())
    ids2 = {id(p) for p in ssm2}
    opts2 = [torch.optim.Adam(ssm2, lr=1e-3),
             torch.optim.SGD([p for p in fresh.parameters() if id(p) not in ids2], lr=1e-2, momentum=0.9)]
    load_checkpoint(tmp_path / "c.pt", fresh, opts2)
    train(model, opts, 2, seed=4)
    train(fresh, opts2, 2, seed=4)
    assert_same_state(model, fresh)
    with pytest.raises(InvalidParameterError, match="optimizer"):
        load_checkpoint(tmp_path / "c.pt", Net(("lru",), n=10), torch.optim.SGD(fresh.parameters(), lr=0.1))
