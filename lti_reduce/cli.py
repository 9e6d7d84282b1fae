"""The ``lti-reduce`` command line: inspect, reduce and verify systems stored in files.

::

    lti-reduce info FILE
    lti-reduce hsv FILE [--plot hsv.png]
    lti-reduce reduce FILE (--order R | --tol T | --energy TAU) [--method sr|bfsr]
                      [--match truncate|dc] [--unstable error|keep] [--alpha A] [--horizon L] [-o OUT]
    lti-reduce verify FULL REDUCED [--bound B]
    lti-reduce norm FILE [--hinf] [--h2] [--hankel]

Files are MATLAB ``.mat`` (variables ``A, B, C, D``, optional ``Ts``), NumPy ``.npz`` or
JSON (see :func:`lti_reduce.load_system`). Results go to stdout, progress and timing
(for n >= 200 states, or with ``--verbose``) to stderr.

Exit status: 0 success; 1 ``verify`` found the error above the bound; 2 bad input (a
file, a variable or an option; one line on stderr naming it and the fix); 3 an internal
error (one line; ``--traceback`` shows the traceback).
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ._balanced import balanced_truncation, hankel_singular_values
from ._errors import LTIReduceError, UnstableSystemError
from ._io import FORMATS, SystemFileError, load_system_file, save_system
from ._norms import hinf_norm, h2_norm
from ._order import error_bound
from ._statespace import StateSpace

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_ABOVE_BOUND, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
# From this order on, progress and timing are reported on stderr.
PROGRESS_ORDER = 200
# verify: slack for rounding in forming G - G_r, relative to ||G||_inf (r = n gives an
# error of a few eps * ||G||, against a bound of 0).
VERIFY_RTOL = 1e-8


class _UsageError(LTIReduceError, ValueError):
    """A problem the user fixes on the command line or in a file (exit status 2)."""


def _fmt(x):
    return f"{x:.6g}"


class _Progress:
    def __init__(self, enabled):
        self.enabled = enabled
        self.start = time.perf_counter()

    def say(self, text):
        if self.enabled:
            print(f"lti-reduce: {text} [{time.perf_counter() - self.start:.2f} s]", file=sys.stderr, flush=True)


def _load(path, args):
    loaded = load_system_file(path)
    progress = _Progress(args.verbose or loaded.system.n >= PROGRESS_ORDER)
    progress.say(f"read {path}: n={loaded.system.n}, m={loaded.system.m}, p={loaded.system.p}")
    return loaded, progress


def _time_base(system):
    if not system.is_discrete:
        return "continuous (dt = 0)"
    if system.dt is True:
        return "discrete (unspecified sampling period, Ts = -1)"
    return f"discrete (dt = {_fmt(system.dt)})"


def _stability(system):
    poles = system.poles()
    if system.n == 0:
        return "yes (no states)"
    verdict = "yes" if system.is_stable() else "no"      # the core's one stability test
    if system.is_discrete:
        return f"{verdict}: max |pole| = {_fmt(float(np.max(np.abs(poles))))} (stable iff < 1)"
    return f"{verdict}: max Re(pole) = {_fmt(float(np.max(poles.real)))} (stable iff < 0)"


def _pole_text(z, pair=False):
    if z.imag == 0:
        return _fmt(z.real)
    if pair:
        return f"{_fmt(z.real)} +/- {_fmt(abs(z.imag))}j"
    return f"{_fmt(z.real)}{'+' if z.imag > 0 else '-'}{_fmt(abs(z.imag))}j"


def _pole_summary(system):
    """Count and list (up to 12) of the poles; a real system's conjugate pairs as ``a +/- bj`` (ASCII output)."""
    poles = system.poles()
    if poles.size == 0:
        return "none"
    if system.is_complex:
        kinds = f"{poles.size} (complex system)"
        shown = [_pole_text(z) for z in poles[np.lexsort((poles.imag, poles.real))]]
    else:
        real = int(np.count_nonzero(poles.imag == 0))
        kinds = f"{poles.size}: {real} real, {(poles.size - real) // 2} complex pair(s)"
        upper = poles[poles.imag >= 0]
        shown = [_pole_text(z, pair=True) for z in upper[np.lexsort((upper.imag, upper.real))]]
    if poles.size <= 12:
        return f"{kinds}; " + ", ".join(shown)
    size = np.abs(poles)
    return f"{kinds}; |pole| from {_fmt(size.min())} to {_fmt(size.max())}"


