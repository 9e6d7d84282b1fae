"""``load_system`` / ``save_system`` in process: exact round trips, metadata, refusals, atomic writes."""

import json

import numpy as np
import pytest
from scipy import io as sio

import lti_reduce as lr
from lti_reduce import SystemFileError

from .conftest import write_mat73

RNG = np.random.default_rng(12)


def random_system(n=4, m=2, p=3, complex_=False, dt=0.0):
    def draw(*shape):
        x = RNG.standard_normal(shape)
        return x + 1j * RNG.standard_normal(shape) if complex_ else x
    return lr.StateSpace(draw(n, n), draw(n, m), draw(p, n), draw(p, m), dt=dt)


def assert_same(a, b):
    for name in "ABCD":
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))   # bit for bit
    assert a.dt == b.dt and type(a.dt) is type(b.dt)


@pytest.mark.parametrize("suffix", [".mat", ".npz", ".json"])
@pytest.mark.parametrize("complex_, dt", [(False, 0.0), (True, 0.25), (False, True)])
def test_round_trip_is_exact(tmp_path, suffix, complex_, dt):
    system = random_system(complex_=complex_, dt=dt)
    lr.save_system(tmp_path / f"g{suffix}", system)
    assert_same(lr.load_system(tmp_path / f"g{suffix}"), system)


@pytest.mark.parametrize("suffix", [".mat", ".npz", ".json"])
def test_reduction_metadata_round_trip(tmp_path, suffix):
    G = lr.StateSpace(np.diag([0.5, -1.0, -2.0, -7.0]), np.ones((4, 1)), np.array([[1.0, 2.0, 3.0, 4.0]]))
    result = lr.balanced_truncation(G, order=2, unstable="keep")
    lr.save_system(tmp_path / f"r{suffix}", result)
    loaded = lr.load_system_file(tmp_path / f"r{suffix}")
    assert_same(loaded.system, result.system)
    np.testing.assert_array_equal(loaded.hsv, result.hsv)   # inf for the kept unstable state
    assert np.isinf(loaded.hsv[0]) and loaded.error_bound == result.error_bound
    assert loaded.format == suffix[1:]
    if suffix == ".json":
        assert json.loads((tmp_path / "r.json").read_text())["hsv"][0] == "inf"


def test_matlab_conventions(tmp_path):
    A, B, C = [[-1.0]], [[1.0]], [[2.0]]
    sio.savemat(tmp_path / "empty_d.mat", dict(A=A, B=B, C=C, D=np.zeros((0, 0)), Ts=-1.0))
    G = lr.load_system(tmp_path / "empty_d.mat")
    assert G.dt is True and G.D.tolist() == [[0.0]]
    sio.savemat(tmp_path / "dt.mat", dict(A=A, B=np.ones((1, 2)), C=C, D=0.0, dt=0.5))   # scalar 0 D, 'dt' name
    H = lr.load_system(tmp_path / "dt.mat")
    assert H.dt == 0.5 and H.D.shape == (1, 2) and not H.D.any()
    lr.save_system(tmp_path / "out.mat", H)
    assert float(sio.loadmat(tmp_path / "out.mat")["Ts"][0, 0]) == 0.5


def test_mat_v73_complex(tmp_path):
    G = random_system(complex_=True, dt=0.1)
    write_mat73(tmp_path / "c.mat", A=G.A, B=G.B, C=G.C, D=G.D, Ts=0.1)
    assert_same(lr.load_system(tmp_path / "c.mat"), G)


def test_accepts_python_control_and_result_objects(tmp_path):
    ct = pytest.importorskip("control")
    sys = ct.ss([[-1.0, 0.0], [1.0, -3.0]], [[1.0], [0.0]], [[0.0, 1.0]], 0)
    lr.save_system(tmp_path / "c.npz", sys)
    assert_same(lr.load_system(tmp_path / "c.npz"), lr.StateSpace.from_control(sys))


def test_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "g.json"
    lr.save_system(target, random_system())
    before = target.read_bytes()
    with pytest.raises(SystemFileError, match="n=201 states is too large for JSON"):
        lr.save_system(target, lr.StateSpace(-np.eye(201), np.ones((201, 1)), np.ones((1, 201))))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]   # no temporary left behind


def test_refusals_are_value_errors_naming_file_and_variable(tmp_path):
    np.savez(tmp_path / "s.npz", A=np.array(["a"]), B=np.ones((1, 1)), C=np.ones((1, 1)))
    with pytest.raises(ValueError, match=r"s\.npz: variable 'A' is an array of dtype <U1, not numbers"):
        lr.load_system(tmp_path / "s.npz")
    np.savez(tmp_path / "inf.npz", A=-np.eye(2), B=np.array([[1.0], [np.inf]]), C=np.ones((1, 2)))
    with pytest.raises(SystemFileError, match=r"variable 'B' contains inf at index \(1, 0\)"):
        lr.load_system(tmp_path / "inf.npz")
    np.savez(tmp_path / "a3.npz", A=np.zeros((2, 2, 2)), B=np.ones((2, 1)), C=np.ones((1, 2)))
    with pytest.raises(SystemFileError, match=r"'A' has shape \(2, 2, 2\); it must be a 2-D matrix"):
        lr.load_system(tmp_path / "a3.npz")
    (tmp_path / "cx.json").write_text(json.dumps({"A": {"real": [[1.0]]}, "B": [[1.0]], "C": [[1.0]]}))
    with pytest.raises(SystemFileError, match=r"'A' is a JSON object with keys \['real'\]"):
        lr.load_system(tmp_path / "cx.json")


def test_matlab_sparse_matrices_are_read_dense(tmp_path):
    from scipy import sparse
    A = np.diag([-1.0, -2.0, -3.0]) + np.diag([0.5, 0.5], k=1)
    sio.savemat(tmp_path / "s.mat", dict(A=sparse.csc_matrix(A), B=sparse.csc_matrix(np.ones((3, 1))),
                                         C=np.ones((1, 3))))
    G = lr.load_system(tmp_path / "s.mat")
    assert type(G.A) is np.ndarray
    np.testing.assert_array_equal(G.A, A)
    np.testing.assert_array_equal(G.B, np.ones((3, 1)))
