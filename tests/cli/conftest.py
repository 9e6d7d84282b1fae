"""Helpers for the command-line tests: run ``lti-reduce`` as a subprocess, write system files."""

import os
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def cli_command():
    """The installed console script, or ``python -m lti_reduce`` where it is not installed."""
    exe = shutil.which("lti-reduce")
    return [exe] if exe else [sys.executable, "-m", "lti_reduce"]


def run_cli(*args, cwd, extra_path=()):
    """Run ``lti-reduce ARGS`` importing this checkout's lti_reduce; returns CompletedProcess."""
    path = [str(p) for p in extra_path] + [str(REPO)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    return subprocess.run(cli_command() + [str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def assert_bad_input(result, *fragments):
    """Exit status 2 and exactly one line on stderr, containing every fragment, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def write_mat73(path, **arrays):
    """A MATLAB v7.3 file as MATLAB writes it: a 512-byte MAT header, then HDF5 datasets
    stored column-major (the transpose), class in the ``MATLAB_class`` attribute."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w", userblock_size=512) as handle:
        for name, value in arrays.items():
            value = np.atleast_2d(np.asarray(value))
            if np.iscomplexobj(value):
                data = np.empty(value.T.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
                data["real"], data["imag"] = value.T.real, value.T.imag
            else:
                data = value.T.astype(np.float64)
            dataset = handle.create_dataset(name, data=data)
            dataset.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: lti-reduce tests HDF5 schema 1.00 ."
    with open(path, "r+b") as handle:
        handle.write(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM")


@pytest.fixture
def chain():
    """A stable 5-state SISO continuous system with well separated HSVs."""
    A = np.array([[-1.0, 1, 0, 0, 0], [0, -2, 1, 0, 0], [0, 0, -5, 1, 0], [0, 0, 0, -20, 1],
                  [0, 0, 0, 0, -50]])
    B = np.array([[0.0], [0], [0], [1], [1]])
    C = np.array([[1.0, 0, 0.2, 0, 0.5]])
    D = np.array([[0.1]])
    return A, B, C, D
