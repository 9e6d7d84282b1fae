"""Reading and writing state-space systems: MATLAB ``.mat``, NumPy ``.npz`` and JSON files.

File layout (every format)::

    A (n, n), B (n, m), C (p, n)   required
    D (p, m)                       optional; zeros when absent, empty, or a scalar 0
    Ts (or dt)                     optional; 0 continuous, > 0 sampling period,
                                   -1 discrete with unspecified period (MATLAB's Ts)
    hsv (n,), error_bound          optional; written for reduced systems

Loading never runs code from a file: ``.npz`` is read with ``allow_pickle=False``,
``.mat`` through :func:`scipy.io.loadmat` (MATLAB 4 to 7.2) or ``h5py`` (7.3, HDF5),
and object arrays, cells, structs and MATLAB objects are refused. Every problem is
reported as a :class:`SystemFileError` (a ``ValueError``) whose message is one line
naming the file, the variable and the fix.
"""

from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import tempfile
import zipfile

import numpy as np

from ._array import to_numpy
from ._errors import LTIReduceError
from ._statespace import StateSpace, DiagonalStateSpace, as_statespace

__all__ = ["SystemFile", "SystemFileError", "load_system", "load_system_file", "save_system", "FORMATS"]

FORMATS = {".mat": "mat", ".npz": "npz", ".json": "json"}
# JSON writes every entry as decimal text: beyond this order a file would be megabytes.
JSON_MAX_ORDER = 200
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TS_NAMES = ("Ts", "dt")


class SystemFileError(LTIReduceError, ValueError):
    """A system file is missing, unreadable, unsafe or holds an invalid system.

    The message is one line: the file, the variable (where one is at fault) and the fix.
    """


@dataclass(frozen=True)
class SystemFile:
    """A system read from a file, with what a reduction stored beside it.

    Attributes
    ----------
    system : StateSpace
    hsv : numpy.ndarray, shape (n_full,), or None
        Hankel singular values of the full system (``inf`` for a kept unstable part),
        present in files written from a reduction.
    error_bound : float or None
        The a-priori bound ``2 * sum`` of the truncated HSVs on ``||G - G_r||_inf``.
    path : pathlib.Path
    format : {'mat', 'npz', 'json'}
    """

    system: StateSpace
    hsv: object
    error_bound: object
    path: Path
    format: str


def _format_of(path, *, default=None):
    suffix = Path(path).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    if default is not None:
        return default
    raise SystemFileError(f"{path}: unknown file type {suffix or '(no suffix)'!r}; use a .mat, .npz or .json file")


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
def _read_npz(path):
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:1] == b"\x80":   # the opcode that starts a pickle (protocol 2 and later)
        raise SystemFileError(f"{path}: the file holds pickled Python objects, which are never loaded "
                              f"(they could run code); save plain arrays with numpy.savez")
    if not (magic.startswith(b"PK\x03\x04") or magic == b"\x93NUMPY"):
        raise SystemFileError(f"{path}: not an .npz archive (no zip header); save the system with "
                              f"numpy.savez(file, A=A, B=B, C=C, D=D, dt=dt)")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as exc:   # numpy refuses a pickle when allow_pickle=False
        raise SystemFileError(f"{path}: the file holds pickled Python objects, which are never loaded "
                              f"(they could run code); save plain arrays with numpy.savez") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise SystemFileError(f"{path}: a single .npy array, not an .npz archive; save the system with "
                              f"numpy.savez(file, A=A, B=B, C=C, D=D, dt=dt)")
    out = {}
    with archive:
        for name in archive.files:
            try:
                out[name] = archive[name]
            except ValueError as exc:
                raise SystemFileError(f"{path}: variable {name!r} is an object array, which is never loaded "
                                      f"(it could run code); store it as a numeric array") from exc
    return out


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise SystemFileError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                              f"write an object like {{\"A\": [[...]], \"B\": [[...]], \"C\": [[...]]}}") from exc
    if not isinstance(data, dict):
        raise SystemFileError(f"{path}: the JSON top level must be an object with keys A, B, C (D, dt optional), "
                              f"got a {type(data).__name__}")
    return {name: _json_array(path, name, value) for name, value in data.items() if name != "format"}


