"""docs/control_engineers.md: every block runs, in order, and prints exactly what the page shows.

``pycon`` blocks are doctests sharing one namespace; ``console`` blocks are ``$ lti-reduce ...``
commands whose stdout (then stderr) must equal the lines below them. All run in one empty
directory, so the files a block writes are the files the next block reads.
"""

import doctest
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from .conftest import cli_command, run_cli

PAGE = Path(__file__).resolve().parents[2] / "docs" / "control_engineers.md"
BLOCK = re.compile(r"^```(pycon|console)\n(.*?)^```$", re.S | re.M)


def blocks():
    return [(kind, body) for kind, body in BLOCK.findall(PAGE.read_text(encoding="utf-8"))]


def console_commands(body):
    """``[(argv, expected output)]`` from ``$ command`` lines and the lines after them."""
    out = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out.append((shlex.split(line[2:]), []))
        else:
            out[-1][1].append(line)
    return [(argv, "\n".join(lines)) for argv, lines in out]


def test_page_is_in_the_toctree():
    index = (PAGE.parent / "index.rst").read_text(encoding="utf-8")
    assert re.search(r"^\s+control_engineers$", index, flags=re.M)


def test_every_block_prints_what_the_page_shows(tmp_path, monkeypatch):
    pytest.importorskip("control")
    pytest.importorskip("slycot", reason="the page compares with python-control's balred, which needs slycot")
    found = blocks()
    assert sum(kind == "console" for kind, _ in found) >= 6 and sum(kind == "pycon" for kind, _ in found) >= 4
    monkeypatch.chdir(tmp_path)
    globs = {}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    failures = []
    with np.printoptions(precision=8, suppress=False, linewidth=75):
        for number, (kind, body) in enumerate(found):
            if kind == "pycon":
                test = parser.get_doctest(body, globs, f"block {number}", str(PAGE), 0)
                result = runner.run(test, out=failures.append, clear_globs=False)
                assert result.failed == 0, "".join(failures)
                globs.update(test.globs)   # DocTest works on a copy: carry the names on
                continue
            for argv, expected in console_commands(body):
                assert argv[0] == "lti-reduce", argv
                result = run_cli(*argv[1:], cwd=tmp_path)
                shown = (result.stdout + result.stderr).rstrip("\n")
                assert shown == expected, f"$ {' '.join(argv)}\n--- page\n{expected}\n--- actual\n{shown}"
                assert result.returncode == (2 if "lti-reduce: error:" in expected else 0)
    assert cli_command()
