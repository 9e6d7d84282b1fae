"""Offline, real sequence-classification data for the validation runs.

Every loader returns a :class:`SequenceDataset` of float32 arrays shaped ``(N, L, C)``
(N sequences of length L with C channels) and int64 labels, with a fixed train /
validation / test split. Nothing here touches the network unless the caller passes
``download=True`` to a torchvision data set (sMNIST, sCIFAR).

===================  ======  ===  ========================================================
name                 L       C    source
===================  ======  ===  ========================================================
``digits``           64      1    scikit-learn's bundled ``load_digits`` (8x8 images read
                                  pixel by pixel, row-major, scaled to [0, 1]); stratified
                                  60/20/20 split drawn from ``split_seed``
``digits-permuted``  64      1    the same, pixels in a fixed random order
                                  (``numpy.random.default_rng(perm_seed).permutation(64)``)
``mnist1d``          40      1    generated locally with ``mnist1d.data.make_dataset`` and
                                  the package's default arguments (5000 samples, seed 42,
                                  4000 train / 1000 test); 10 % of train held out
                                  (stratified) for validation. Never its download path.
``ucr-gunpoint``     150     1    aeon's bundled GunPoint (50 train / 150 test; optional
                                  extra ``pip install lti-reduce[ucr]``); 20 % of train
                                  held out for validation; z-scored with train statistics
``ucr-basicmotions`` 100     6    aeon's bundled BasicMotions (40 / 40), as above
``lagcorr``          256     2    generated (:mod:`validation.tasks`): lag-12 autocorrelation
                                  signs of two channels, 4 classes; needed state known
``ucr-arrowhead``    251     1    aeon's bundled ArrowHead (36 / 175), as GunPoint
``ucr-osuleaf``      427     1    aeon's bundled OSULeaf (200 / 242), as GunPoint
``smnist``           784     1    torchvision MNIST, pixel by pixel, scaled to [0, 1];
                                  10 % of train held out (stratified)
``scifar``           1024    3    torchvision CIFAR-10, pixel by pixel, RGB channels
                                  normalised with the training mean and std; 10 % held out
===================  ======  ===  ========================================================
"""

from dataclasses import dataclass, field
import os
import random

import numpy as np

from .errors import UnknownDatasetError, MissingDependencyError, DatasetUnavailableError

__all__ = ["SequenceDataset", "load_dataset", "available_datasets", "DATASETS"]