def _json_array(path, name, value):
    if isinstance(value, dict):
        if set(value) != {"real", "imag"}:
            raise SystemFileError(f"{path}: variable {name!r} is a JSON object with keys {sorted(value)}; "
                                  f"a complex matrix is written as {{\"real\": [[...]], \"imag\": [[...]]}}")
        real, imag = (_json_array(path, name, value[k]) for k in ("real", "imag"))
        if real.shape != imag.shape:
            raise SystemFileError(f"{path}: variable {name!r} has real part of shape {real.shape} and imaginary "
                                  f"part of shape {imag.shape}; they must match")
        return real + 1j * imag
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return np.asarray(float(value))
    if isinstance(value, list):
        value = [float(v) if isinstance(v, str) and v in ("inf", "-inf", "nan") else v for v in value]
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise SystemFileError(f"{path}: variable {name!r} is not a rectangular array of numbers "
                              f"(rows of different lengths?); fix {name} in the file") from exc
    return array


def _mat_version(path):
    with open(path, "rb") as handle:
        head = handle.read(520)
    if head.startswith(_HDF5_SIGNATURE) or head[512:520] == _HDF5_SIGNATURE:
        return "hdf5"
    return "mat"


def _read_mat(path):
    from scipy import io as sio
    if _mat_version(path) == "hdf5":
        return _read_mat_hdf5(path)
    try:
        listing = sio.whosmat(path)
    except Exception as exc:   # scipy raises several types for a damaged or foreign file
        raise SystemFileError(f"{path}: not a readable MATLAB .mat file ({type(exc).__name__}: {exc}); "
                              f"save it from MATLAB with save(file, 'A', 'B', 'C', 'D', 'Ts')") from exc
    numeric = {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
               "logical", "sparse"}
    wanted = [name for name, _, cls in listing if cls in numeric]
    others = {name: cls for name, _, cls in listing if cls not in numeric}
    try:
        data = sio.loadmat(path, variable_names=wanted, squeeze_me=False) if wanted else {}
    except Exception as exc:
        raise SystemFileError(f"{path}: not a readable MATLAB .mat file ({type(exc).__name__}: {exc}); "
                              f"save it from MATLAB with save(file, 'A', 'B', 'C', 'D', 'Ts')") from exc
    out = {name: value for name, value in data.items() if not name.startswith("__")}
    for name, value in out.items():
        if hasattr(value, "toarray"):   # MATLAB sparse: numbers, read as a dense matrix
            out[name] = value.toarray()
    for name, cls in others.items():
        out[name] = _Refused(cls)
    return out


class _Refused:
    """Placeholder for a variable that is not a numeric array (named in the error if needed)."""

    def __init__(self, kind):
        self.kind = kind


def _read_mat_hdf5(path):
    try:
        import h5py
    except ImportError as exc:
        raise SystemFileError(f"{path}: a MATLAB v7.3 (HDF5) file needs h5py: pip install h5py "
                              f"(or pip install 'lti-reduce[io]'), or re-save it in MATLAB with "
                              f"save(file, 'A', 'B', 'C', 'D', 'Ts', '-v7')") from exc
    out = {}
    try:
        with h5py.File(path, "r") as handle:
            for name, item in handle.items():
                if name.startswith("#"):     # MATLAB's internal reference groups
                    continue
                cls = item.attrs.get("MATLAB_class", b"")
                cls = cls.decode() if isinstance(cls, bytes) else str(cls)
                if not isinstance(item, h5py.Dataset) or cls in ("cell", "struct", "char", "function_handle") \
                        or item.dtype.kind in "OSUV" and item.dtype.names is None:
                    out[name] = _Refused(cls or "HDF5 group")
                    continue
                if item.attrs.get("MATLAB_empty", 0):
                    out[name] = np.zeros((0, 0))
                    continue
                value = item[()]
                if value.dtype.names is not None:
                    if set(value.dtype.names) != {"real", "imag"}:
                        out[name] = _Refused("compound")
                        continue
                    value = value["real"] + 1j * value["imag"]
                # MATLAB stores column-major: h5py sees the transpose
                out[name] = np.asarray(value).T
    except OSError as exc:
        raise SystemFileError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({exc})") from exc
    return out


def _describe(value):
    if isinstance(value, _Refused):
        return f"a MATLAB {value.kind}" if value.kind else "not a numeric array"
    return f"an array of dtype {value.dtype}"


