"""The installed ``lti-reduce`` script, run as a subprocess on files these tests write."""

import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import io as sio

import lti_reduce as lr

from .conftest import REPO, assert_bad_input, run_cli, write_mat73


def save_mat(path, A, B, C, D=None, **extra):
    variables = dict(A=A, B=B, C=C, **extra)
    if D is not None:
        variables["D"] = D
    sio.savemat(path, variables)
    return path


def true_error(full, reduced):
    n, r = full.n, reduced.n
    A = np.block([[full.A, np.zeros((n, r))], [np.zeros((r, n)), reduced.A]])
    return lr.hinf_norm(lr.StateSpace(A, np.vstack([full.B, reduced.B]), np.hstack([full.C, -reduced.C]),
                                      full.D - reduced.D, dt=full.dt)).norm


# --------------------------------------------------------------------------------------
# the happy paths
# --------------------------------------------------------------------------------------
def test_mat_round_trip_reduce_and_verify(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "plant.mat", A, B, C, D)
    result = run_cli("reduce", "plant.mat", "--order", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "plant_r2.mat"
    assert f"wrote {out.name}" in result.stdout and result.stderr == ""
    stored = sio.loadmat(out)
    full = lr.StateSpace(A, B, C, D)
    hsv = lr.hankel_singular_values(full)
    assert stored["A"].shape == (2, 2) and stored["B"].shape == (2, 1) and stored["C"].shape == (1, 2)
    np.testing.assert_array_equal(stored["D"], D)
    assert float(stored["Ts"][0, 0]) == 0.0
    np.testing.assert_allclose(stored["hsv"].ravel(), hsv, rtol=1e-12)
    bound = float(stored["error_bound"][0, 0])
    assert bound == pytest.approx(2 * hsv[2:].sum(), rel=1e-12)
    reduced = lr.load_system(out)
    err = true_error(full, reduced)
    assert hsv[2] * (1 - 1e-9) <= err <= bound   # s_{r+1} <= ||G - G_r|| <= 2 sum of the tail
    verify = run_cli("verify", "plant.mat", out.name, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    reported = float(re.search(r"\|\|G - G_r\|\|_inf = (\S+)", verify.stdout).group(1))
    assert reported == pytest.approx(err, rel=1e-5)
    assert "within bound yes" in verify.stdout


def test_verify_exit_status_1_when_error_exceeds_the_bound(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "g.mat", A, B, C, D)
    assert run_cli("reduce", "g.mat", "--order", 1, "-o", "g1.mat", cwd=tmp_path).returncode == 0
    result = run_cli("verify", "g.mat", "g1.mat", "--bound", "1e-6", cwd=tmp_path)
    assert result.returncode == 1
    assert "within bound NO" in result.stdout


@pytest.mark.parametrize("source, output, expected", [
    ("g.npz", "out.json", "out.json"), ("g.json", None, "g_r3.json"), ("g.npz", "out", "out.npz"),
    ("g.mat", "out.npz", "out.npz")])
def test_output_format_follows_input_unless_o_says_otherwise(tmp_path, chain, source, output, expected):
    A, B, C, D = chain
    lr.save_system(tmp_path / source, lr.StateSpace(A, B, C, D, dt=0))
    args = ["reduce", source, "--tol", "1e-3"] + (["-o", output] if output else [])
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / expected).is_file(), list(tmp_path.iterdir())
    loaded = lr.load_system_file(tmp_path / expected)
    assert loaded.system.n == 3 and loaded.error_bound <= 1e-3
    if expected.endswith(".json"):
        data = json.loads((tmp_path / expected).read_text())
        assert set(data) == {"A", "B", "C", "D", "Ts", "hsv", "error_bound"}


def test_discrete_time_base_is_kept(tmp_path, chain):
    A, B, C, D = chain
    Ad = np.eye(5) + 0.01 * A   # Euler step: stable discrete system
    save_mat(tmp_path / "d.mat", Ad, B, C, D, Ts=0.01)
    save_mat(tmp_path / "u.mat", Ad, B, C, D, Ts=-1.0)
    info = run_cli("info", "d.mat", cwd=tmp_path)
    assert "discrete (dt = 0.01)" in info.stdout and "max |pole| = 0.99" in info.stdout
    for name, dt in (("d", 0.01), ("u", True)):
        assert run_cli("reduce", f"{name}.mat", "--energy", "0.2", "--match", "dc", cwd=tmp_path).returncode == 0
        (out,) = tmp_path.glob(f"{name}_r*.mat")
        reduced = lr.load_system(out)
        assert reduced.dt == dt
        full = lr.StateSpace(Ad, B, C, D, dt=dt)
        np.testing.assert_allclose(reduced.dc_gain(), full.dc_gain(), rtol=1e-10)   # --match dc keeps G(1)


def test_mat_v73_hdf5_file(tmp_path, chain):
    A, B, C, D = chain
    write_mat73(tmp_path / "v73.mat", A=A, B=B, C=C, D=D, Ts=0.0)
    info = run_cli("info", "v73.mat", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "n = 5" in info.stdout and "m = 1" in info.stdout
    result = run_cli("reduce", "v73.mat", "--order", 3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    reduced = lr.load_system(tmp_path / "v73_r3.mat")
    expected = lr.balanced_truncation(lr.StateSpace(A, B, C, D), order=3).system
    w = np.logspace(-2, 3, 40)
    np.testing.assert_allclose(reduced.frequency_response(w), expected.frequency_response(w), rtol=1e-10)


def test_mat_v73_without_h5py_says_how_to_get_it(tmp_path, chain):
    A, B, C, D = chain
    write_mat73(tmp_path / "v73.mat", A=A, B=B, C=C, D=D)
    blocker = tmp_path / "no_h5py"
    (blocker / "h5py").mkdir(parents=True)
    (blocker / "h5py" / "__init__.py").write_text("raise ImportError('h5py blocked by the test')\n")
    result = run_cli("info", "v73.mat", cwd=tmp_path, extra_path=[blocker])
    assert_bad_input(result, "v73.mat", "v7.3", "pip install h5py", "-v7")


def test_norms_match_the_library(tmp_path, chain):
    A, B, C, _ = chain
    save_mat(tmp_path / "g.mat", A, B, C)
    result = run_cli("norm", "g.mat", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = dict(re.findall(r"^(\w+)\s+(\S+)", result.stdout, flags=re.M))
    G = lr.StateSpace(A, B, C)
    assert float(values["hinf"]) == pytest.approx(lr.hinf_norm(G).norm, rel=1e-5)
    assert float(values["h2"]) == pytest.approx(lr.h2_norm(G), rel=1e-5)
    assert float(values["hankel"]) == pytest.approx(lr.hankel_norm(G), rel=1e-5)
    only = run_cli("norm", "g.mat", "--h2", cwd=tmp_path)
    assert only.stdout.splitlines() == [f"h2      {lr.h2_norm(G):.6g}"]


def test_hsv_table_and_plot(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "g.mat", A, B, C, D)
    result = run_cli("hsv", "g.mat", "--plot", "hsv.png", cwd=tmp_path)
    if "matplotlib" in result.stderr:
        pytest.skip("matplotlib is not installed")
    assert result.returncode == 0, result.stderr
    hsv = lr.hankel_singular_values(lr.StateSpace(A, B, C, D))
    rows = re.findall(r"^\s+(\d+)\s+(\S+)\s+(\S+)$", result.stdout, flags=re.M)
    assert [int(r) for r, _, _ in rows] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([float(s) for _, s, _ in rows], hsv, rtol=1e-5)
    np.testing.assert_allclose([float(b) for _, _, b in rows], [2 * hsv[r:].sum() for r in range(1, 6)],
                               rtol=1e-5, atol=0)
    assert (tmp_path / "hsv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unstable_needs_unstable_keep(tmp_path):
    A = np.diag([0.5, -1.0, -2.0, -10.0, -30.0])
    B, C = np.ones((5, 1)), np.ones((1, 5))
    save_mat(tmp_path / "u.mat", A, B, C)
    line = assert_bad_input(run_cli("reduce", "u.mat", "--order", 2, cwd=tmp_path), "u.mat", "--unstable keep")
    assert "0.5" in line
    assert not list(tmp_path.glob("u_r*"))   # nothing written
    result = run_cli("reduce", "u.mat", "--order", 3, "--unstable", "keep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 unstable state(s) kept whole" in result.stdout
    loaded = lr.load_system_file(tmp_path / "u_r3.mat")
    assert np.isinf(loaded.hsv[0]) and np.all(np.isfinite(loaded.hsv[1:]))
    assert np.any(np.isclose(loaded.system.poles(), 0.5, rtol=1e-12))
    info = run_cli("info", "u.mat", cwd=tmp_path)
    assert "stable       no: max Re(pole) = 0.5" in info.stdout


def test_progress_on_stderr_for_large_n(tmp_path):
    n = 200
    A = -np.diag(np.arange(1.0, n + 1))
    save_mat(tmp_path / "big.mat", A, np.ones((n, 1)), np.ones((1, n)))
    result = run_cli("info", "big.mat", cwd=tmp_path)
    assert result.returncode == 0
    assert re.search(r"lti-reduce: read big.mat: n=200, m=1, p=1 \[\d+\.\d\d s\]", result.stderr)
    assert "lti-reduce:" not in result.stdout


def test_verbose_progress_keeps_stdout_clean(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "g.mat", A, B, C, D)
    quiet = run_cli("reduce", "g.mat", "--order", 2, "-o", "a.mat", cwd=tmp_path)
    loud = run_cli("--verbose", "reduce", "g.mat", "--order", 2, "-o", "a.mat", cwd=tmp_path)
    assert quiet.stderr == "" and quiet.stdout == loud.stdout
    assert "reduced to order 2" in loud.stderr


# --------------------------------------------------------------------------------------
# bad files: one line naming the file, the variable and the fix; exit status 2
# --------------------------------------------------------------------------------------
class _RunsCode:
    """Unpickling this would create a file: proof that loading never unpickles."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_npz_is_refused_and_never_run(tmp_path, chain):
    A, B, C, D = chain
    marker = tmp_path / "code_ran"
    np.savez(tmp_path / "obj.npz", A=np.array([_RunsCode(marker)], dtype=object), B=B, C=C)
    assert_bad_input(run_cli("info", "obj.npz", cwd=tmp_path), "obj.npz", "'A'", "object array", "numeric")
    with open(tmp_path / "pickle.npz", "wb") as handle:
        pickle.dump({"A": _RunsCode(marker)}, handle)
    assert_bad_input(run_cli("info", "pickle.npz", cwd=tmp_path), "pickle.npz", "pickled", "numpy.savez")
    assert not marker.exists()


def test_nan_is_refused(tmp_path, chain):
    A, B, C, D = chain
    A = A.copy()
    A[2, 3] = np.nan
    save_mat(tmp_path / "nan.mat", A, B, C, D)
    assert_bad_input(run_cli("reduce", "nan.mat", "--order", 2, cwd=tmp_path),
                     "nan.mat", "'A'", "NaN at index (2, 3)", "finite number")


def test_missing_variable(tmp_path, chain):
    A, B, C, D = chain
    sio.savemat(tmp_path / "nob.mat", dict(A=A, C=C, D=D))
    assert_bad_input(run_cli("info", "nob.mat", cwd=tmp_path), "nob.mat", "'B' is missing", "found: A, C, D")


def test_matlab_object_instead_of_matrices(tmp_path, chain):
    A, B, C, D = chain
    sio.savemat(tmp_path / "obj.mat", {"sys": {"A": A, "B": B}})
    assert_bad_input(run_cli("info", "obj.mat", cwd=tmp_path), "obj.mat", "'A' is missing", "'sys'", "ssdata")


def test_mismatched_shapes(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "c.mat", A, B, C[:, :4], D)
    assert_bad_input(run_cli("info", "c.mat", cwd=tmp_path), "c.mat", "'C' has shape (1, 4)", "n=5 columns")
    save_mat(tmp_path / "d.mat", A, B, C, np.ones((2, 2)))
    assert_bad_input(run_cli("info", "d.mat", cwd=tmp_path), "d.mat", "'D' has shape (2, 2)", "(1, 1)")


def test_non_numeric_variable(tmp_path, chain):
    A, B, C, D = chain
    sio.savemat(tmp_path / "s.mat", dict(A=A, B="not a matrix", C=C))
    assert_bad_input(run_cli("info", "s.mat", cwd=tmp_path), "s.mat", "'B'", "MATLAB char", "numeric matrix")
    (tmp_path / "s.json").write_text(json.dumps({"A": [[-1.0]], "B": [[1.0]], "C": [["x"]]}))
    assert_bad_input(run_cli("info", "s.json", cwd=tmp_path), "s.json", "'C'", "not numbers")


def test_bad_time_base(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "t.mat", A, B, C, D, Ts=-0.5)
    assert_bad_input(run_cli("info", "t.mat", cwd=tmp_path), "t.mat", "'Ts' = -0.5", "-1 (discrete")


def test_unreadable_and_unknown_files(tmp_path):
    (tmp_path / "junk.mat").write_bytes(b"this is not a MATLAB file at all" * 10)
    assert_bad_input(run_cli("info", "junk.mat", cwd=tmp_path), "junk.mat", "not a readable MATLAB")
    (tmp_path / "g.txt").write_text("A = 1")
    assert_bad_input(run_cli("info", "g.txt", cwd=tmp_path), "g.txt", ".mat, .npz or .json")
    assert_bad_input(run_cli("info", "absent.npz", cwd=tmp_path), "absent.npz", "no such file")
    (tmp_path / "junk.npz").write_text("A = [[1.0]]")
    assert_bad_input(run_cli("info", "junk.npz", cwd=tmp_path), "junk.npz", "not an .npz archive", "numpy.savez")
    (tmp_path / "bad.json").write_text("{\"A\": [[1, 2]")
    assert_bad_input(run_cli("info", "bad.json", cwd=tmp_path), "bad.json", "not valid JSON")


def test_bad_options_exit_2(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "g.mat", A, B, C, D)
    assert_bad_input(run_cli("reduce", "g.mat", "--energy", "1.5", cwd=tmp_path), "g.mat", "energy", "(0, 1)")
    assert_bad_input(run_cli("reduce", "g.mat", "--order", 2, "-o", "x.txt", cwd=tmp_path), "x.txt",
                     ".mat, .npz or .json")
    usage = run_cli("reduce", "g.mat", cwd=tmp_path)   # argparse: one of --order/--tol/--energy
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert "one of the arguments --order/-r --tol --energy is required" in usage.stderr


def test_warnings_are_one_line_on_stderr(tmp_path):
    # an uncontrollable state: order 3 exceeds the numerical rank 2 of the Hankel operator
    save_mat(tmp_path / "rk.mat", np.diag([-1.0, -2.0, -3.0]), np.array([[1.0], [1.0], [0.0]]), np.ones((1, 3)))
    result = run_cli("reduce", "rk.mat", "--order", 3, cwd=tmp_path)
    assert result.returncode == 0
    (line,) = result.stderr.splitlines()   # the core's message, without Python's source listing
    assert line.startswith("lti-reduce: warning: order=3 ") and "rank 2" in line
    assert "reduced n = 3 to r = 2" in result.stdout and lr.load_system(tmp_path / "rk_r2.mat").n == 2


def test_python_m_lti_reduce_is_the_same_program(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "g.mat", A, B, C, D)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    module = subprocess.run([sys.executable, "-m", "lti_reduce", "norm", "g.mat", "--hankel"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    script = run_cli("norm", "g.mat", "--hankel", cwd=tmp_path)
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout == f"hankel  {lr.hankel_norm(lr.StateSpace(A, B, C, D)):.6g}\n"


def test_finite_horizon_reduction_has_no_bound_to_verify(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "g.mat", A, B, C, D)
    result = run_cli("reduce", "g.mat", "--order", 3, "--horizon", 2.5, "-o", "h.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "error bound: none (finite-horizon" in result.stdout
    stored = lr.load_system_file(tmp_path / "h.npz")
    assert stored.error_bound is None and stored.system.n == 3
    assert_bad_input(run_cli("verify", "g.mat", "h.npz", cwd=tmp_path), "h.npz", "no error bound", "--bound")
    # finite-horizon truncation need not preserve stability, and here it does not
    assert not stored.system.is_stable()
    assert_bad_input(run_cli("verify", "g.mat", "h.npz", "--bound", 100, cwd=tmp_path),
                     "h.npz: unstable (max Re(pole) = 0.06", "stable systems")


def test_verify_refuses_a_reduction_of_another_system(tmp_path, chain):
    A, B, C, D = chain
    save_mat(tmp_path / "g.mat", A, B, C, D)
    save_mat(tmp_path / "two_inputs.mat", A[:2, :2], np.ones((2, 2)), np.ones((1, 2)))
    assert_bad_input(run_cli("verify", "g.mat", "two_inputs.mat", "--bound", 1, cwd=tmp_path),
                     "two_inputs.mat", "m=2 inputs", "m=1")
    save_mat(tmp_path / "discrete.mat", np.diag([0.5, 0.2]), np.ones((2, 1)), np.ones((1, 2)), Ts=0.1)
    assert_bad_input(run_cli("verify", "g.mat", "discrete.mat", "--bound", 1, cwd=tmp_path),
                     "discrete.mat", "time base")
