"""Every method end to end on a tiny configuration; table, JSON and figures; bit-for-bit reruns."""

import json
import os

import pytest
import torch

from validation.presets import get_preset, METHODS
from validation.runner import run_experiment


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    cfg = get_preset("tiny")
    results = run_experiment(cfg, out_dir=str(out), progress=False, command="test", echo=False)
    return cfg, results, out


def test_every_method_runs_and_writes_outputs(tiny_run):
    cfg, results, out = tiny_run
    methods = {r["method"] for r in results["runs"]}
    assert methods == set(METHODS)
    assert (out / "results.md").read_text().count("| ") > 10
    data = json.loads((out / "results.json").read_text())
    assert {row["method"] for row in data["summary"]} == set(METHODS)
    figs = data["figures"]
    for name in ("accuracy_vs_size.png", "accuracy_vs_wallclock.png", "state_size_over_steps.png", "hsv_spectra.png"):
        path = out / "figures" / name
        assert os.path.relpath(path, out) in figs
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "results.partial.json").exists()


def test_report_subcommand_rerenders(tiny_run, capsys):
    from validation.cli import main
    _, _, out = tiny_run
    (out / "results.md").unlink()
    assert main(["report", str(out)]) == 0
    assert "CompreSSM" in capsys.readouterr().out and (out / "results.md").exists()


def test_records_hold_what_the_issue_asks(tiny_run):
    cfg, results, _ = tiny_run
    by = {r["method"]: r for r in results["runs"]}
    for rec in results["runs"]:
        t = rec["time"]
        assert t["total_s"] == pytest.approx(t["train_s"] + t["reduction_s"] + t["eval_s"])
        assert 0.0 <= rec["test_acc"] <= 1.0
        assert rec["memory"]["peak_rss_mb"] > 0
        assert rec["step_time"]["segments"]
        assert rec["checkpoints"] and rec["checkpoints"][-1]["step"] == cfg.steps    # HSVs at the end
    cm = by["compressm"]
    assert cm["final_sizes"][0] < cfg.n and [e["step"] for e in cm["events"]] == results["events"]
    assert [c["step"] for c in cm["checkpoints"][1:-1]] == results["events"]          # HSVs at every event
    assert len(cm["step_time"]["segments"]) >= 2                                      # before / after events
    assert by["small"]["final_sizes"] == cm["final_sizes"] == by["kd"]["final_sizes"] == by["nuclear"]["final_sizes"]
    assert by["kd"]["time"]["total_with_teacher_s"] == pytest.approx(by["kd"]["time"]["total_s"] + by["full"]["time"]["total_s"])
    assert by["full"]["weyl"]                                                         # Weyl check recorded
    an = results["analysis"]
    assert all(w["violations"] == 0 for w in an["weyl"])
    assert an["ranking_stability"]["table"]
    assert any(seg["method"] == "compressm" for seg in an["step_segments"])
    assert rec["memory"]["activation_mb"] > 0 and by["small"]["memory"]["activation_mb"] < by["full"]["memory"]["activation_mb"]
    rows = [b for b in an["bound_check"] if b["method"] == "compressm"]
    assert rows and all(b["holds"] for b in rows)
    summ = {(r["method"], r["tau"]): r for r in results["summary"]}
    assert summ[("full", None)]["total_ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize("select", ["balanced", "random"])
def test_a_seed_is_reproducible_bit_for_bit(select):
    from validation.data import load_dataset
    from validation.methods import RunSettings, run_compressm
    cfg = get_preset("tiny").replace(steps=8, events=(2, 4), analysis=False, dropout=0.1)
    data = load_dataset(cfg.dataset)
    outs = []
    for _ in range(2):
        rs = RunSettings(cfg, data, progress=False)
        rec, model = run_compressm(rs, seed=3, tau=0.1, select=select)
        outs.append((rec, {k: v.clone() for k, v in model.state_dict().items()}))
    (r1, s1), (r2, s2) = outs
    assert r1["test_acc"] == r2["test_acc"] and r1["val_loss"] == r2["val_loss"]
    assert r1["final_sizes"] == r2["final_sizes"] and r1["loss_curve"] == r2["loss_curve"]
    assert s1.keys() == s2.keys()
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k
