"""Thin array-namespace dispatch so the diagonal path runs on numpy and torch alike.

The core never imports torch: the namespace of the arrays passed in is found with
``array_api_compat`` and every operation goes through it.
"""

import numpy as np
from array_api_compat import array_namespace, device, is_numpy_namespace

__all__ = ["namespace", "elementwise", "device_of", "is_numpy", "to_numpy", "wide_dtype", "asarray_like",
           "conj_t", "is_complex_dtype"]


_NUMPY = array_namespace(np.zeros(0))


def namespace(*arrays):
    """The array namespace shared by ``arrays`` (numpy for Python scalars/lists)."""
    arrays = [a for a in arrays if a is not None]
    if all(type(a) is np.ndarray for a in arrays):     # the common case, without the generic lookup
        return _NUMPY
    return array_namespace(*arrays)


def is_numpy(xp):
    return xp is _NUMPY or is_numpy_namespace(xp)


def elementwise(xp):
    """The namespace to call for elementwise arithmetic on arrays of ``xp``: numpy itself for
    numpy arrays (since numpy 2 its functions are the array-API ones, without
    array_api_compat's per-call wrapper, which costs more than the arithmetic on small
    arrays), else ``xp``."""
    return np if is_numpy(xp) else xp


def device_of(x):
    if type(x) is np.ndarray:      # the common case, without the generic lookup
        return "cpu"
    return device(x)


def to_numpy(x):
    """Host numpy copy of an array from any namespace."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch without importing torch
        x = x.detach()
        if hasattr(x, "resolve_conj"):
            x = x.resolve_conj()
        return x.cpu().numpy()
    return np.asarray(x)


def is_complex_dtype(xp, dtype):
    if isinstance(dtype, np.dtype):
        return dtype.kind == "c"
    return xp.isdtype(dtype, "complex floating")


def wide_dtype(xp, *arrays):
    """complex128 if any array is complex, else float64: reduction arithmetic is wide."""
    if any(is_complex_dtype(xp, a.dtype) for a in arrays if a is not None):
        return xp.complex128
    return xp.float64


def asarray_like(xp, x, like, dtype=None):
    return xp.asarray(x, dtype=dtype if dtype is not None else like.dtype, device=device(like))


def conj_t(xp, x):
    """Conjugate transpose over the last two axes."""
    if type(x) is np.ndarray:     # a view (a conjugated copy if complex), without the wrappers
        return x.swapaxes(-1, -2).conj() if x.dtype.kind == "c" else x.swapaxes(-1, -2)
    return xp.conj(xp.matrix_transpose(x)) if is_complex_dtype(xp, x.dtype) else xp.matrix_transpose(x)
