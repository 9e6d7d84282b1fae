"""The powered study: forced-size ablations end at CompreSSM's sizes; summaries pair by seed."""

import json

from validation.presets import get_preset
from validation.study import run_paired, run_curve, summarize, main


def test_paired_study_equal_final_sizes(tmp_path):
    cfg = get_preset("tiny").replace(n=12, h=8, steps=16, taus=(0.3,), seeds=(0, 1), events=(4, 8))
    res = run_paired(cfg, str(tmp_path))
    by = {(r["method"], r["seed"]): r for r in res["runs"]}
    assert {m for m, _ in by} == {"compressm", "small", "random-eq", "smallest-eq"}
    for seed in (0, 1):
        sizes = by["compressm", seed]["final_sizes"]
        assert sizes[0] < 12                               # CompreSSM did reduce
        for m in ("small", "random-eq", "smallest-eq"):
            assert by[m, seed]["final_sizes"] == sizes
        # the forced ablations follow CompreSSM's trajectory step by step
        assert by["random-eq", seed]["sizes_over_steps"] == by["compressm", seed]["sizes_over_steps"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["runs"]) == 8
    # a rerun into the same folder keeps the finished runs and trains nothing
    again = run_paired(cfg, str(tmp_path))
    assert again["runs"] == saved["runs"]
    # ablations in a separate folder take CompreSSM's trajectories from the first one
    other = tmp_path / "ablation"
    res2 = run_paired(cfg.replace(seeds=(1, 7)), str(other), methods=("smallest-eq",), sizes_from=[str(tmp_path)])
    assert [(r["method"], r["seed"]) for r in res2["runs"]] == [("smallest-eq", 1)]    # seed 7 has no reference
    assert res2["runs"][0]["final_sizes"] == by["compressm", 1]["final_sizes"]
    text = summarize([str(tmp_path)])
    assert "compressm - small | 2 |" in text and "compressm - random-eq | 2 |" in text


