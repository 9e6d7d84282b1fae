"""Every script on docs/training_loop.md runs as shown (plain PyTorch, DDP on 2 processes, Lightning)."""

import os
import pathlib
import re
import runpy
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "training_loop.md"


def scripts():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 3, "the page shows 3 scripts: plain PyTorch, DDP, Lightning"
    return dict(zip(("plain", "ddp", "lightning"), blocks))


def run_here(name, tmp_path, monkeypatch):
    """Run a page script in this process, as ``__main__``, from an empty directory."""
    script = tmp_path / f"page_{name}.py"   # not lightning.py: it would shadow the package
    script.write_text(scripts()[name], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")


def test_plain_pytorch_script(tmp_path, monkeypatch, capsys):
    run_here("plain", tmp_path, monkeypatch)
    assert capsys.readouterr().out.count("ReductionReport(") == 2
    assert (tmp_path / "compressed.pt").exists()


@pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning",
                            "ignore:.*does not have many workers:UserWarning",
                            "ignore:`isinstance.treespec, LeafSpec.` is deprecated:FutureWarning")
def test_lightning_script(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    run_here("lightning", tmp_path, monkeypatch)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def test_ddp_script_on_two_processes(tmp_path):
    script = tmp_path / "page_ddp.py"
    script.write_text(scripts()["ddp"], encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=150)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for rank in (0, 1):
        assert f"rank {rank}: {{'ssm': 18}}" in proc.stdout and f"rank {rank}: {{'ssm': 13}}" in proc.stdout
