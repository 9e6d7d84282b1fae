"""State-space containers: dense :class:`StateSpace` and structured :class:`DiagonalStateSpace`.

Conventions (used by every function of the package)::

    continuous (dt == 0):  x'(t)   = A x(t) + B u(t),   y(t) = C x(t) + D u(t),
                           G(s) = C (s I - A)^{-1} B + D,   stable iff Re(eig A) < 0
    discrete   (dt != 0):  x[k+1] = A x[k] + B u[k],    y[k] = C x[k] + D u[k],
                           G(z) = C (z I - A)^{-1} B + D,   stable iff |eig A| < 1

``dt=True`` means discrete time with an unspecified sampling period (python-control's
convention); frequencies are then taken per sample (period 1).
"""

from dataclasses import dataclass
import math
import numbers

import numpy as np

from ._array import namespace, is_numpy, wide_dtype, to_numpy, is_complex_dtype
from ._errors import ShapeError, NonFiniteError, InvalidParameterError

__all__ = ["StateSpace", "DiagonalStateSpace", "as_statespace"]


def check_dt(dt):
    """``dt`` as stored by every system class: 0.0 (continuous), a positive float or True.

    Raises :class:`InvalidParameterError` for None, negative, non-finite or non-real ``dt``.
    """
    if type(dt) is float and 0.0 <= dt < math.inf:     # the common case, without the ABC checks
        return dt
    if isinstance(dt, (bool, np.bool_)) and dt:     # numpy's True_ is not ``True``
        return True
    if isinstance(dt, (bool, np.bool_)) and not dt:
        return 0.0
    if dt is None:
        raise InvalidParameterError("dt=None (unspecified time base) is not supported: "
                                    "pass dt=0 for continuous time or dt>0 / dt=True for discrete time")
    if not isinstance(dt, numbers.Real) or not np.isfinite(float(dt)) or float(dt) < 0:
        raise InvalidParameterError(f"dt must be 0 (continuous), a positive sampling period or True "
                                    f"(discrete), got {dt!r}")
    return float(dt)


def unstable_eigenvalues(eigenvalues, discrete, alpha=None):
    """Eigenvalues outside the region ``Re < alpha`` (continuous) or ``|.| < alpha`` (discrete).

    The one stability test of the package (default alpha: 0, resp. 1); NaN counts as unstable.
    """
    eigenvalues = np.asarray(eigenvalues)
    if discrete:
        bad = ~(np.abs(eigenvalues) < (1.0 if alpha is None else alpha))
    else:
        bad = ~(eigenvalues.real < (0.0 if alpha is None else alpha))
    return eigenvalues[bad]


def check_number_dtype(xp, name, dtype):
    """Refuse a dtype that is not real, complex, integer or bool (:class:`InvalidParameterError`)."""
    if isinstance(dtype, np.dtype):      # numpy: the same four kinds, without four isdtype calls
        number = dtype.kind in "fciub"
    else:
        number = (xp.isdtype(dtype, "real floating") or xp.isdtype(dtype, "complex floating")
                  or xp.isdtype(dtype, "integral") or xp.isdtype(dtype, "bool"))
    if not number:
        raise InvalidParameterError(f"{name} must hold real or complex numbers, got dtype {dtype}")


def _validate(xp, name, x, ndim_min):
    if x.ndim < ndim_min:
        raise ShapeError(f"{name} must have at least {ndim_min} dimensions, got shape {tuple(x.shape)}")
    check_number_dtype(xp, name, x.dtype)


