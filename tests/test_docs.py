"""The documentation builds offline with no warnings (Sphinx ``-W``)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_parser")

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                             str(DOCS), str(tmp_path / "html")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    page = (tmp_path / "html" / "conventions.html").read_text(encoding="utf-8")
    # equations render offline: MathJax is a local file, no CDN is referenced
    assert '<script defer="defer" src="_static/mathjax/tex-svg.js">' in page and "cdn." not in page
    assert (tmp_path / "html" / "_static" / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000
    assert (tmp_path / "html" / "write_an_adapter.html").exists()