def test_curve_and_cli_summary(tmp_path, capsys):
    cfg = get_preset("tiny").replace(steps=4, seeds=(0,))
    res = run_curve(cfg, [2, 4], str(tmp_path))
    assert [r["final_sizes"] for r in res["runs"]] == [[2], [4]]
    assert run_curve(cfg, [2, 4], str(tmp_path))["runs"] == res["runs"]      # resumed: nothing rerun
    assert main(["summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| 2 | 1 |" in out and "| 4 | 1 |" in out


def test_slack_chain_is_ordered():
    # each number of validation.slack bounds the next (up to the rtol of the Hinf search)
    import torch
    from lti_reduce_torch.layers import LRU
    from validation.slack import slack_of_reduction
    torch.manual_seed(0)
    layer = LRU(4, 10).double()
    u = torch.randn(8, 40, 4, dtype=torch.float64)
    row = slack_of_reduction(layer, u, 0.2)
    assert row["new_n"] < row["old_n"]
    chain = [row[k] for k in ("bound", "hinf_complex", "hinf_real", "horizon_L", "measured")]
    for hi, lo in zip(chain, chain[1:]):
        assert lo <= hi * (1 + 1e-8)
    assert chain[-1] > 0


def test_energy_rank_examples():
    from validation.study import energy_rank
    assert energy_rank([4, 3, 2, 1], 0.05) == 4      # needs 9.5 of 10
    assert energy_rank([1, 2, 3, 4], 0.15) == 3      # sorted first; needs 8.5 of 10
    assert energy_rank([1.0, 0.9, 0.8, 0.7], 0.3) == 3  # needs 2.38 of 3.4


def test_diverged_run_is_recorded_and_left_out(tmp_path, monkeypatch):
    import validation.study as study

    def diverge(rs, seed, tau, select="balanced"):
        raise FloatingPointError(f"compressm s{seed}: loss became nan at step 3")

    monkeypatch.setattr(study, "run_compressm", diverge)
    cfg = get_preset("tiny").replace(steps=6, seeds=(0,), events=(2,))
    res = run_paired(cfg, str(tmp_path))
    assert [(r["method"], r.get("failed") is not None) for r in res["runs"]] == [("compressm", True)]
    text = summarize([str(tmp_path)])
    assert "Diverged runs" in text and "loss became nan" in text


def test_variant_options_reach_the_compressor(tmp_path, monkeypatch):
    # --horizon L, --output real, --window: the Compressor receives them, the folder's config records them
    import lti_reduce_torch
    import validation.methods as methods
    seen = []

    class Spy(lti_reduce_torch.Compressor):
        def __init__(self, *a, **k):
            seen.append((k["horizon"], k["output"], k["events"]))
            super().__init__(*a, **k)

    monkeypatch.setattr(methods, "Compressor", Spy)
    argv = ["paired", "--preset", "tiny", "--seeds", "0", "--steps", "20", "--tau", "0.3", "--methods", "compressm",
            "small", "--horizon", "L", "--output", "real", "--window", "0", "0.5", "--out", str(tmp_path)]
    assert main(argv) == 0
    cfg = json.loads((tmp_path / "results.json").read_text())["config"]
    from validation.data import load_dataset
    length = load_dataset(cfg["dataset"]).seq_len
    assert seen and seen[0][0] == length and seen[0][1] == "real"
    assert max(seen[0][2]) == 10 and cfg["event_window"] == [0.0, 0.5]     # events in the first half
    assert cfg["horizon"] == "L" and cfg["output"] == "real"


def test_bad_variant_options_are_refused(capsys):
    import pytest
    from validation.errors import ConfigError
    from validation.presets import validate
    with pytest.raises(SystemExit):
        main(["paired", "--preset", "tiny", "--horizon", "0", "--out", "x"])
    assert "--horizon must be a positive step count or L" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="output must be 'complex' or 'real'"):
        validate(get_preset("tiny").replace(output="imag"))
    with pytest.raises(ConfigError, match="horizon must be None"):
        validate(get_preset("tiny").replace(horizon=True))


def test_pareto_groups_variants_and_pairs_by_seed(tmp_path):
    # two folders of one variant merge into one row; another tau is its own row; the paired
    # difference is the mean of the per-seed differences
    from validation.pareto import pareto_rows, pareto_table, pareto_figure, variant_label

    def folder(name, tau, seeds, acc_c, acc_s, kind="paired"):
        cfg = {"taus": [tau], "event_window": [0.0, 0.1]}
        runs = []
        for s, a, b in zip(seeds, acc_c, acc_s):
            t = {"cpu_s": 10.0, "reduction_s": 0.5}
            runs.append({"method": "compressm", "seed": s, "test_acc": a, "final_sizes": [8], "time": t})
            runs.append({"method": "small", "seed": s, "test_acc": b, "final_sizes": [8], "time": t})
        path = tmp_path / name
        path.mkdir()
        (path / "results.json").write_text(json.dumps({"kind": kind, "config": cfg, "dataset": "toy", "runs": runs}))
        return str(path)

    a = folder("a", 0.05, [0, 1], [0.90, 0.80], [0.85, 0.80])
    b = folder("b", 0.05, [2], [0.70], [0.72])
    c = folder("c", 0.2, [0, 1], [0.5, 0.6], [0.5, 0.6])
    rows = pareto_rows([a, b, c])
    assert [r["label"] for r in rows] == ["tau=0.05", "tau=0.2"]       # equal sizes: sorted by label
    r = rows[0]
    assert r["pairs"] == 3 and abs(r["diff"].mean - 100 * (0.05 + 0.0 - 0.02) / 3) < 1e-9
    assert "| tau=0.2 | 2 |" in pareto_table([a, b, c])
    d = folder("d", 0.05, [0, 1], [0.95, 0.82], [0.9, 0.8])
    (tmp_path / "d" / "results.json").write_text((tmp_path / "d" / "results.json").read_text().replace(
        '"event_window": [0.0, 0.1]', '"event_window": [0.0, 0.1], "horizon": "L"'))
    rows = {r["label"]: r for r in pareto_rows([a, b, d])}
    vs = rows["tau=0.05, horizon=L"]["vs_default"]
    assert vs["diff"].n == 2 and abs(vs["diff"].mean - 100 * (0.05 + 0.02) / 2) < 1e-9 and vs["size_change"] == 0
    assert rows["tau=0.05"]["vs_default"] is None
    assert variant_label((0.1, "L", (0.0, 0.25), "real")) == "tau=0.1, horizon=L, events in 0-25 %, output=real"
    out = pareto_figure([a, b, c], str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").stat().st_size > 1000 and out.endswith("p.png")


def test_family_table_holm(tmp_path, capsys):
    import pytest
    from validation.study import parse_comparison
    assert parse_comparison("lagcorr tau=0.1=runs/a,runs/b:compressm-small") == (
        "lagcorr tau=0.1", ["runs/a", "runs/b"], "compressm", "small")
    with pytest.raises(ValueError, match="LABEL=FOLDER"):
        parse_comparison("runs/a:compressm")
    runs = []
    for s in range(6):
        runs.append({"method": "compressm", "seed": s, "test_acc": 0.9 + 0.01 * s + 0.02})
        runs.append({"method": "small", "seed": s, "test_acc": 0.9 + 0.01 * s + (0.001 if s % 2 else -0.001)})
    (tmp_path / "results.json").write_text(json.dumps({"runs": runs}))
    assert main(["family", f"x={tmp_path}:compressm-small", f"y={tmp_path}:small-compressm"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| x") or line.startswith("| y")]
    assert "+2.00" in rows[0] and "-2.00" in rows[1] and rows[0].endswith("yes |")
    assert main(["family", f"z={tmp_path}:compressm-kd"]) == 2
    assert "fewer than 2 seeds" in capsys.readouterr().err


def test_failure_table_counts_unique_runs(tmp_path):
    from validation.study import failure_table
    runs = []
    for s in range(4):
        runs.append({"method": "compressm", "seed": s, "test_acc": 0.99, "final_sizes": [8]})
        runs.append({"method": "small", "seed": s, "test_acc": 0.5 if s < 2 else 0.99, "final_sizes": [8]})
    for name in ("a", "b"):        # the same small runs in two folders count once; CompreSSM twice
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"runs": runs}))
    text = failure_table([str(tmp_path / "a"), str(tmp_path / "b")], below=0.9)
    assert "| compressm | 8 | 8-8 | 0 | 99.00 |" in text
    assert "| small | 4 | 8-8 | 2 | 50.00 |" in text
    assert "Fisher's exact test" in text


def test_bounds_table_adds_an_all_row(capsys, tmp_path):
    lay = lambda b, m: {"measured_gain": m, "error_bound": b, "old_n": 8, "new_n": 4}     # noqa: E731
    runs = [{"method": "compressm", "seed": 0, "events": [{"layers": [lay(10.0, 1.0), lay(4.0, 2.0)]}]},
            {"method": "random-eq", "seed": 0, "events": [{"layers": [lay(30.0, 1.0)]}]}]
    (tmp_path / "results.json").write_text(json.dumps({"runs": runs}))
    assert main(["bounds", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| compressm | 2 | 6.0 | 2.0 | 10.0 |" in out and "| all | 3 | 10.0 | 2.0 | 30.0 |" in out


def test_bad_study_options_exit_2_with_one_line(capsys, tmp_path):
    import pytest
    out = tmp_path / "never"
    for argv, needle in ((["paired", "--preset", "tiny", "--window", "0.5", "0.1", "--out", str(out)],
                          "event_window must satisfy"),
                         (["failures", str(tmp_path), "--below", "1.5"], "--below must be an accuracy fraction"),
                         (["failures", str(tmp_path), "--below", "x"], "--below must be an accuracy fraction")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and needle in capsys.readouterr().err
    assert not out.exists()                                   # nothing written
    assert main(["bounds", str(tmp_path / "missing")]) == 2
    assert "is not a study folder" in capsys.readouterr().err