def _frequency(w):
    # a peak's location is known to about sqrt(rtol) of the norm: 4 digits are reproducible
    return "w -> inf" if np.isinf(w) else f"w = {w:.4g} rad/s"


# --------------------------------------------------------------------------------------
# subcommands
# --------------------------------------------------------------------------------------
def _cmd_info(args):
    loaded, _ = _load(args.file, args)
    system = loaded.system
    rows = [("file", f"{loaded.path} ({loaded.format})"),
            ("states", f"n = {system.n}"), ("inputs", f"m = {system.m}"), ("outputs", f"p = {system.p}"),
            ("time base", _time_base(system)),
            ("entries", "complex" if system.is_complex else "real"),
            ("stable", _stability(system)),
            ("poles", _pole_summary(system))]
    if loaded.hsv is not None:
        rows.append(("reduced from", f"n = {loaded.hsv.size} (HSVs stored)"))
    if loaded.error_bound is not None:
        rows.append(("error bound", f"{_fmt(loaded.error_bound)} (||G - G_r||_inf, stored)"))
    for key, value in rows:
        print(f"{key:<13}{value}")
    return EXIT_OK


def _stable_or_explain(path, exc, fix):
    # the core's first sentence names the poles; its advice is for Python callers
    what = _one_line(exc).split(". ")[0].rstrip(".")
    return _UsageError(f"{path}: {what}; {fix}")


def _cmd_hsv(args):
    loaded, progress = _load(args.file, args)
    try:
        hsv = np.asarray(hankel_singular_values(loaded.system), dtype=np.float64)
    except UnstableSystemError as exc:
        raise _stable_or_explain(args.file, exc, "Hankel singular values exist for stable systems; "
                                 "'lti-reduce reduce --unstable keep' reduces the stable part") from exc
    progress.say("Hankel singular values computed")
    n = hsv.size
    bounds = [error_bound(hsv, r) for r in range(1, n + 1)]
    print(f"{'r':>5}  {'hsv[r]':>12}  {'bound(r)':>12}")
    for r in range(1, n + 1):
        print(f"{r:>5}  {hsv[r - 1]:>12.6g}  {bounds[r - 1]:>12.6g}")
    print(f"bound(r) = 2 * (hsv[r+1] + ... + hsv[n]) bounds ||G - G_r||_inf for the order-r reduction; "
          f"bound(0) = {_fmt(error_bound(hsv, 0))}")
    if args.plot:
        _plot_hsv(args.plot, hsv, bounds)
        print(f"wrote {args.plot}")
    return EXIT_OK


def _plot_hsv(path, hsv, bounds):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise _UsageError(f"--plot {path}: plotting needs matplotlib: pip install matplotlib") from exc
    r = np.arange(1, hsv.size + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    keep = hsv > 0
    ax.semilogy(r[keep], hsv[keep], "o-", label="Hankel singular value $\\sigma_r$")
    b = np.asarray(bounds)
    ax.semilogy(r[b > 0], b[b > 0], "s--", label="bound $2\\sum_{i>r}\\sigma_i$ for order $r$")
    ax.set_xlabel("order r")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path)
    except (OSError, ValueError) as exc:
        raise _UsageError(f"--plot {path}: cannot write the figure ({_one_line(exc)})") from exc
    finally:
        plt.close(fig)


def _output_path(args, order):
    source = Path(args.file)
    if args.output is None:
        return source.with_name(f"{source.stem}_r{order}{source.suffix}")
    out = Path(args.output)
    if out.suffix == "":
        return out.with_suffix(source.suffix)
    if out.suffix.lower() not in FORMATS:
        raise _UsageError(f"-o {out}: unknown file type {out.suffix!r}; use .mat, .npz or .json "
                          f"(or no suffix for the input's format)")
    return out


def _horizon(value, system):
    if value is None:
        return None
    if system.is_discrete:
        if not float(value).is_integer():
            raise _UsageError(f"--horizon {value}: a discrete-time horizon is a number of samples (an integer)")
        return int(value)
    return float(value)


