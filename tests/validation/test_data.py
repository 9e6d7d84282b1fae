import random
import sys
import types

import numpy as np
import pytest

from validation.data import load_dataset, available_datasets
from validation.errors import UnknownDatasetError, MissingDependencyError, DatasetUnavailableError


def _check(ds, L, C, classes):
    assert ds.seq_len == L and ds.channels == C and ds.n_classes == classes
    for x, y in [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]:
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.ndim == 3 and len(x) == len(y) and np.isfinite(x).all()
        assert set(np.unique(y)) == set(range(classes))


def test_digits_offline(no_network):
    ds = load_dataset("digits")
    _check(ds, 64, 1, 10)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
    again = load_dataset("digits")
    np.testing.assert_array_equal(ds.x_test, again.x_test)         # fixed split
    other = load_dataset("digits", split_seed=1)
    assert not np.array_equal(ds.y_test, other.y_test)
    # stratified: class proportions of the splits agree within one sample per class
    counts = [np.bincount(y, minlength=10) / len(y) for y in (ds.y_train, ds.y_test)]
    assert np.abs(counts[0] - counts[1]).max() < 0.02


def test_digits_permuted_is_a_fixed_permutation(no_network):
    plain, perm = load_dataset("digits"), load_dataset("digits-permuted")
    p = np.asarray(perm.info["permutation"])
    assert sorted(p.tolist()) == list(range(64)) and not np.array_equal(p, np.arange(64))
    np.testing.assert_array_equal(perm.x_train, plain.x_train[:, p])
    np.testing.assert_array_equal(load_dataset("digits-permuted").info["permutation"], p)


def test_mnist1d_generated_offline_and_leaves_global_rng_alone(no_network):
    random.seed(123)
    np.random.seed(123)
    expect_py, expect_np = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    ds = load_dataset("mnist1d")
    assert random.random() == expect_py and np.random.random() == expect_np
    _check(ds, 40, 1, 10)
    assert len(ds.y_train) + len(ds.y_val) == 4000 and len(ds.y_test) == 1000


def test_unknown_dataset():
    with pytest.raises(UnknownDatasetError, match="choose one of: digits"):
        load_dataset("cifar-nope")
    assert "mnist1d" in available_datasets()


def test_ucr_without_aeon_names_the_extra(monkeypatch, no_network):
    monkeypatch.setitem(sys.modules, "aeon", None)            # import aeon -> ImportError
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(MissingDependencyError, match=r"pip install lti-reduce\[ucr\]") as info:
        load_dataset("ucr-gunpoint")
    assert isinstance(info.value, ImportError)


def test_ucr_with_a_stub_aeon(monkeypatch, no_network):
    rng = np.random.default_rng(0)

    def load_gunpoint(split):
        n = 50 if split == "TRAIN" else 150
        return rng.normal(size=(n, 1, 150)), np.array(["1", "2"] * (n // 2))

    stub = types.ModuleType("aeon.datasets")
    stub.load_gunpoint = load_gunpoint
    monkeypatch.setitem(sys.modules, "aeon", types.ModuleType("aeon"))
    monkeypatch.setitem(sys.modules, "aeon.datasets", stub)
    ds = load_dataset("ucr-gunpoint")
    _check(ds, 150, 1, 2)
    assert len(ds.y_test) == 150 and len(ds.y_train) + len(ds.y_val) == 50


def test_torchvision_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(MissingDependencyError, match="pip install torchvision"):
        load_dataset("smnist")


def test_torchvision_data_missing_without_download(monkeypatch, tmp_path, no_network):
    calls = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.append(download)
            raise RuntimeError("Dataset not found. You can use download=True to download it")

    tv = types.ModuleType("torchvision")
    tvd = types.ModuleType("torchvision.datasets")
    tvd.MNIST = tvd.CIFAR10 = FakeMNIST
    tv.datasets = tvd
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", tvd)
    for name in ("smnist", "scifar"):
        with pytest.raises(DatasetUnavailableError, match="--download"):
            load_dataset(name, data_dir=str(tmp_path))
    assert calls == [False, False]          # never asked to download by default