def _as_arrays(first, B, C):
    """``(xp, first, B, C)``: the three in one namespace (lists become numpy, tensors stay tensors)."""
    for name, x in (("A", first), ("B", B), ("C", C)):
        if type(x).__module__.startswith("scipy.sparse"):
            raise InvalidParameterError(
                f"{name} is a scipy.sparse {type(x).__name__} of shape {x.shape}: StateSpace takes dense "
                "arrays; use lti_reduce.SparseStateSpace(A, B, C, D, E=None, dt=...) for a sparse A "
                "(B and C dense)")
    xp, first = _asarray(first)
    _, B = _asarray(B, None if is_numpy(xp) else xp)
    _, C = _asarray(C, None if is_numpy(xp) else xp)
    return namespace(first, B, C), first, B, C


def _check_inputs_outputs(B, C, m, p):
    """Refuse a system without inputs (``m = 0``) or outputs (``p = 0``) (:class:`ShapeError`)."""
    if m == 0 or p == 0:
        raise ShapeError(f"empty system: B is {tuple(B.shape)} and C is {tuple(C.shape)}; "
                         "a system needs at least one input and one output")


def _feedthrough(xp, D, B, shape, expected, scalar=False):
    """D validated against ``shape`` (zeros of B's dtype when omitted); ``scalar``: a 0-d D is (1, 1)."""
    if D is None:
        return xp.zeros(shape, dtype=B.dtype, device=_device(B))
    _, D = _asarray(D, None if is_numpy(xp) else xp)
    if scalar and D.ndim == 0:
        D = xp.reshape(D, (1, 1))
    _validate(xp, "D", D, 2)
    if tuple(D.shape) != shape:
        raise ShapeError(f"D must have shape {expected}, got {tuple(D.shape)}")
    return D


def check_finite_arrays(xp, named):
    """Raise NonFiniteError naming the first non-finite array of ``{name: array}``.

    One host read for all arrays together (on a GPU each read is a synchronisation); the
    arrays are inspected one by one only to name the culprit."""
    if all(type(x) is np.ndarray for x in named.values()):     # numpy arrays: no host read to save
        bad = [name for name, x in named.items() if not np.isfinite(x).all()]
    else:
        if bool(xp.all(xp.stack([xp.all(xp.isfinite(x)) for x in named.values()]))):
            return
        bad = [name for name, x in named.items() if not bool(xp.all(xp.isfinite(x)))]
    if bad:
        raise NonFiniteError(f"{bad[0]} contains NaN or infinity; a state-space system needs finite entries")


_PLAIN_DTYPES = (np.dtype(np.float64), np.dtype(np.complex128))


def _plain_numpy_system(A, B, C, D, check_finite):
    """``(A, B, C, D)`` stored as :class:`StateSpace` stores them, for the common case only:
    numpy float64/complex128 arrays of consistent 2-D shapes (D may be None; NaN or infinity
    raises as on the general path); None for anything else, which the general path then
    validates and explains. The general path's namespace lookups and per-array dispatch cost
    more than a 50-state reduction's own Python (``benchmarks/bench_core.py --parts``)."""
    arrays = (A, B, C) if D is None else (A, B, C, D)
    if not all(type(a) is np.ndarray and a.ndim == 2 and a.dtype in _PLAIN_DTYPES for a in arrays):
        return None
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    if A.shape[1] != n or B.shape[0] != n or C.shape[1] != n or m == 0 or p == 0 or (
            D is not None and D.shape != (p, m)):
        return None
    if check_finite:
        check_finite_arrays(np, dict(zip("ABCD", arrays)))
    dtype = wide_dtype(np, *arrays)
    if D is None:
        D = np.zeros((p, m), dtype=dtype)
    # a StateSpace owns copies of checked input; trusted (unchecked) arrays are kept as they are
    return tuple(a.astype(dtype, copy=check_finite) for a in (A, B, C, D))


def _widen(xp, arrays, copy=True):
    dtype = wide_dtype(xp, *arrays)
    return [None if a is None else xp.astype(a, dtype, copy=copy) for a in arrays]


def _asarray(x, xp=None):
    if xp is None:
        try:
            xp = namespace(x)
        except TypeError:
            x = np.asarray(x)
            xp = namespace(x)
    if isinstance(x, (list, tuple, numbers.Number)):
        x = np.asarray(x)
    return xp, x