def _cmd_reduce(args):
    loaded, progress = _load(args.file, args)
    system = loaded.system
    if args.output is not None:
        _output_path(args, 0)   # reject a bad -o before the work
    progress.say(f"reducing (method {args.method}, match {args.match})")
    try:
        result = balanced_truncation(system, args.order, tol=args.tol, energy=args.energy, method=args.method,
                                     match=args.match, unstable=args.unstable, alpha=args.alpha,
                                     horizon=_horizon(args.horizon, system))
    except UnstableSystemError as exc:
        raise _stable_or_explain(args.file, exc, "pass --unstable keep to keep the unstable part whole "
                                 "and reduce the rest (--alpha moves the boundary)") from exc
    except (LTIReduceError, ValueError) as exc:
        raise _UsageError(f"{args.file}: {_one_line(exc)}") from exc
    progress.say(f"reduced to order {result.order}")
    out = _output_path(args, result.order)
    save_system(out, result)
    kept = int(np.count_nonzero(np.isinf(np.asarray(result.hsv))))
    print(f"reduced n = {system.n} to r = {result.order}" + (f" ({kept} unstable state(s) kept whole)" if kept
                                                             else ""))
    if result.error_bound is None:
        print("error bound: none (finite-horizon Gramians give no a-priori bound)")
    else:
        print(f"error bound: ||G - G_r||_inf <= {_fmt(result.error_bound)}")
    print(f"wrote {out}")
    return EXIT_OK


def _difference(full, reduced):
    """``G - G_r`` as one state-space system (block-diagonal A)."""
    n, r = full.n, reduced.n
    A = np.zeros((n + r, n + r), dtype=np.result_type(full.A, reduced.A))
    A[:n, :n], A[n:, n:] = full.A, reduced.A
    return StateSpace(A, np.vstack([full.B, reduced.B]), np.hstack([full.C, -reduced.C]), full.D - reduced.D,
                      dt=full.dt)


def _cmd_verify(args):
    full, progress = _load(args.full, args)
    reduced, _ = _load(args.reduced, args)
    G, Gr = full.system, reduced.system
    if (G.m, G.p) != (Gr.m, Gr.p):
        raise _UsageError(f"{args.reduced}: has m={Gr.m} inputs and p={Gr.p} outputs but {args.full} has "
                          f"m={G.m}, p={G.p}; verify a reduction of that system")
    if G.dt != Gr.dt:
        raise _UsageError(f"{args.reduced}: time base {_time_base(Gr)} differs from {args.full}'s "
                          f"{_time_base(G)}; verify a reduction of that system")
    bound = args.bound if args.bound is not None else reduced.error_bound
    if bound is None:
        raise _UsageError(f"{args.reduced}: carries no error bound (a finite-horizon reduction, or a file not "
                          f"written by lti-reduce); give one with --bound B")
    for path, system in ((args.full, G), (args.reduced, Gr)):
        if not system.is_stable():
            raise _UsageError(f"{path}: unstable ({_stability(system).split(': ', 1)[1]}); the H-infinity "
                              f"error is finite only between stable systems (an unstable part kept whole cancels "
                              f"only up to rounding), so verify compares stable systems")
    scale = hinf_norm(G).norm
    error = hinf_norm(_difference(G, Gr))
    progress.say("H-infinity norms computed")
    slack = VERIFY_RTOL * scale
    within = error.norm <= bound + slack
    print(f"H-inf error  ||G - G_r||_inf = {_fmt(error.norm)} (at {_frequency(error.peak_frequency)})")
    print(f"bound        {_fmt(bound)}" + (" (given)" if args.bound is not None else " (stored with the reduction)"))
    print(f"within bound {'yes' if within else 'NO'} (slack for rounding {_fmt(slack)} = "
          f"{VERIFY_RTOL:g} * ||G||_inf)")
    return EXIT_OK if within else EXIT_ABOVE_BOUND


def _cmd_norm(args):
    loaded, progress = _load(args.file, args)
    system = loaded.system
    which = [k for k in ("hinf", "h2", "hankel") if getattr(args, k)] or ["hinf", "h2", "hankel"]
    try:
        for kind in which:
            if kind == "hinf":
                value = hinf_norm(system)
                print(f"hinf    {_fmt(value.norm)} (peak at {_frequency(value.peak_frequency)})")
            elif kind == "h2":
                print(f"h2      {_fmt(h2_norm(system))}")
            else:
                hsv = np.asarray(hankel_singular_values(system))
                print(f"hankel  {_fmt(float(hsv[0]) if hsv.size else 0.0)}")
            progress.say(f"{kind} norm computed")
    except UnstableSystemError as exc:
        raise _stable_or_explain(args.file, exc, "system norms are finite for stable systems only") from exc
    return EXIT_OK


