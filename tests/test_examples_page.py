"""docs/examples.rst shows what its scripts print: every output line on the page, from a fresh run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "examples.rst"
SCRIPTS = ["docs/examples/reduce_continuous_and_discrete.py", "docs/examples/compress_lru_torch.py"]
# wall-clock times vary from run to run: the report header "(..., 0.061 s)" and its time[s] column
_TIMES = [(re.compile(r"\d+\.\d+ s\)"), "<t> s)"),
          (re.compile(r"^(\S+\s+\d+\s+\d+\s+(?:reduced|unchanged|refused)\s+\S+\s+)\d+\.\d+"), r"\1<t>")]


def normalise(line):
    line = line.strip()
    for pattern, repl in _TIMES:
        line = pattern.sub(repl, line)
    return line


def page_output_lines():
    text = PAGE.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"\.\. code-block:: text\n\n((?:   .*\n|\n)+)", text):
        lines += [normalise(x) for x in block.splitlines() if x.strip()]
    return lines


def test_every_output_line_on_the_page_comes_from_a_fresh_run():
    pytest.importorskip("torch")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    printed = set()
    for script in SCRIPTS:
        out = subprocess.run([sys.executable, script], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        printed.update(normalise(x) for x in out.stdout.splitlines())
    shown = page_output_lines()
    assert len(shown) > 40                    # the page's output blocks were found
    missing = [line for line in shown if line not in printed]
    assert not missing, "lines on docs/examples.rst that a fresh run does not print:\n" + "\n".join(missing)