def _response_points(system, omega):
    """Points s = j*omega (continuous) or z = exp(j*omega*dt) (discrete) in the system's namespace."""
    xp = system._xp
    dev = _device(system.B)
    w = xp.reshape(xp.asarray(to_numpy(omega) if is_numpy(xp) else omega, dtype=xp.float64, device=dev), (-1,))
    if system.is_discrete:
        period = 1.0 if system.dt is True else system.dt
        return xp.exp(1j * xp.astype(w * period, xp.complex128))
    return 1j * xp.astype(w, xp.complex128)


def _device(x):
    from ._array import device_of
    return device_of(x)


class SystemBase:
    """What every system class shares: sizes, time base, dtype, frequency response, DC gain.

    A subclass holds ``B`` (..., n, m), ``C`` (..., p, n) and ``dt`` and defines
    ``evaluate(points)``; ``n`` is read from ``A`` unless the subclass says otherwise.
    """

    @property
    def n(self):
        """State dimension."""
        return self.A.shape[-1]

    @property
    def m(self):
        """Number of inputs."""
        return self.B.shape[-1]

    @property
    def p(self):
        """Number of outputs."""
        return self.C.shape[-2]

    def _time_base(self):
        """The time base as shown by ``repr``."""
        return f"discrete, dt={self.dt}" if self.is_discrete else "continuous"

    @property
    def is_discrete(self):
        """True for discrete time (``dt != 0``)."""
        return self.dt is True or self.dt > 0

    @property
    def is_complex(self):
        """True if any of the system's arrays is complex."""
        return is_complex_dtype(self._xp, self.B.dtype)

    @property
    def _xp(self):
        return namespace(self.B)

    def frequency_response(self, omega):
        """Frequency response on the imaginary axis or the unit circle.

        Parameters
        ----------
        omega : array_like, shape (k,)
            Frequencies in rad/s (continuous) or rad/s with ``z = exp(1j*omega*dt)``
            (discrete; per sample when ``dt=True``).

        Returns
        -------
        G : array, shape (..., k, p, m)
        """
        return self.evaluate(_response_points(self, omega))

    def dc_gain(self):
        """Steady-state gain: ``G(0)`` (continuous) or ``G(1)`` (discrete), shape (..., p, m)."""
        xp = self._xp
        point = xp.asarray([1.0 + 0j if self.is_discrete else 0j], device=_device(self.B))
        return self.evaluate(point)[..., 0, :, :]


