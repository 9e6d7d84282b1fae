"""docs/third_party.md runs as written, and the docstring examples of the adapters."""

import doctest
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("LRU_pytorch")
pytest.importorskip("s5")
pytest.importorskip("mambapy")

from lti_reduce_torch.thirdparty import lru_pytorch, s5_pytorch  # noqa: E402

PAGE = Path(__file__).resolve().parents[2] / "docs" / "third_party.md"


def test_page_runs(capsys):
    code = "\n\n".join(re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S))
    assert "reduce_mamba_" in code and "reduce_(model" in code
    exec(compile(code, str(PAGE), "exec"), {"__name__": "third_party_page"})
    assert "reduced" in capsys.readouterr().out


@pytest.mark.parametrize("module", [lru_pytorch, s5_pytorch])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
