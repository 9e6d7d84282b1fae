"""Issue 8 items 11, 12: failing loads change nothing; checkpoints carry and verify SHA-256 digests."""

import copy
import struct
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lti_reduce import InvalidParameterError  # noqa: E402
from lti_reduce_torch import CheckpointError, CheckpointWarning, Compressor  # noqa: E402
from lti_reduce_torch.checkpoint import load_checkpoint, load_reduced_state_dict_, save_checkpoint  # noqa: E402
from lti_reduce_torch.reduce import reduce_, state_sizes  # noqa: E402
from tests.torch.test_reduce import Net, train  # noqa: E402
from tests.torch.test_reliability import assert_unchanged, capture  # noqa: E402


def two_groups(model):
    ssm = [p for n, p in model.named_parameters() if ".ssm." in n]
    rest = [p for n, p in model.named_parameters() if ".ssm." not in n]
    return [{"params": ssm, "lr": 1e-2}, {"params": rest, "lr": 1e-3, "weight_decay": 0.1}]


def saved_run(tmp_path, kinds=("lru", "s4d"), n=8, order=4):
    model = Net(kinds, n=n)
    opt = torch.optim.AdamW(two_groups(model))
    comp = Compressor(model, opt, mode="fixed", fraction=0.5, events=[1])
    train(model, opt, 1)
    comp.step(1)
    train(model, opt, 1, seed=4)
    path = tmp_path / "run.pt"
    save_checkpoint(path, model, opt, comp, extra={"step": 2, "lr": [1e-2, 1e-3], "tag": "x"})
    return model, opt, comp, path


def fresh_run(kinds=("lru", "s4d"), n=8, seed=5):
    model = Net(kinds, n=n, seed=seed)
    opt = torch.optim.AdamW(two_groups(model))
    train(model, opt, 1, seed=9)          # non-empty optimizer state that a failed load must keep
    return model, opt, Compressor(model, opt, mode="fixed", fraction=0.5, events=[1])


# ------------------------------------------------------------------------------------ item 11
def test_failing_reduced_state_dict_loads_leave_the_model_bit_identical():
    source = Net(("lru", "s4d"), n=8)
    reduce_(source, order=4)
    target, opt, _ = fresh_run()
    captured = capture(target, [opt])
    bad = dict(source.state_dict())
    bad["blocks.7.extra"] = torch.zeros(1)                        # unexpected key (strict)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        load_reduced_state_dict_(target, bad)
    assert_unchanged(target, captured)
    for kinds in (("lru", "lru"), ("lru", "dense")):              # other architectures
        other = Net(kinds, n=8, seed=3)
        reduce_(other, order=4)
        with pytest.raises((RuntimeError, ValueError), match="Missing key|Unexpected key|differ in rank"):
            load_reduced_state_dict_(target, other.state_dict())
        assert_unchanged(target, captured)
    missing = dict(source.state_dict())
    del missing["head.bias"]
    with pytest.raises(RuntimeError, match="Missing key"):
        load_reduced_state_dict_(target, missing)
    assert_unchanged(target, captured)
    assert state_sizes(target) == {"blocks.0.ssm": 8, "blocks.1.ssm": 8}