@dataclass(frozen=True, eq=False, init=False)
class StateSpace(SystemBase):
    """Dense state-space system ``(A, B, C, D, dt)``.

    Parameters
    ----------
    A : array_like, shape (n, n)
    B : array_like, shape (n, m)
    C : array_like, shape (p, n)
    D : array_like, shape (p, m), optional
        Zero when omitted.
    dt : float or True, optional
        0 (default) for continuous time; a positive sampling period, or True, for
        discrete time.
    check_finite : bool, optional
        Check that every entry is finite and store copies (default). ``False`` skips the
        check, which on a GPU is a host synchronisation, and keeps arrays that already
        have the wide dtype without copying them: only for arrays computed from checked
        ones by code that guards its own results (as :func:`balanced_truncation` does)
        and does not modify them afterwards.

    Notes
    -----
    Arrays are stored in float64, or complex128 if any of them is complex, in the
    array namespace they came in (numpy by default; torch tensors stay torch tensors
    on their device). Inputs are validated: shapes, finiteness, ``m >= 1``, ``p >= 1``.
    A system with ``n = 0`` is a static gain ``D`` (the result of reducing to order 0).

    Examples
    --------
    >>> import lti_reduce as lr
    >>> G = lr.StateSpace([[-1.0, 0.0], [0.0, -2.0]], [[1.0], [1.0]], [[1.0, 1.0]])
    >>> G
    StateSpace(n=2, m=1, p=1, continuous, dtype=float64)
    >>> G.dc_gain()                       # C (-A)^{-1} B + D = 1 + 1/2
    array([[1.5+0.j]])
    >>> Gd = lr.StateSpace([[0.5]], [[1.0]], [[1.0]], dt=0.1)   # x[k+1] = 0.5 x[k] + u[k]
    >>> Gd.is_discrete, Gd.is_stable()
    (True, True)
    """

    A: object
    B: object
    C: object
    D: object
    dt: object

    def __init__(self, A, B, C, D=None, dt=0.0, *, check_finite=True):
        arrays = _plain_numpy_system(A, B, C, D, check_finite)
        if arrays is not None:
            for name, value in zip("ABCD", arrays):
                object.__setattr__(self, name, value)
            object.__setattr__(self, "dt", check_dt(dt))
            return
        xp, A, B, C = _as_arrays(A, B, C)
        for name, x in (("A", A), ("B", B), ("C", C)):
            _validate(xp, name, x, 2)
            if x.ndim != 2:
                raise ShapeError(f"{name} must be a 2-D array, got shape {tuple(x.shape)}")
        n = A.shape[0]
        if A.shape[1] != n:
            raise ShapeError(f"A must be square (n, n), got shape {tuple(A.shape)}")
        if B.shape[0] != n:
            raise ShapeError(f"B must have n={n} rows to match A {tuple(A.shape)}, got shape {tuple(B.shape)}")
        if C.shape[1] != n:
            raise ShapeError(f"C must have n={n} columns to match A {tuple(A.shape)}, got shape {tuple(C.shape)}")
        m, p = B.shape[1], C.shape[0]
        _check_inputs_outputs(B, C, m, p)
        D = _feedthrough(xp, D, B, (p, m), f"(p, m) = ({p}, {m}) to match C and B", scalar=True)
        if check_finite:
            check_finite_arrays(xp, {"A": A, "B": B, "C": C, "D": D})
        A, B, C, D = _widen(xp, [A, B, C, D], copy=check_finite)
        for name, value in zip("ABCD", (A, B, C, D)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "dt", check_dt(dt))

    def __repr__(self):
        return (f"StateSpace(n={self.n}, m={self.m}, p={self.p}, {self._time_base()}, "
                f"dtype={self.A.dtype})")

    # --- evaluation ------------------------------------------------------------------
    def evaluate(self, points):
        """Transfer function ``G(s) = C (s I - A)^{-1} B + D`` at complex points.

        Parameters
        ----------
        points : array_like, shape (k,)

        Returns
        -------
        G : array, shape (k, p, m), complex128
        """
        xp = self._xp
        s = xp.reshape(xp.asarray(points, dtype=xp.complex128, device=_device(self.B)), (-1,))
        A = xp.astype(self.A, xp.complex128)
        eye = xp.eye(self.n, dtype=xp.complex128, device=_device(self.B))
        pencil = s[:, None, None] * eye - A
        B = xp.broadcast_to(xp.astype(self.B, xp.complex128), (s.shape[0], self.n, self.m))
        X = xp.linalg.solve(pencil, B) if self.n else xp.zeros((s.shape[0], 0, self.m), dtype=xp.complex128)
        return xp.astype(self.C, xp.complex128) @ X + xp.astype(self.D, xp.complex128)

    def poles(self):
        """Eigenvalues of A (numpy, complex, shape (n,))."""
        return np.linalg.eigvals(to_numpy(self.A))

    def is_stable(self):
        """True if every pole is strictly inside the stability region."""
        return unstable_eigenvalues(self.poles(), self.is_discrete).size == 0

    def to_numpy(self):
        """The same system with numpy arrays: itself when they are numpy already (a StateSpace
        owns copies of its arrays and is immutable, so no further copy is needed)."""
        if all(isinstance(a, np.ndarray) for a in (self.A, self.B, self.C, self.D)):
            return self
        return StateSpace(to_numpy(self.A), to_numpy(self.B), to_numpy(self.C), to_numpy(self.D), dt=self.dt)

    # --- interop ---------------------------------------------------------------------
    def to_control(self):
        """Convert to ``control.StateSpace`` (python-control; real systems only)."""
        import control
        sys = self.to_numpy()
        if sys.is_complex:
            raise InvalidParameterError("python-control supports real systems only; this system is complex")
        return control.ss(sys.A, sys.B, sys.C, sys.D, sys.dt)

    @classmethod
    def from_control(cls, sys):
        """Build from a ``control.StateSpace`` (or anything python-control's ``ss`` accepts)."""
        import control
        sys = control.ss(sys)
        dt = sys.dt
        if dt is None:
            raise InvalidParameterError("the python-control system has dt=None (unspecified); "
                                        "set dt=0 (continuous) or dt>0/True (discrete) first")
        return cls(np.asarray(sys.A), np.asarray(sys.B), np.asarray(sys.C), np.asarray(sys.D), dt=dt)

    def to_scipy(self):
        """Convert to ``scipy.signal.StateSpace`` (``dlti`` form when discrete)."""
        from scipy import signal
        sys = self.to_numpy()
        if sys.is_discrete:
            return signal.StateSpace(sys.A, sys.B, sys.C, sys.D, dt=1.0 if sys.dt is True else sys.dt)
        return signal.StateSpace(sys.A, sys.B, sys.C, sys.D)

    @classmethod
    def from_scipy(cls, sys):
        """Build from a ``scipy.signal`` ``StateSpace``/``lti``/``dlti`` object."""
        ss = sys.to_ss() if hasattr(sys, "to_ss") else sys
        dt = getattr(ss, "dt", None)
        return cls(ss.A, ss.B, ss.C, ss.D, dt=0.0 if dt is None else dt)


@dataclass(frozen=True, eq=False, init=False)
class DiagonalStateSpace(SystemBase):
    """Stack of systems with diagonal state matrices ``A = diag(eigenvalues)``.

    Parameters
    ----------
    eigenvalues : array, shape (..., n)
        Diagonal of A (real or complex). Leading dimensions are batch dimensions
        (a stack of layers, or h independent SISO channels).
    B : array, shape (..., n, m)
    C : array, shape (..., p, n)
    D : array, shape (..., p, m), optional
    dt : float or True, optional
        As for :class:`StateSpace`.
    check_finite : bool, optional
        As for :class:`StateSpace`.

    Notes
    -----
    Works with any array-API namespace (numpy, torch, ...): arrays stay in their
    namespace and on their device, promoted to float64/complex128. All batch
    dimensions must agree exactly (no broadcasting), so that nothing is silently
    replicated.
    """

    eigenvalues: object
    B: object
    C: object
    D: object
    dt: object

    def __init__(self, eigenvalues, B, C, D=None, dt=0.0, *, check_finite=True):
        xp, lam, B, C = _as_arrays(eigenvalues, B, C)
        _validate(xp, "eigenvalues", lam, 1)
        _validate(xp, "B", B, 2)
        _validate(xp, "C", C, 2)
        batch, n = tuple(lam.shape[:-1]), lam.shape[-1]
        if tuple(B.shape[:-2]) != batch or B.shape[-2] != n:
            raise ShapeError(f"B must have shape (*batch, n, m) = ({', '.join(map(str, batch + (n,)))}, m) "
                             f"to match eigenvalues {tuple(lam.shape)}, got {tuple(B.shape)}")
        if tuple(C.shape[:-2]) != batch or C.shape[-1] != n:
            raise ShapeError(f"C must have shape (*batch, p, n) with batch {batch} and n={n} "
                             f"to match eigenvalues {tuple(lam.shape)}, got {tuple(C.shape)}")
        m, p = B.shape[-1], C.shape[-2]
        _check_inputs_outputs(B, C, m, p)
        D = _feedthrough(xp, D, B, batch + (p, m), f"(*batch, p, m) = {batch + (p, m)}")
        if check_finite:
            check_finite_arrays(xp, {"eigenvalues": lam, "B": B, "C": C, "D": D})
        lam, B, C, D = _widen(xp, [lam, B, C, D], copy=check_finite)
        object.__setattr__(self, "eigenvalues", lam)
        object.__setattr__(self, "B", B)
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "dt", check_dt(dt))

    @property
    def n(self):
        """State dimension (per system of the batch)."""
        return self.eigenvalues.shape[-1]

    @property
    def batch_shape(self):
        """Leading batch dimensions."""
        return tuple(self.eigenvalues.shape[:-1])

    @property
    def is_complex(self):
        xp = self._xp
        return any(is_complex_dtype(xp, a.dtype) for a in (self.eigenvalues, self.B, self.C, self.D))

    def __repr__(self):
        return (f"DiagonalStateSpace(batch={self.batch_shape}, n={self.n}, m={self.m}, p={self.p}, "
                f"{self._time_base()}, dtype={self.B.dtype})")

    @property
    def A(self):
        """Dense A (diag of the eigenvalues), shape (..., n, n)."""
        xp = self._xp
        eye = xp.eye(self.n, dtype=self.eigenvalues.dtype, device=_device(self.B))
        return self.eigenvalues[..., None] * eye

    def __getitem__(self, index):
        """One system (or sub-stack) of the batch."""
        if not self.batch_shape:
            raise IndexError("this DiagonalStateSpace has no batch dimension to index")
        return DiagonalStateSpace(self.eigenvalues[index], self.B[index], self.C[index], self.D[index], dt=self.dt,
                                  check_finite=False)     # already checked

    def to_dense(self):
        """Dense :class:`StateSpace` (requires an empty batch shape; index the batch first)."""
        if self.batch_shape:
            raise ShapeError(f"to_dense() needs a single system; this one has batch shape {self.batch_shape}: "
                             "index it first, e.g. system[0].to_dense()")
        return StateSpace(self.A, self.B, self.C, self.D, dt=self.dt)

    def evaluate(self, points):
        """Transfer function at complex points, shape (..., k, p, m), complex128."""
        xp = self._xp
        s = xp.reshape(xp.asarray(points, dtype=xp.complex128, device=_device(self.B)), (-1,))
        lam = xp.astype(self.eigenvalues, xp.complex128)
        resolvent = 1.0 / (s[:, None] - lam[..., None, :])  # (..., k, n)
        B = xp.astype(self.B, xp.complex128)
        C = xp.astype(self.C, xp.complex128)
        G = (C[..., None, :, :] * resolvent[..., :, None, :]) @ B[..., None, :, :]
        return G + xp.astype(self.D, xp.complex128)[..., None, :, :]

    def poles(self):
        """The eigenvalues as a host numpy array, shape (..., n)."""
        return to_numpy(self.eigenvalues)

    def is_stable(self):
        """True if every eigenvalue of every system of the batch is strictly stable."""
        return unstable_eigenvalues(to_numpy(self.eigenvalues), self.is_discrete).size == 0


def as_statespace(system, name="system"):
    """Accept a StateSpace, DiagonalStateSpace, python-control or scipy.signal system."""
    if isinstance(system, (StateSpace, DiagonalStateSpace)):
        return system
    module = type(system).__module__ or ""
    if module.startswith("control"):
        return StateSpace.from_control(system)
    if module.startswith("scipy.signal"):
        return StateSpace.from_scipy(system)
    raise InvalidParameterError(f"{name} must be a StateSpace, DiagonalStateSpace, python-control or "
                                f"scipy.signal system, got {type(system).__name__}")
