"""Square-root Gramian factors of a real dense system in real arithmetic, from its real Schur form.

The complex route (:mod:`lti_reduce._blocked_factor`) triangularises the 2x2 blocks of the
real Schur form, computes complex factors and makes them real by a QR factorisation of a
``2n x n`` stack: about four times the arithmetic of the factors themselves, and most of the
time of a reduction below a hundred states. Here Hammarling's method runs on the real
quasi-triangular form itself (SLICOT SB03OT's approach: 1x1 and 2x2 diagonal blocks, real
triangular factors) in compiled code, ``lti_reduce/_real_hammarling.c``: one call per factor,
and in discrete time one more for the Cayley transform. It needs the optional extension;
without it (and for complex systems) the complex route runs.

Conventions: ``A = Z S Z^T`` with Z orthogonal and S upper quasi-triangular (LAPACK
``dgees``, standardised 2x2 blocks for complex pairs). Continuous time:
``A P + P A^T + B B^T = 0``, ``A^T Q + Q A + C^T C = 0``; discrete time:
``A P A^T - P + B B^T = 0``, ``A^T Q A - Q + C^T C = 0``. The factors are ``L = Z U`` with
``U`` upper triangular (controllability) or ``J U`` (observability, J reversing the order of
the states), ``P = L_c L_c^T`` and ``Q = L_o L_o^T``.
"""

import ctypes

import numpy as np
import scipy.linalg as sla

from ._blocked_factor import _at_most_n_columns, complex_from_real, schur_gramian_factors

__all__ = ["RealSchurForm", "real_schur", "real_gramian_factors", "triple", "compiled"]

#: Largest state count for which the real factors are used. The compiled kernel is unblocked
#: (level-2 loops); it measured faster than the blocked complex route (level-3 BLAS, complex
#: arithmetic, then a QR to make the factor real) at every n up to 1000, by a shrinking margin
#: (about 0.4x the time at n = 50, 0.7x at n = 1000: ``benchmarks/bench_core.py --factor-routes``);
#: above, untried, the complex route runs.
LARGEST = 1000


def _load():
    """ctypes handles ``(factor, quasi_solve, factors)`` from the optional extension, or None."""
    try:
        from . import _hammarling_leaf
    except ImportError:
        return None
    library = ctypes.CDLL(_hammarling_leaf.__file__)
    pointer, integer = ctypes.c_void_p, ctypes.c_int
    factor = library.lti_reduce_real_hammarling
    factor.restype = ctypes.c_int
    factor.argtypes = [integer, integer] + [pointer] * 6
    solve = library.lti_reduce_quasi_solve
    solve.restype = None
    solve.argtypes = [integer, integer, pointer, pointer, pointer]
    factors = library.lti_reduce_real_factors
    factors.restype = ctypes.c_int
    factors.argtypes = [integer] * 4 + [pointer] * 6
    return factor, solve, factors


#: The compiled kernels, or None (tests set it to None to compare with the complex route).
compiled = _load()


class RealSchurForm:
    """Real Schur form ``A = Z S Z^T`` of a real matrix.

    Attributes
    ----------
    S : ndarray, shape (n, n), float64
        Upper quasi-triangular (zeros below the first subdiagonal).
    Z : ndarray, shape (n, n), float64
        Orthogonal.
    pair : ndarray, shape (n,), int32
        ``pair[i] = 1`` where rows ``i, i+1`` of S form a 2x2 block (a complex pair).
    eigenvalues : ndarray, shape (n,), complex128
        The diagonal of the complex Schur form (``lambda, conj(lambda)`` for each 2x2 block).
    """

    __slots__ = ("S", "Z", "pair", "eigenvalues")

    def __init__(self, S, Z, pair, eigenvalues):
        self.S, self.Z, self.pair, self.eigenvalues = S, Z, pair, eigenvalues


_DGEES = sla.get_lapack_funcs("gees", dtype=np.float64)


def real_schur(A):
    """The real Schur form of a real square matrix.

    Parameters
    ----------
    A : ndarray, shape (n, n), real

    Returns
    -------
    RealSchurForm

    Notes
    -----
    LAPACK ``dgees`` is called directly, with a fixed workspace: scipy's ``schur`` adds a
    workspace query and its checks, about 30 us of a 0.5 ms call at n = 50.
    """
    n = A.shape[0]
    # 34 n: the blocked Hessenberg reduction and basis need n * (block size 32) + 2 n
    S, _, wr, wi, Z, _, info = _DGEES(lambda *args: None, A, compute_v=1, lwork=max(1, 34 * n))
    if info != 0:
        raise np.linalg.LinAlgError(f"the real Schur form did not converge (LAPACK dgees info={info})")
    pair = np.zeros(n, dtype=np.int32)
    if n > 1:
        pair[:-1] = np.diagonal(S, -1) != 0
    return RealSchurForm(np.ascontiguousarray(S), Z, pair, wr + 1j * wi)     # the kernels read rows