def test_failing_checkpoint_loads_leave_model_optimizer_and_compressor_unchanged(tmp_path):
    _, _, _, path = saved_run(tmp_path)
    # optimizer groups that do not match (one group instead of two): fails after the model loaded
    model = Net(("lru", "s4d"), n=8, seed=5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train(model, opt, 1, seed=9)
    captured = capture(model, [opt])
    with pytest.raises(ValueError, match="parameter groups"):
        load_checkpoint(path, model, opt)
    assert_unchanged(model, captured)
    # a compressor in another mode: fails after model and optimizer loaded
    model, opt, _ = fresh_run()
    comp = Compressor(model, opt, mode="tolerance", energy=0.2, events=[1])
    comp_state = copy.deepcopy({k: v for k, v in comp.state_dict().items() if k != "generator"})
    captured = capture(model, [opt])
    with pytest.raises(InvalidParameterError, match="mode"):
        load_checkpoint(path, model, opt, comp)
    assert_unchanged(model, captured)
    assert {k: v for k, v in comp.state_dict().items() if k != "generator"} == comp_state
    # another architecture
    model = Net(("lru", "lru"), n=8, seed=5)
    opt = torch.optim.AdamW(two_groups(model))
    captured = capture(model, [opt])
    with pytest.raises(RuntimeError, match="Missing key|Unexpected key"):
        load_checkpoint(path, model, opt)
    assert_unchanged(model, captured)
    # and the matching ones load
    model, opt, comp = fresh_run()
    assert load_checkpoint(path, model, opt, comp) == {"step": 2, "lr": [1e-2, 1e-3], "tag": "x"}
    assert state_sizes(model) == {"blocks.0.ssm": 4, "blocks.1.ssm": 4} and comp.fired == {1}


# ------------------------------------------------------------------------------------ item 12
def member_data(path):
    """``{member name: (start, end)}`` byte ranges of the zip members' data in ``path``."""
    raw = path.read_bytes()
    out = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            out[info.filename.split("/", 1)[1]] = (start, start + info.compress_size)
    return out


def test_flipped_tensor_byte_and_truncation_raise_checkpoint_error(tmp_path):
    model, opt, comp, path = saved_run(tmp_path)
    assert issubclass(CheckpointError, ValueError)
    raw = bytearray(path.read_bytes())
    ranges = member_data(path)
    start, end = ranges["data/0"]
    raw[(start + end) // 2] ^= 0x40
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(raw))
    target, topt, tcomp = fresh_run()
    captured = capture(target, [topt])
    with pytest.raises(CheckpointError, match=r"flipped\.pt.*tensor checkpoint\[.*SHA-256"):
        load_checkpoint(bad, target, topt, tcomp)
    assert_unchanged(target, captured)
    for cut in (0, 10, len(raw) // 2, len(raw) - 1):
        short = tmp_path / f"short{cut}.pt"
        short.write_bytes(path.read_bytes()[:cut])
        with pytest.raises(CheckpointError, match=rf"short{cut}\.pt.*truncated"):
            load_checkpoint(short, target, topt, tcomp)
        assert_unchanged(target, captured)
    # the same file, untouched, loads; a missing file is an OSError, not a CheckpointError
    load_checkpoint(path, target, topt, tcomp)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nowhere.pt", target)


def test_version_1_checkpoints_load_unverified_with_a_warning(tmp_path):
    model, opt, comp, path = saved_run(tmp_path)
    payload = torch.load(path, weights_only=True)
    assert payload["version"] == 2 and payload["integrity"]["algorithm"] == "sha256"
    del payload["integrity"]
    payload["version"] = 1
    old = tmp_path / "v1.pt"
    torch.save(payload, old)
    target, topt, tcomp = fresh_run()
    with pytest.warns(CheckpointWarning, match=r"v1\.pt.*version-1.*unverified") as caught:
        load_checkpoint(old, target, topt, tcomp)
    assert caught[0].filename == __file__
    for (name, a), b in zip(model.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    payload["version"] = 7
    torch.save(payload, old)
    with pytest.raises(CheckpointError, match="version 7"):
        load_checkpoint(old, target)


def test_fuzzed_checkpoints_load_identically_or_raise_checkpoint_error(tmp_path):
    model = Net(("lru",), n=6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, opt, 2)
    reduce_(model, order=3, optimizers=opt)
    train(model, opt, 1, seed=3)
    extra = {"step": 3, "lr": 0.01, "name": "fuzz"}
    path = tmp_path / "good.pt"
    save_checkpoint(path, model, opt, extra=extra)
    raw = path.read_bytes()
    ranges = member_data(path)
    tensor_bytes = [i for name, (a, b) in ranges.items() if name.startswith("data/") for i in range(a, b)]
    pickle_bytes = range(*ranges["data.pkl"])
    template = Net(("lru",), n=6, seed=1)
    expected_model = {k: v.clone() for k, v in model.state_dict().items()}
    expected_opt = opt.state_dict()

    rng = np.random.default_rng(20261130)
    outcome = {"identical": 0, "error": 0, "tensor digest": 0}
    for i in range(200):
        data = bytearray(raw)
        kind = ("truncate", "tensor", "pickle", "anywhere")[i % 4]
        if kind == "truncate":
            data = data[:int(rng.integers(0, len(raw)))]
        else:
            where = {"tensor": tensor_bytes, "pickle": pickle_bytes, "anywhere": range(len(raw))}[kind]
            data[where[int(rng.integers(len(where)))]] ^= 1 << int(rng.integers(8))
        file = tmp_path / f"fuzz{i}.pt"
        file.write_bytes(bytes(data))
        target = copy.deepcopy(template)
        topt = torch.optim.Adam(target.parameters(), lr=1e-2)
        before = capture(target, [topt])
        try:
            got = load_checkpoint(file, target, topt)
        except CheckpointError as exc:
            assert f"fuzz{i}.pt" in str(exc)
            assert_unchanged(target, before)
            outcome["error"] += 1
            outcome["tensor digest"] += "tensor checkpoint[" in str(exc)
        else:
            assert kind not in ("truncate", "tensor"), (i, kind)
            assert got == extra
            state = target.state_dict()
            assert list(state) == list(expected_model)
            assert all(torch.equal(state[k], v) for k, v in expected_model.items())
            got_opt = topt.state_dict()
            assert got_opt["param_groups"] == expected_opt["param_groups"]
            for p, s in expected_opt["state"].items():
                assert all(torch.equal(s[k], got_opt["state"][p][k]) if torch.is_tensor(s[k]) else
                           s[k] == got_opt["state"][p][k] for k in s)
            outcome["identical"] += 1
    assert outcome["error"] + outcome["identical"] == 200
    assert outcome["error"] >= 100 and outcome["tensor digest"] >= 50, outcome


def test_every_plain_type_round_trips_verified_and_edits_are_named(tmp_path):
    model = Net(("lru",), n=4)
    extra = {"size": torch.Size([2, 3]), "dtype": torch.float64, "device": torch.device("cpu"), "c": 1 + 2j,
             "b": b"xy", "t": (1, 2.5, None, True), 7: "int key", 2.5: "float key", None: "none key",
             "neg0": -0.0, "big": 2 ** 80, "u": "\u00e9\u2603", "empty": torch.empty(0), "scalar": torch.tensor(3.0),
             "bf16": torch.ones(3, dtype=torch.bfloat16), "c64": torch.ones(2, dtype=torch.complex64),
             "mask": torch.ones(2, dtype=torch.bool), "view": torch.arange(10.0)[::3]}
    path = tmp_path / "plain.pt"
    save_checkpoint(path, model, extra=extra)
    got = load_checkpoint(path, Net(("lru",), n=4, seed=2))
    assert list(got) == list(extra)
    for key, value in extra.items():
        assert type(got[key]) is type(value), key
        assert torch.equal(got[key], value) if torch.is_tensor(value) else got[key] == value, key
    assert str(got["neg0"]) == "-0.0"

    # the per-tensor list only names the culprit: with the overall digest intact the data is
    payload = torch.load(path, weights_only=True)
    payload["integrity"]["tensors"] = []
    torch.save(payload, tmp_path / "unnamed.pt")
    load_checkpoint(tmp_path / "unnamed.pt", Net(("lru",), n=4, seed=2))
    # edits that keep the file readable: a tensor value, a number, a key, the digest
    for edit, match in ((lambda p: p["model"]["head.bias"].add_(1e-6), r"tensor checkpoint\['model'\]\['head.bias'\]"),
                        (lambda p: p["extra"].update(big=2 ** 80 + 1), "non-tensor data"),
                        (lambda p: p["extra"].update(u2=p["extra"].pop("u")), "non-tensor data"),
                        (lambda p: p["integrity"].update(payload="0" * 64), "non-tensor data"),
                        (lambda p: p.pop("integrity"), "integrity record is missing")):
        payload = torch.load(path, weights_only=True)
        edit(payload)
        edited = tmp_path / "edited.pt"
        torch.save(payload, edited)
        target = Net(("lru",), n=4, seed=3)
        captured = capture(target)
        with pytest.raises(CheckpointError, match=rf"edited\.pt.*{match}"):
            load_checkpoint(edited, target)
        assert_unchanged(target, captured)
