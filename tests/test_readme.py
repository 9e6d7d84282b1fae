"""The README's PyTorch snippet runs as written (with a model, an optimizer and data supplied)."""

import json
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

README = Path(__file__).resolve().parents[1] / "README.md"


def test_compressor_snippet_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    snippet = [b for b in blocks if "Compressor(" in b]
    assert len(snippet) == 1
    code = snippet[0]
    assert "import LRU" not in code and "metric=" not in code.split("compressor.step(")[1].split(")")[0]
    from lti_reduce_torch import LRU
    torch.manual_seed(0)
    model = torch.nn.Sequential(LRU(3, 16, dtype=torch.float64))
    namespace = {"model": model, "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3),
                 "total_steps": 40, "loader": [None] * 40}
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), namespace)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if "step" in e][:1] and model[0].n < 16