def _address(X):
    return X.ctypes.data


def _quasi_solve(S, pair, X):
    """``X <- (S + I)^-1 X`` in place (X C-contiguous float64)."""
    compiled[1](S.shape[0], X.shape[1], _address(S), _address(pair), _address(X))


def _kernel_input(M, n):
    """M as the kernels read it: C-contiguous float64 with at least one column (no input
    column: one zero column, X = 0)."""
    return np.ascontiguousarray(M, dtype=np.float64) if M.shape[1] else np.zeros((n, 1))


def triple(S, pair, M):
    """``(U, Ahat, Bhat, real)`` of ``S X + X S^T + M M^T = 0`` (S upper quasi-triangular, stable;
    C-contiguous float64 S and ``pair``): ``X = U U^T``, ``U Ahat = S U``, ``U Bhat = M``,
    ``Ahat + Ahat^T + Bhat Bhat^T = 0`` (``lti_reduce/_real_hammarling.c``). ``real`` is False
    when a 2x2 block's factor was numerically singular and its triple not real to working
    accuracy: the rest is then not computed (the factors take the complex route)."""
    n = S.shape[0]
    M = _kernel_input(M, n)
    U = np.empty((n, n))
    Ahat = np.empty((n, n))
    Bhat = np.empty((n, M.shape[1]))
    status = compiled[0](n, M.shape[1], _address(S), _address(pair), _address(M), _address(U), _address(Ahat),
                         _address(Bhat))
    if status == 1:
        raise MemoryError(f"the real Hammarling kernel could not allocate its work space (n={n}, m={M.shape[1]})")
    return U, Ahat, Bhat, status == 0


def real_gramian_factors(form, B, C, discrete, kinds=("c", "o")):
    """Real factors ``L`` with ``P = L L^T`` (kind 'c') and ``Q = L L^T`` (kind 'o').

    Parameters
    ----------
    form : RealSchurForm
        Of a stable A (``Re lambda < 0``, resp. ``|lambda| < 1``).
    B : ndarray, shape (n, m), float64
    C : ndarray, shape (p, n), float64
    discrete : bool
    kinds : sequence of {'c', 'o'}

    Returns
    -------
    list of ndarray, shape (n, n), float64

    Notes
    -----
    The observability equation is the controllability form of ``J S^T J`` with input
    ``J Z^T C^T``. In discrete time the Cayley transform ``Sc = (S + I)^-1 (S - I)``,
    ``Mc = sqrt(2) (S + I)^-1 M`` maps ``S X S^T - X + M M^T = 0`` exactly onto
    ``Sc X + X Sc^T + Mc Mc^T = 0`` (quasi-triangular with the same blocks, computed with
    exact zeros outside them); ``Cayley(S^T) = Cayley(S)^T`` serves the observability side.
    Both factors come from one call of ``lti_reduce_real_factors``. Where a 2x2 block's factor
    is numerically singular (a complex pair with nearly equal eigenvalues that one input
    barely separates) its triple is not real to working accuracy; the kernel says so and
    both factors come from the complex route on the same Schur form instead.
    """
    S, Z, pair = form.S, form.Z, form.pair
    n = S.shape[0]
    unread = np.zeros((n, 1))      # the input of a factor not asked for
    Mc = _kernel_input(_at_most_n_columns(Z.T @ B), n) if "c" in kinds else unread
    Mo = _kernel_input(_at_most_n_columns((C @ Z)[:, ::-1].T), n) if "o" in kinds else unread
    Uc = np.empty((n, n)) if "c" in kinds else None
    Uo = np.empty((n, n)) if "o" in kinds else None
    status = compiled[2](n, Mc.shape[1], Mo.shape[1], int(bool(discrete)), _address(S), _address(pair),
                         _address(Mc), _address(Mo), None if Uc is None else _address(Uc),
                         None if Uo is None else _address(Uo))
    if status == 1:
        raise MemoryError(f"the real Hammarling kernel could not allocate its work space (n={n})")
    if status == 2:     # a numerically singular 2x2 block: the complex route, from the same Schur form
        return schur_gramian_factors(complex_from_real(S, Z), B, C, discrete, kinds)
    return [Z @ Uc if kind == "c" else Z @ Uo[::-1] for kind in kinds]
