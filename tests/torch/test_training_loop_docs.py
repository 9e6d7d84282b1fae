"""Every script on docs/training_loop.md runs as shown (plain PyTorch, DDP on 2 processes, Lightning)."""

import os
import pathlib
import re
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


@pytest.mark.parametrize("name", ["plain", "ddp", "lightning"])
def test_page_script_runs(name, tmp_path):
    if name == "lightning":
        pytest.importorskip("lightning")
    script = tmp_path / f"page_{name}.py"   # not lightning.py: it would shadow the package
    script.write_text(scripts()[name], encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=150)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    if name == "plain":
        assert proc.stdout.count("ReductionReport(") == 2
    if name == "ddp":
        for rank in (0, 1):
            assert f"rank {rank}: {{'ssm': 18}}" in proc.stdout and f"rank {rank}: {{'ssm': 13}}" in proc.stdout