@dataclass
class SequenceDataset:
    """A sequence-classification data set with a fixed split (arrays are float32 (N, L, C))."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    info: dict = field(default_factory=dict)

    @property
    def seq_len(self):
        return int(self.x_train.shape[1])

    @property
    def channels(self):
        return int(self.x_train.shape[2])

    def summary(self):
        return (f"{self.name}: L={self.seq_len}, C={self.channels}, classes={self.n_classes}, "
                f"train/val/test = {len(self.y_train)}/{len(self.y_val)}/{len(self.y_test)}")


def _stratified_split(x, y, fraction, seed):
    """Split off ``fraction`` of (x, y), stratified by label, deterministic in ``seed``."""
    from sklearn.model_selection import train_test_split
    idx = np.arange(len(y))
    keep, held = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    keep, held = np.sort(keep), np.sort(held)
    return x[keep], y[keep], x[held], y[held]


def _finish(name, xtr, ytr, xva, yva, xte, yte, n_classes, **info):
    f = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    g = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    return SequenceDataset(name, f(xtr), g(ytr), f(xva), g(yva), f(xte), g(yte), int(n_classes), info)


# --------------------------------------------------------------------------- digits
def _load_digits(split_seed=0, permuted=False, perm_seed=0, **_):
    from sklearn.datasets import load_digits
    bunch = load_digits()  # ships inside scikit-learn; no network
    x = (bunch.data.astype(np.float64) / 16.0)[:, :, None]      # (1797, 64, 1), row-major pixels
    y = bunch.target.astype(np.int64)
    perm = None
    if permuted:
        perm = np.random.default_rng(perm_seed).permutation(x.shape[1])
        x = x[:, perm]
    xtr, ytr, xte, yte = _stratified_split(x, y, 0.2, split_seed)
    xtr, ytr, xva, yva = _stratified_split(xtr, ytr, 0.25, split_seed)   # 60 / 20 / 20
    name = "digits-permuted" if permuted else "digits"
    return _finish(name, xtr, ytr, xva, yva, xte, yte, 10, split_seed=split_seed,
                   permutation=None if perm is None else perm.tolist(),
                   source="sklearn.datasets.load_digits (bundled)")


# --------------------------------------------------------------------------- MNIST-1D
_MNIST1D_CACHE = {}


def _load_mnist1d(split_seed=0, **_):
    try:
        from mnist1d.data import make_dataset, get_dataset_args
    except ImportError as exc:  # pragma: no cover - declared in the validation extra
        raise MissingDependencyError(
            "the mnist1d data set needs the 'mnist1d' package: pip install lti-reduce[validation]") from exc
    args = get_dataset_args()             # package defaults: 5000 samples, seed 42, length 40
    key = (args.seed, args.num_samples)
    if key not in _MNIST1D_CACHE:
        # make_dataset reseeds the global `random` and `numpy.random` generators: restore them.
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            data = make_dataset(args)     # the generator only; get_dataset() would download
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        _MNIST1D_CACHE[key] = {k: np.array(data[k]) for k in ("x", "y", "x_test", "y_test")}
    d = _MNIST1D_CACHE[key]
    xtr, ytr, xva, yva = _stratified_split(d["x"][:, :, None], d["y"], 0.1, split_seed)
    return _finish("mnist1d", xtr, ytr, xva, yva, d["x_test"][:, :, None], d["y_test"], 10,
                   split_seed=split_seed, generator_seed=args.seed,
                   source="mnist1d.data.make_dataset (generated locally)")


# --------------------------------------------------------------------------- UCR / UEA (aeon)
def _import_aeon_datasets():
    try:
        import aeon.datasets as ads
    except ImportError as exc:
        raise MissingDependencyError(
            "the UCR/UEA data sets are read from the 'aeon' package, which is not installed: "
            "pip install lti-reduce[ucr]  (or: pip install aeon)") from exc
    return ads


def _load_ucr(loader_name, name, split_seed=0, **_):
    ads = _import_aeon_datasets()
    load = loader_name if callable(loader_name) else getattr(ads, loader_name)
    xtr, ytr = load(split="TRAIN")   # bundled inside the aeon wheel; (N, C, L)
    xte, yte = load(split="TEST")
    classes = np.unique(np.concatenate([np.asarray(ytr), np.asarray(yte)]))
    enc = {c: i for i, c in enumerate(classes)}
    ytr = np.array([enc[c] for c in ytr])
    yte = np.array([enc[c] for c in yte])
    xtr = np.transpose(np.asarray(xtr, dtype=np.float64), (0, 2, 1))
    xte = np.transpose(np.asarray(xte, dtype=np.float64), (0, 2, 1))
    mean = xtr.mean(axis=(0, 1), keepdims=True)
    std = xtr.std(axis=(0, 1), keepdims=True) + 1e-8
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    xtr, ytr, xva, yva = _stratified_split(xtr, ytr, 0.2, split_seed)
    return _finish(name, xtr, ytr, xva, yva, xte, yte, len(classes), split_seed=split_seed,
                   source=f"aeon.datasets.{loader_name} (bundled)")


# --------------------------------------------------------------------------- generated
def _load_lagcorr(split_seed=0, **_):
    from .tasks import LagCorrelationSpec, make_lag_correlation, needed_state_size
    spec = LagCorrelationSpec()
    parts = make_lag_correlation(spec, seed=split_seed)
    return _finish("lagcorr", *parts, 2 ** spec.channels, split_seed=split_seed, spec=spec._asdict(),
                   needed_state_size=needed_state_size(spec), source="validation.tasks (generated)")


def _bundled_ts(problem):
    """A ``load(split=...)`` reading aeon's bundled ``<problem>_<SPLIT>.ts`` file directly
    (aeon 1.6 deprecates some named loaders, e.g. ``load_osuleaf``; the files still ship)."""
    def load(split):
        ads = _import_aeon_datasets()
        path = os.path.join(os.path.dirname(ads.__file__), "data", problem, f"{problem}_{split}.ts")
        if not os.path.exists(path):
            raise DatasetUnavailableError(f"{problem} is not bundled with this aeon version (looked for {path})")
        return ads.load_from_ts_file(path)
    return load


# --------------------------------------------------------------------------- torchvision
def _torchvision_dataset(cls_name, data_dir, download):
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise MissingDependencyError(
            f"{cls_name} is read through torchvision, which is not installed: "
            "pip install torchvision (the build matching your installed torch)") from exc
    root = os.path.expanduser(data_dir or os.path.join("~", ".cache", "lti_reduce", "data"))
    cls = getattr(tvd, cls_name)
    try:
        train = cls(root, train=True, download=download)
        test = cls(root, train=False, download=download)
    except RuntimeError as exc:
        raise DatasetUnavailableError(
            f"{cls_name} was not found under {root!r} and downloading is off: pass --download "
            f"(download=True) once on a machine with network access, or --data-dir pointing to "
            f"an existing torchvision {cls_name} folder") from exc
    return train, test


def _load_smnist(split_seed=0, data_dir=None, download=False, **_):
    train, test = _torchvision_dataset("MNIST", data_dir, download)
    f = lambda ds: (np.asarray(ds.data, dtype=np.float32).reshape(len(ds.data), 784, 1) / 255.0,  # noqa: E731
                    np.asarray(ds.targets, dtype=np.int64))
    (xtr, ytr), (xte, yte) = f(train), f(test)
    xtr, ytr, xva, yva = _stratified_split(xtr, ytr, 0.1, split_seed)
    return _finish("smnist", xtr, ytr, xva, yva, xte, yte, 10, split_seed=split_seed,
                   source="torchvision.datasets.MNIST")


def _load_scifar(split_seed=0, data_dir=None, download=False, **_):
    train, test = _torchvision_dataset("CIFAR10", data_dir, download)
    f = lambda ds: (np.asarray(ds.data, dtype=np.float32).reshape(len(ds.data), 1024, 3) / 255.0,  # noqa: E731
                    np.asarray(ds.targets, dtype=np.int64))
    (xtr, ytr), (xte, yte) = f(train), f(test)
    mean, std = xtr.mean(axis=(0, 1), keepdims=True), xtr.std(axis=(0, 1), keepdims=True)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    xtr, ytr, xva, yva = _stratified_split(xtr, ytr, 0.1, split_seed)
    return _finish("scifar", xtr, ytr, xva, yva, xte, yte, 10, split_seed=split_seed,
                   source="torchvision.datasets.CIFAR10")


DATASETS = {
    "digits": (lambda **kw: _load_digits(permuted=False, **kw), "sklearn load_digits, length 64, offline"),
    "digits-permuted": (lambda **kw: _load_digits(permuted=True, **kw), "permuted sequential digits, offline"),
    "mnist1d": (_load_mnist1d, "MNIST-1D generated locally, length 40, offline"),
    "ucr-gunpoint": (lambda **kw: _load_ucr("load_gunpoint", "ucr-gunpoint", **kw),
                     "UCR GunPoint bundled in aeon (pip install lti-reduce[ucr])"),
    "ucr-basicmotions": (lambda **kw: _load_ucr("load_basic_motions", "ucr-basicmotions", **kw),
                         "UEA BasicMotions bundled in aeon (pip install lti-reduce[ucr])"),
    "lagcorr": (_load_lagcorr, "lag-12 autocorrelation signs, L=256, 2 channels, generated (needed state known)"),
    "ucr-arrowhead": (lambda **kw: _load_ucr("load_arrow_head", "ucr-arrowhead", **kw),
                      "UCR ArrowHead bundled in aeon, L=251 (pip install lti-reduce[ucr])"),
    "ucr-osuleaf": (lambda **kw: _load_ucr(_bundled_ts("OSULeaf"), "ucr-osuleaf", **kw),
                    "UCR OSULeaf bundled in aeon, L=427 (pip install lti-reduce[ucr])"),
    "smnist": (_load_smnist, "sequential MNIST via torchvision (needs --download once)"),
    "scifar": (_load_scifar, "sequential CIFAR-10 via torchvision (needs --download once)"),
}


def available_datasets():
    """Names of the data sets, with a one-line description each."""
    return {k: v[1] for k, v in DATASETS.items()}


def load_dataset(name, *, split_seed=0, data_dir=None, download=False, perm_seed=0):
    """Load data set ``name`` (see the module docstring) with a fixed split.

    Raises
    ------
    UnknownDatasetError
        ``name`` is not a known data set (the message lists them).
    MissingDependencyError
        An optional package is missing (the message names the pip extra).
    DatasetUnavailableError
        torchvision data are not on disk and ``download`` is False.
    """
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    loader = DATASETS[name][0]
    return loader(split_seed=split_seed, data_dir=data_dir, download=download, perm_seed=perm_seed)
