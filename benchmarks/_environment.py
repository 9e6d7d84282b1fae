"""Shared start of the benchmark scripts: one BLAS thread, pinned before numpy is imported."""

import os

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_one_blas_thread():
    """Set every BLAS/OpenMP thread count to 1 (call before numpy is imported) and return the
    OpenBLAS kernel variables as found, ``{name: value or None}``, for the report's header."""
    coretype = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    return coretype
