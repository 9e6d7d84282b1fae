"""benchmarks/bench_gpu.py runs end to end on the CPU (the CUDA rows need a GPU: not in CI)."""

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_gpu_cpu_smoke(tmp_path):
    out = tmp_path / "gpu.md"
    env = dict(os.environ, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_gpu.py"), "--device", "cpu",
                          "--quick", "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [line for line in out.read_text().splitlines() if re.match(r"\| (LRU|S5|S4D) \| complex", line)]
    assert len(rows) == 6                                  # 3 layers x 2 precisions, CPU only
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == "cpu"
        assert float(cells[3].split()[0]) > 0 and all(float(c.split()[0].rstrip("x")) > 0 for c in cells[5:8])
        assert 0 < int(cells[4]) <= 40                     # host reads of one event


def test_bench_gpu_refuses_a_missing_cuda_device():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_gpu.py"), "--device", "cuda",
                          "--quick"], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT),
                         timeout=120)
    assert run.returncode == 2 and "no CUDA device" in run.stderr