def _matrix(path, variables, name, *, required=True):
    value = variables.get(name)
    if value is None:
        if required:
            present = sorted(k for k in variables)
            objects = [k for k, v in variables.items() if isinstance(v, _Refused)]
            hint = ""
            if objects:
                hint = (f" (the file holds {', '.join(repr(k) for k in objects)}, not numeric arrays: in MATLAB "
                        f"run [A,B,C,D,Ts] = ssdata(sys) and save those)")
            raise SystemFileError(f"{path}: variable {name!r} is missing (found: {', '.join(present) or 'none'})"
                                  f"{hint}; store the matrices as variables A, B, C and optionally D, Ts")
        return None
    if isinstance(value, _Refused) or value.dtype.kind not in "biufc":
        raise SystemFileError(f"{path}: variable {name!r} is {_describe(value)}, not numbers; store {name} as a "
                              f"real or complex numeric matrix")
    if value.dtype.kind == "b":
        value = value.astype(np.float64)
    if value.ndim == 0:
        value = value.reshape(1, 1)
    if value.ndim != 2:
        raise SystemFileError(f"{path}: variable {name!r} has shape {value.shape}; it must be a 2-D matrix")
    bad = ~np.isfinite(value)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise SystemFileError(f"{path}: variable {name!r} contains {'NaN' if np.isnan(value[where]) else 'inf'} "
                              f"at index {where} (0-based); replace it with a finite number")
    return value


def _time_base(path, variables):
    names = [k for k in _TS_NAMES if k in variables]
    if not names:
        return 0.0
    name = names[0]
    value = variables[name]
    if isinstance(value, _Refused) or np.asarray(value).dtype.kind not in "biuf" or np.asarray(value).size != 1:
        raise SystemFileError(f"{path}: variable {name!r} must be one real number (0 continuous, a sampling "
                              f"period > 0, or -1 for discrete with unspecified period), got {_describe(value)} "
                              f"of size {np.asarray(value).size if not isinstance(value, _Refused) else '?'}")
    ts = float(np.asarray(value).ravel()[0])
    if ts == -1:
        return True
    if not math.isfinite(ts) or ts < 0:
        raise SystemFileError(f"{path}: variable {name!r} = {ts!r}; it must be 0 (continuous), a sampling period "
                              f"> 0, or -1 (discrete, unspecified period)")
    return ts


