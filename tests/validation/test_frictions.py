"""A new user's frictions (issue 7 item 7): device errors, help text, compact table, statistics, figures."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import validation.report as report
from validation.presets import get_preset
from validation.runner import run_experiment

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "validation", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a torch without CUDA")
def test_cuda_on_a_cpu_torch_is_a_clean_error_and_writes_nothing(tmp_path):
    out = cli("demo", "--device", "cuda", "--out", str(tmp_path / "demo"), cwd=tmp_path)
    assert out.returncode == 2
    assert "--device cuda" in out.stderr and "use --device cpu" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "demo").exists() and not (tmp_path / "runs").exists()


def test_bad_device_string_is_a_clean_error(tmp_path):
    out = cli("run", "--preset", "tiny", "--device", "gpu0", cwd=tmp_path)
    assert out.returncode == 2 and "is not a torch device" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()


def test_run_help_names_the_real_out_default(tmp_path):
    out = cli("run", "--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "runs/<preset>" in out.stdout and "default: None" not in out.stdout


@pytest.fixture(scope="module")
def one_seed_run(tmp_path_factory):
    """Full and CompreSSM only, one seed: no KD, and too few seeds for best-3 or a std."""
    out = tmp_path_factory.mktemp("one")
    cfg = get_preset("tiny").replace(methods=("full", "compressm"), weyl_steps=0)
    figures = []
    real_save = report._save

    def keep(fig, path):
        figures.append((os.path.basename(path), fig))
        return real_save(fig, path)

    report._save = keep
    try:
        results = run_experiment(cfg, out_dir=str(out), progress=False, command="test", echo=False)
    finally:
        report._save = real_save
    return cfg, results, dict(figures), out


def test_compact_table_and_honest_statistics(one_seed_run):
    cfg, results, _, out = one_seed_run
    rows = results["summary"]
    assert all(r["acc_best3"] is None and r["acc_std"] is None for r in rows)
    table = report.write_report(results, str(out), figures=False)
    assert max(len(line) for line in table.splitlines()) <= 120
    assert "(1 seed)" in table and "± 0.00" not in table and "best-3" not in table
    assert f"  {cfg.n}  " in table and f"{cfg.n}.0" not in table           # integer sizes
    md = (out / "results.md").read_text()
    assert "step ms after last event" in md                                 # the full table stays there


def test_figures_name_the_preset_and_draw_honest_chance_levels(one_seed_run):
    cfg, _, figures, _ = one_seed_run
    title = f"preset {cfg.name!r} on {cfg.dataset}"
    for name in ("accuracy_vs_size.png", "accuracy_vs_wallclock.png", "state_size_over_steps.png"):
        assert figures[name].axes[0].get_title() == title
    assert "KD" not in figures["accuracy_vs_wallclock.png"].axes[0].get_xlabel()
    assert title in figures["hsv_spectra.png"]._suptitle.get_text()
    overlap, kendall = figures["ranking_stability.png"].axes
    assert "chance level r/n" in [line.get_label() for line in overlap.get_lines()]
    chance = [line for line in kendall.get_lines() if line.get_label() == "chance level 0"]
    assert chance and set(chance[0].get_ydata()) == {0.0}
    assert "r/n" not in " ".join(line.get_label() for line in kendall.get_lines())
