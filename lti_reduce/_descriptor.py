"""Large sparse and descriptor systems: :class:`SparseStateSpace`.

Conventions (``E`` invertible; ``E = I`` when omitted)::

    continuous (dt == 0):  E x'(t)  = A x(t) + B u(t),   y = C x + D u,
                           G(s) = C (s E - A)^{-1} B + D,  stable iff Re(eig(A, E)) < 0
    discrete   (dt != 0):  E x[k+1] = A x[k] + B u[k],   y = C x + D u,
                           G(z) = C (z E - A)^{-1} B + D,  stable iff |eig(A, E)| < 1

A and E may be ``scipy.sparse`` matrices/arrays or dense arrays; B, C, D are dense and
small (m, p << n).
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._array import namespace
from ._errors import LTIReduceError, ShapeError
from ._statespace import StateSpace, SystemBase, check_dt, check_finite_arrays, check_number_dtype

__all__ = ["SparseStateSpace", "SingularDescriptorError", "MAX_CONDITION_E", "STANDARD_FORM_CONDITION"]

#: E with an estimated 1-norm condition number above this is treated as singular.
MAX_CONDITION_E = 1e12
#: The dense path reduces ``(E^{-1} A, E^{-1} B)`` only when ``cond_1(E)`` is below this
#: (forming them loses about ``log10 cond(E)`` digits); otherwise it works with E.
STANDARD_FORM_CONDITION = 1e6
_NUMPY = namespace(np.empty(0))


class SingularDescriptorError(LTIReduceError, ValueError):
    """The descriptor matrix E is singular, or too ill-conditioned to be treated as invertible."""


def _as_float(name, X):
    """X (ndarray or sparse) in float64, or complex128 if complex; other dtypes are refused."""
    check_number_dtype(_NUMPY, name, X.dtype)
    return X.astype(np.complex128 if X.dtype.kind == "c" else np.float64)


def _as_matrix(name, X, n=None):
    """Validated CSC matrix (sparse input) or 2-D ndarray (dense input), float64/complex128."""
    if sp.issparse(X):
        X = _as_float(name, sp.csc_array(X))
        check_finite_arrays(_NUMPY, {name: X.data})
    else:
        X = _dense(name, X, ndim=2)
    if X.ndim != 2:
        raise ShapeError(f"{name} must be 2-D, got shape {X.shape}")
    return X


def _dense(name, X, ndim=None):
    """X as a finite float64/complex128 ndarray (sparse input densified); ``ndim``: its required rank."""
    if sp.issparse(X):
        X = X.toarray()
    X = _as_float(name, np.asarray(X))
    if ndim is not None and X.ndim != ndim:
        raise ShapeError(f"{name} must be a {ndim}-D array, got shape {X.shape}")
    # after the cast: a long double beyond float64's range is refused, not stored as inf
    check_finite_arrays(_NUMPY, {name: X})
    return X


class MatrixLU:
    """LU factorisation of a sparse (SuperLU) or dense (LAPACK getrf) square matrix.

    ``solve(b, adjoint=False)`` solves ``M x = b`` or ``M^H x = b``. Exact singularity
    raises :class:`numpy.linalg.LinAlgError` (the callers turn it into a typed error).
    """

    def __init__(self, M):
        self.sparse = sp.issparse(M)
        if self.sparse:
            try:
                # symmetric-structure ordering: 2x less fill than COLAMD on FD/FE grids
                self._lu = spla.splu(sp.csc_matrix(M), permc_spec="MMD_AT_PLUS_A")
            except RuntimeError as exc:   # SuperLU: "Factor is exactly singular"
                raise np.linalg.LinAlgError(str(exc)) from exc
        else:
            getrf, = sla.get_lapack_funcs(("getrf",), (M,))
            lu, piv, info = getrf(M)
            if info > 0:
                raise np.linalg.LinAlgError(f"U[{info - 1}, {info - 1}] is exactly zero")
            self._lu = (lu, piv)
        self.shape = M.shape
        self.dtype = M.dtype

    def solve(self, b, adjoint=False):
        b = np.asarray(b)
        if self.sparse:
            trans = "N" if not adjoint else ("H" if self.dtype.kind == "c" else "T")
            if b.dtype.kind == "c" and self.dtype.kind != "c":   # real LU, complex right-hand side
                return self._lu.solve(np.ascontiguousarray(b.real), trans=trans) \
                    + 1j * self._lu.solve(np.ascontiguousarray(b.imag), trans=trans)
            return self._lu.solve(np.asarray(b, dtype=np.result_type(b, self.dtype)), trans=trans)
        if b.dtype.kind == "c" and self.dtype.kind != "c":
            return self.solve(b.real, adjoint) + 1j * self.solve(b.imag, adjoint)
        return sla.lu_solve(self._lu, b, trans=2 if adjoint else 0, check_finite=False)

    def condition_1(self, M):
        """Estimate of the 1-norm condition number ``||M||_1 ||M^{-1}||_1`` (Hager/Higham)."""
        n = self.shape[0]
        inverse = spla.LinearOperator(self.shape, matvec=lambda x: self.solve(x),
                                      rmatvec=lambda x: self.solve(x, adjoint=True), dtype=self.dtype)
        norm_M = spla.norm(M, 1) if sp.issparse(M) else np.linalg.norm(M, 1)
        norm_inv = spla.onenormest(inverse) if n > 4 else np.linalg.norm(self.solve(np.eye(n)), 1)
        return float(norm_M * norm_inv)


@dataclass(frozen=True, eq=False, init=False)
class SparseStateSpace(SystemBase):
    """Large, sparse or descriptor state-space system ``(A, B, C, D, E, dt)``.

    Parameters
    ----------
    A : scipy.sparse matrix/array or array_like, shape (n, n)
    B : array_like, shape (n, m)
        Dense, few columns.
    C : array_like, shape (p, n)
        Dense, few rows.
    D : array_like, shape (p, m), optional
        Zero when omitted.
    E : scipy.sparse matrix/array or array_like, shape (n, n), optional
        Invertible descriptor (mass) matrix; identity when omitted (stored as None).
    dt : float or True, optional
        0 (default) for continuous time, ``E x' = A x + B u``; a positive sampling period,
        or True, for discrete time, ``E x[k+1] = A x[k] + B u[k]``.

    Attributes
    ----------
    A, E : scipy.sparse.csc_array or numpy.ndarray
        Sparse input is stored in CSC form (what SuperLU factorises), dense input as
        ndarray; float64, or complex128 if any matrix of the system is complex.
    B, C, D : numpy.ndarray

    Raises
    ------
    SingularDescriptorError
        E is singular or its estimated condition number exceeds ``MAX_CONDITION_E``
        (1e12): a singular E means a differential-algebraic system, which this class does
        not cover (no Gramians of the kind used here exist without a split of the
        infinite eigenvalues).

    Notes
    -----
    Checking E costs one LU factorisation of E at construction. Nothing here forms a
    dense n x n matrix; :meth:`to_dense` does, on request.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> import lti_reduce as lr
    >>> n = 50
    >>> A = sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1]) * n ** 2
    >>> sys = lr.SparseStateSpace(A, np.ones((n, 1)), np.ones((1, n)) / n)
    >>> sys.n, sys.m, sys.p, sys.is_discrete
    (50, 1, 1, False)

    See Also
    --------
    lowrank_gramian_factor, lowrank_balanced_truncation, StateSpace
    """

    A: object
    B: object
    C: object
    D: object
    E: object
    dt: object

    def __init__(self, A, B, C, D=None, E=None, dt=0.0):
        A = _as_matrix("A", A)
        n = A.shape[0]
        if A.shape[1] != n:
            raise ShapeError(f"A must be square (n, n), got shape {A.shape}")
        B, C = _dense("B", B), _dense("C", C)
        if B.ndim != 2 or B.shape[0] != n:
            raise ShapeError(f"B must have shape (n, m) with n={n} to match A {A.shape}, got {B.shape}")
        if C.ndim != 2 or C.shape[1] != n:
            raise ShapeError(f"C must have shape (p, n) with n={n} to match A {A.shape}, got {C.shape}")
        m, p = B.shape[1], C.shape[0]
        if n == 0 or m == 0 or p == 0:
            raise ShapeError(f"empty system: A is {A.shape}, B is {B.shape}, C is {C.shape}; "
                             "a system needs at least one state, one input and one output")
        D = np.zeros((p, m)) if D is None else _dense("D", np.atleast_2d(D) if np.ndim(D) == 0 else D)
        if D.shape != (p, m):
            raise ShapeError(f"D must have shape (p, m) = ({p}, {m}) to match C and B, got {D.shape}")
        if E is not None:
            E = _as_matrix("E", E)
            if E.shape != (n, n):
                raise ShapeError(f"E must have shape (n, n) = ({n}, {n}) to match A, got {E.shape}")
        mats = [A, B, C, D] + ([] if E is None else [E])
        dtype = np.complex128 if any(x.dtype.kind == "c" for x in mats) else np.float64
        A, B, C, D = (x.astype(dtype) for x in (A, B, C, D))
        if E is not None:
            E = E.astype(dtype)
            _check_invertible(E)
        for name, value in (("A", A), ("B", B), ("C", C), ("D", D), ("E", E), ("dt", check_dt(dt))):
            object.__setattr__(self, name, value)

    # --- properties (sizes, is_discrete, is_complex, frequency_response, dc_gain: SystemBase)
    @property
    def is_sparse(self):
        """True if A is stored sparse."""
        return sp.issparse(self.A)

    def __repr__(self):
        storage = f"sparse nnz(A)={self.A.nnz}" if self.is_sparse else "dense"
        e = "E=I" if self.E is None else "E given"
        return (f"SparseStateSpace(n={self.n}, m={self.m}, p={self.p}, {self._time_base()}, {storage}, {e}, "
                f"dtype={self.B.dtype})")

    def identity_E(self):
        """E, or the identity in A's storage (sparse or dense) when E is None."""
        if self.E is not None:
            return self.E
        return sp.identity(self.n, dtype=self.A.dtype, format="csc") if self.is_sparse \
            else np.eye(self.n, dtype=self.A.dtype)

    def apply_E(self, X):
        """``E @ X`` (X itself when E is the identity)."""
        return X if self.E is None else self.E @ X

    # --- evaluation -------------------------------------------------------------------
    def evaluate(self, points):
        """Transfer function ``G(s) = C (s E - A)^{-1} B + D`` at complex points.

        One LU factorisation of ``s E - A`` per point.

        Parameters
        ----------
        points : array_like, shape (k,)

        Returns
        -------
        G : numpy.ndarray, shape (k, p, m), complex128
        """
        points = np.asarray(points, dtype=np.complex128).reshape(-1)
        E = self.identity_E()
        out = np.empty((points.size, self.p, self.m), dtype=np.complex128)
        for i, s in enumerate(points):
            pencil = s * E - self.A
            out[i] = self.C @ MatrixLU(sp.csc_array(pencil) if self.is_sparse else pencil).solve(
                self.B.astype(np.complex128)) + self.D
        return out

    def to_dense(self):
        """Dense :class:`StateSpace` ``(E^{-1} A, E^{-1} B, C, D)`` (forms n x n arrays).

        E^{-1} is applied by an LU solve, never formed. For tests and small systems.
        """
        A = self.A.toarray() if self.is_sparse else self.A
        B = self.B
        if self.E is not None:
            lu = MatrixLU(self.E)
            A, B = lu.solve(A), lu.solve(B)
        return StateSpace(A, B, self.C, self.D, dt=self.dt)


def _check_invertible(E):
    try:
        lu = MatrixLU(E)
    except np.linalg.LinAlgError as exc:
        raise SingularDescriptorError(f"E of shape {E.shape} is singular ({exc}); E x' = A x + B u needs an "
                                      "invertible E (differential-algebraic systems are not supported)") from None
    cond = lu.condition_1(E)
    if not np.isfinite(cond) or cond > MAX_CONDITION_E:
        raise SingularDescriptorError(f"E of shape {E.shape} is numerically singular: estimated 1-norm condition "
                                      f"number {cond:.3g} > {MAX_CONDITION_E:g}; expected an invertible, "
                                      "reasonably conditioned E")
    return lu, cond