def load_system_file(path):
    """Read a system and the reduction metadata stored with it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.mat``, ``.npz`` or ``.json`` file (the suffix selects the reader).

    Returns
    -------
    SystemFile

    Raises
    ------
    SystemFileError
        Missing file, unknown suffix, pickled or object content, missing variables,
        non-numeric data, NaN or infinity, mismatched shapes, a bad ``Ts``; the
        message names the file, the variable and the fix.
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.is_file():
        raise SystemFileError(f"{path}: no such file")
    try:
        variables = {"mat": _read_mat, "npz": _read_npz, "json": _read_json}[fmt](path)
    except (zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise SystemFileError(f"{path}: the file is damaged or not a {fmt} file ({exc})") from exc
    A = _matrix(path, variables, "A")
    B = _matrix(path, variables, "B")
    C = _matrix(path, variables, "C")
    D = _matrix(path, variables, "D", required=False)
    n = A.shape[0]
    if A.shape != (n, n):
        raise SystemFileError(f"{path}: variable 'A' has shape {A.shape}; it must be square (n, n)")
    if B.shape[0] != n:
        raise SystemFileError(f"{path}: variable 'B' has shape {B.shape} but A is {n}x{n}; B must have n={n} rows")
    if C.ndim != 2 or C.shape[1] != n:
        raise SystemFileError(f"{path}: variable 'C' has shape {C.shape} but A is {n}x{n}; C must have "
                              f"n={n} columns")
    p, m = C.shape[0], B.shape[1]
    if D is not None and (D.size == 0 or (D.shape == (1, 1) and D[0, 0] == 0)):
        D = None
    if D is not None and D.shape != (p, m):
        raise SystemFileError(f"{path}: variable 'D' has shape {D.shape} but B has m={m} columns and C p={p} rows; "
                              f"D must be ({p}, {m}), empty, or 0")
    dt = _time_base(path, variables)
    try:
        system = StateSpace(A, B, C, D, dt=dt)
    except ValueError as exc:
        raise SystemFileError(f"{path}: {exc}") from exc
    hsv = variables.get("hsv")
    if hsv is not None:
        if isinstance(hsv, _Refused) or hsv.dtype.kind not in "iuf":
            raise SystemFileError(f"{path}: variable 'hsv' is {_describe(hsv)}; it must be real numbers "
                                  f"(or remove it)")
        hsv = np.asarray(hsv, dtype=np.float64).ravel()
    bound = variables.get("error_bound")
    if bound is not None:
        if isinstance(bound, _Refused) or np.asarray(bound).dtype.kind not in "iuf" or np.asarray(bound).size != 1:
            raise SystemFileError(f"{path}: variable 'error_bound' must be one real number (or be removed)")
        bound = float(np.asarray(bound).ravel()[0])
    return SystemFile(system, hsv, bound, path, fmt)


def load_system(path):
    """Read a state-space system from a ``.mat``, ``.npz`` or ``.json`` file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    StateSpace

    Raises
    ------
    SystemFileError
        With a one-line message naming the file, the variable and the fix.

    See Also
    --------
    load_system_file : also returns the HSVs and error bound stored with a reduction.
    save_system

    Examples
    --------
    A round trip through a MATLAB file (written to the current directory):

    >>> import lti_reduce as lr
    >>> G = lr.StateSpace([[-1.0]], [[1.0]], [[2.0]], dt=0.1)
    >>> lr.save_system("g.mat", G)
    >>> H = lr.load_system("g.mat")
    >>> H.A.tolist(), H.C.tolist(), H.dt
    ([[-1.0]], [[2.0]], 0.1)
    """
    return load_system_file(path).system


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def _json_value(array):
    array = np.asarray(array)
    if np.iscomplexobj(array):
        return {"real": _json_value(array.real), "imag": _json_value(array.imag)}
    if array.ndim == 0:
        value = float(array)
        return value if math.isfinite(value) else str(value)
    return [_json_value(a) for a in array]


def save_system(path, system, *, hsv=None, error_bound=None, format=None):
    """Write a system (and, for a reduction, its HSVs and error bound) to a file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its suffix (``.mat``, ``.npz``, ``.json``) selects the format
        unless ``format`` is given.
    system : StateSpace, BalancedTruncationResult, or a python-control / scipy.signal system
        A :class:`BalancedTruncationResult` writes its reduced system, HSVs and bound.
    hsv : array_like, shape (n,), optional
    error_bound : float, optional
    format : {'mat', 'npz', 'json'}, optional

    Raises
    ------
    SystemFileError
        Unknown format, or a system too large for JSON (n > 200).
    OSError
        If the directory cannot be written.

    Notes
    -----
    The file is written to a temporary file in the same directory and renamed over
    ``path``: a failure leaves an existing file unchanged. ``.mat`` files are MATLAB 5
    format (read by every MATLAB and Octave); discrete time with an unspecified period
    (``dt=True``) is stored as ``Ts = -1``, MATLAB's convention. In JSON a complex matrix
    is ``{"real": ..., "imag": ...}`` and an infinite HSV the string ``"inf"``.
    """
    if hasattr(system, "system") and hasattr(system, "hsv") and hasattr(system, "error_bound"):
        hsv = system.hsv if hsv is None else hsv
        error_bound = system.error_bound if error_bound is None else error_bound
        system = system.system
    system = as_statespace(system)
    if isinstance(system, DiagonalStateSpace):
        system = system.to_dense()
    system = system.to_numpy()
    path = Path(path)
    fmt = format if format is not None else _format_of(path)
    if fmt not in FORMATS.values():
        raise SystemFileError(f"{path}: unknown format {fmt!r}; use one of {sorted(FORMATS.values())}")
    if fmt == "json" and system.n > JSON_MAX_ORDER:
        raise SystemFileError(f"{path}: a system with n={system.n} states is too large for JSON "
                              f"(at most {JSON_MAX_ORDER}); write a .npz or .mat file")
    ts = -1.0 if system.dt is True else float(system.dt)
    variables = {"A": system.A, "B": system.B, "C": system.C, "D": system.D, "Ts": ts}
    if hsv is not None:
        variables["hsv"] = np.asarray(to_numpy(hsv), dtype=np.float64).ravel()
    if error_bound is not None:
        variables["error_bound"] = float(error_bound)
    directory = path.parent if str(path.parent) else Path(".")
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            if fmt == "mat":
                from scipy import io as sio
                sio.savemat(handle.file, {k: np.atleast_2d(v) for k, v in variables.items()}, oned_as="row")
            elif fmt == "npz":
                np.savez(handle.file, **{k: np.asarray(v) for k, v in variables.items()})
            else:
                text = json.dumps({k: _json_value(v) for k, v in variables.items()}, allow_nan=False)
                handle.write(text.encode("utf-8"))
        os.replace(handle.name, path)
    except BaseException:
        os.unlink(handle.name)
        raise