# --------------------------------------------------------------------------------------
# parser and entry point
# --------------------------------------------------------------------------------------
def _finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser():
    """The argparse parser of ``lti-reduce`` (for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="lti-reduce",
        description="Model order reduction of LTI systems stored in .mat, .npz or .json files.",
        epilog="Exit status: 0 ok, 1 verify: error above the bound, 2 bad input, 3 internal error.")
    parser.add_argument("--verbose", "-v", action="store_true", help="progress and timing on stderr")
    parser.add_argument("--traceback", action="store_true", help="show the traceback of an internal error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="sizes, time base, stability and poles")
    info.add_argument("file", help="system file (.mat, .npz, .json)")
    info.set_defaults(run=_cmd_info)

    hsv = commands.add_parser("hsv", help="Hankel singular values and the error bound of each order")
    hsv.add_argument("file")
    hsv.add_argument("--plot", metavar="PNG", help="write a log-scale plot of the HSVs and bounds")
    hsv.set_defaults(run=_cmd_hsv)

    reduce = commands.add_parser("reduce", help="balanced truncation; writes the reduced system, HSVs and bound")
    reduce.add_argument("file")
    target = reduce.add_mutually_exclusive_group(required=True)
    target.add_argument("--order", "-r", type=int, help="reduced order r")
    target.add_argument("--tol", type=_finite_float, help="error budget: smallest r with bound <= TOL")
    target.add_argument("--energy", type=_finite_float,
                        help="fraction tau in (0, 1): smallest r keeping 1 - tau of the HSV sum")
    reduce.add_argument("--method", choices=("sr", "bfsr"), default="sr",
                        help="square root (balanced result, default) or balancing-free square root")
    reduce.add_argument("--match", choices=("truncate", "dc"), default="truncate",
                        help="truncate (default) or dc: singular perturbation, keeps the steady-state gain")
    reduce.add_argument("--unstable", choices=("error", "keep"), default="error",
                        help="keep: keep the unstable part whole and reduce the rest (default: error)")
    reduce.add_argument("--alpha", type=_finite_float,
                        help="stability boundary: real part <= 0 (continuous) or modulus in [0, 1] (discrete)")
    reduce.add_argument("--horizon", type=_finite_float,
                        help="finite-horizon Gramians: samples (discrete) or time (continuous); no error bound")
    reduce.add_argument("-o", "--output", metavar="OUT",
                        help="output file; its suffix picks the format (default: FILE's name with _r<order>, "
                             "in FILE's format)")
    reduce.set_defaults(run=_cmd_reduce)

    verify = commands.add_parser("verify", help="true H-infinity error against the bound (exit 0 if within)")
    verify.add_argument("full")
    verify.add_argument("reduced")
    verify.add_argument("--bound", type=_finite_float, help="bound to check (default: the one stored)")
    verify.set_defaults(run=_cmd_verify)

    norm = commands.add_parser("norm", help="H-infinity, H2 and Hankel norms (all three by default)")
    norm.add_argument("file")
    norm.add_argument("--hinf", action="store_true")
    norm.add_argument("--h2", action="store_true")
    norm.add_argument("--hankel", action="store_true")
    norm.set_defaults(run=_cmd_norm)
    return parser


def _one_line(exc):
    return " ".join(str(exc).split())


def main(argv=None):
    """Run ``lti-reduce`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = _run(args)
    for warning in caught:   # one line each, not Python's two-line source listing
        print(f"lti-reduce: warning: {_one_line(warning.message)}", file=sys.stderr)
    return status


def _run(args):
    try:
        return args.run(args)
    except (SystemFileError, _UsageError) as exc:
        print(f"lti-reduce: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"lti-reduce: error: {exc.filename or ''}: {exc.strerror or _one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (LTIReduceError, ValueError) as exc:
        print(f"lti-reduce: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:   # noqa: BLE001  a bug: one line unless --traceback
        if args.traceback:
            raise
        print(f"lti-reduce: internal error: {type(exc).__name__}: {_one_line(exc)} "
              f"(rerun with --traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL
