"""Core benchmark: balanced truncation of ``lti_reduce`` against slycot, python-control and
the naive published (CompreSSM) reduction step, side by side, BLAS at one thread.

Two tables:

1. Dense balanced truncation, discrete and continuous, n in {50, 100, 200, 400, 1000}, m = p
   in {1, 4, 16}, reduced order r = min(10, n - 1): ``lti_reduce.balanced_truncation`` vs
   ``slycot.ab09ad(dico, 'B', 'N', ...)`` vs ``control.balred`` (continuous only; it calls
   slycot underneath and is timed as a user calls it) vs the square-root factors alone from
   scipy's Lyapunov solvers + Cholesky (with the HSVs those factors give, or "Cholesky
   fails"). The contenders run in interleaved rounds so that load on the shared machine hits
   them alike. Targets (issue 13 item 2): ours/slycot <= 1.5 at every n; HSVs equal to SLICOT's
   to 1e-10 relative over ``s_i >= 1e-6 s_1``.
2. Diagonal complex LRU-shaped systems, the two published configurations (n=256, m=p=8,
   one layer; n=384, m=p=512, six layers): ours (one batched call with energy tau = 0.1)
   vs the naive published approach (``naive_published.py``, layer by layer) vs slycot on
   the realified 2n-state real system (each HSV twice). Targets: >= 5x faster than the
   naive approach per layer; HSVs equal to slycot's to 1e-10.

Times are medians over repeats (3 at n >= 1000), after one untimed warm-up call for the
smaller sizes; the load average is printed at the start and the end. Test systems come from a fixed seed, so every run times the same systems.

Usage (the lead's full run, on a quiet machine, OpenBLAS kernel auto-detected)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_core.py --out benchmarks/results_core.md

    python benchmarks/bench_core.py --quick            # dense n <= 400, small LRU configurations
    python benchmarks/bench_core.py --skip-lru --sizes 50,100 --ms 1   # a few dense cells
    python benchmarks/bench_core.py --repeats 7        # more repeats (n >= 1000 still uses <= 3)
    python benchmarks/bench_core.py --profile 1000     # also cProfile ours once at n = 1000
    python benchmarks/bench_core.py --skip-lru --skip-dense --parts 50   # the calls ours makes at n = 50
    python benchmarks/bench_core.py --skip-lru --skip-dense --factor-routes 50,200,1000   # real vs complex factors

BLAS is pinned to one thread (environment variables set before numpy is imported, plus
``threadpoolctl.threadpool_limits(1)``); the BLAS libraries in use and their kernels are
printed at the top. Missing slycot or python-control gives "n/a" in their columns.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _environment import pin_one_blas_thread  # noqa: E402

_CORETYPE_VARS = pin_one_blas_thread()     # one BLAS thread: before numpy is imported

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

try:
    import threadpoolctl  # noqa: E402
except ImportError:  # pragma: no cover - reported in the header
    threadpoolctl = None

try:
    import slycot  # noqa: E402
except ImportError:
    slycot = None

try:
    import control  # noqa: E402
except ImportError:
    control = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lti_reduce  # noqa: E402
from lti_reduce import StateSpace, DiagonalStateSpace  # noqa: E402
import naive_published  # noqa: E402

# keep the limiter alive for the whole run (loaded libraries: numpy's, scipy's, slycot's OpenBLAS)
_LIMITS = threadpoolctl.threadpool_limits(1) if threadpoolctl is not None else None

NA = "n/a"
HSV_FLOOR = 1e-6          # compare HSVs with s_i >= HSV_FLOOR * s_1
ENERGY_TAU = 0.1


# -----------------------------------------------------------------------------------------
# environment
# -----------------------------------------------------------------------------------------
def _version(module):
    return getattr(module, "__version__", "?") if module is not None else "not installed"


def environment_lines():
    lines = [f"python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
             f"{os.cpu_count()} CPUs visible",
             f"numpy {np.__version__}, scipy {scipy.__version__}, lti_reduce {_version(lti_reduce)}, "
             f"slycot {_version(slycot)}, control {_version(control)}, "
             f"threadpoolctl {_version(threadpoolctl)}"]
    for name, value in _CORETYPE_VARS.items():
        if value is not None:
            lines.append(f"WARNING: {name}={value} is set: the BLAS kernel is forced, not auto-detected; "
                         f"run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` for the recorded table")
    if threadpoolctl is None:
        lines.append("WARNING: threadpoolctl not installed: BLAS threads pinned by environment only, "
                     "kernel unknown")
        return lines
    for info in threadpoolctl.threadpool_info():
        lib = os.path.basename(info.get("filepath", "?"))
        kernel = info.get("architecture") or info.get("coretype") or "?"
        lines.append(f"BLAS: {info.get('internal_api')} {info.get('version')} kernel={kernel} "
                     f"num_threads={info.get('num_threads')} threading={info.get('threading_layer', '?')} "
                     f"({lib})")
        if info.get("num_threads") != 1:
            lines.append(f"WARNING: {lib} runs {info.get('num_threads')} threads, not 1")
    return lines


# -----------------------------------------------------------------------------------------
# timing and comparison helpers
# -----------------------------------------------------------------------------------------
def median_time(fn, repeats, warmup=True, setup=None):
    """Median wall time of ``fn(*setup())`` over ``repeats`` calls; returns (seconds, last result).

    ``setup`` (untimed) supplies fresh arguments, so that routines that overwrite their
    input (Fortran wrappers) never see already-modified data."""
    args = setup() if setup is not None else ()
    if warmup:
        fn(*args)
    times, out = [], None
    for _ in range(repeats):
        args = setup() if setup is not None else ()
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def guarded(fn, *args, **kwargs):
    """Run a benchmark cell; an exception becomes a short text instead of aborting the table."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - report and continue
        return None, f"error: {type(exc).__name__}: {str(exc)[:80]}"


def hsv_rel_diff(ours, ref, floor=HSV_FLOOR):
    """max |ours_i - ref_i| / ref_i over ref_i >= floor * ref_1 (both descending)."""
    ours = np.sort(np.asarray(ours, dtype=float))[::-1]
    ref = np.sort(np.asarray(ref, dtype=float))[::-1]
    k = min(ours.size, ref.size)
    ours, ref = ours[:k], ref[:k]
    mask = ref >= floor * ref[0]
    return float(np.max(np.abs(ours[mask] - ref[mask]) / ref[mask]))


def fmt_time(t):
    if t is None:
        return NA
    if isinstance(t, str):
        return t
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.3f} s"


def fmt_ratio(x, digits=2):
    return NA if x is None else f"{x:.{digits}f}"


def fmt_sci(x):
    return NA if x is None else f"{x:.1e}"


def markdown_table(header, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, rule] + body)


# -----------------------------------------------------------------------------------------
# test systems
# -----------------------------------------------------------------------------------------
def random_stable_dense(n, m, p, discrete, seed):
    """Reproducible well-conditioned stable real system.

    ``A = Q (D + N) Q^T``: Q a random orthogonal matrix, D block diagonal with real
    eigenvalues and 2x2 rotation blocks (complex pairs), N a mild strictly block-upper
    non-normal part (norm ~ 0.3 of the spectral radius). Eigenvalues: continuous
    ``Re in [-2, -0.05]``, ``|Im| <= 3``; discrete ``|z| in [0.05, 0.95]``.
    """
    rng = np.random.default_rng([seed, n, m, p, int(discrete)])
    D = np.zeros((n, n))
    blocks, i = [], 0
    while i < n:
        pair = i + 1 < n and rng.random() < 0.5
        if discrete:
            radius = rng.uniform(0.05, 0.95)
            phase = rng.uniform(0, np.pi)
            re, im = radius * np.cos(phase), radius * np.sin(phase)
        else:
            re, im = -rng.uniform(0.05, 2.0), rng.uniform(0, 3.0)
        if pair:
            D[i:i + 2, i:i + 2] = [[re, im], [-im, re]]
            blocks.append(slice(i, i + 2))
            i += 2
        else:
            D[i, i] = re if not discrete else rng.choice([-1, 1]) * rng.uniform(0.05, 0.95)
            blocks.append(slice(i, i + 1))
            i += 1
    N = np.triu(rng.standard_normal((n, n)), 1)
    for b in blocks:                      # keep D's diagonal blocks: eigenvalues unchanged
        N[b, b] = 0.0
    N *= 0.3 / max(np.linalg.norm(N, 2), 1e-300) if n > 1 else 0.0
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ (D + N) @ Q.T
    B = rng.standard_normal((n, m)) / np.sqrt(n)
    C = rng.standard_normal((p, n)) / np.sqrt(n)
    Dm = np.zeros((p, m))
    return A, B, C, Dm


def lru_layers(n, h, layers, seed, r_min=0.9, r_max=0.999):
    """LRU ring init: ``|lambda|^2`` uniform on [r_min^2, r_max^2], phase uniform in [0, 2 pi];
    ``B = (B_re + i B_im) / sqrt(2 h) * gamma`` with ``gamma = sqrt(1 - |lambda|^2)``,
    ``C = (C_re + i C_im) / sqrt(n)`` (Orvieto et al. 2023). Returns stacked (layers, ...) arrays."""
    rng = np.random.default_rng([seed, n, h, layers])
    u = rng.uniform(size=(layers, n))
    modulus = np.sqrt(u * (r_max ** 2 - r_min ** 2) + r_min ** 2)
    phase = rng.uniform(0, 2 * np.pi, size=(layers, n))
    lam = modulus * np.exp(1j * phase)
    gamma = np.sqrt(1 - modulus ** 2)
    B = (rng.standard_normal((layers, n, h)) + 1j * rng.standard_normal((layers, n, h))) / np.sqrt(2 * h)
    B = B * gamma[..., None]
    C = (rng.standard_normal((layers, h, n)) + 1j * rng.standard_normal((layers, h, n))) / np.sqrt(n)
    D = np.zeros((layers, h, h))
    return lam, B, C, D


def realify(lam, B, C):
    """Real 2n-state system of the complex system (inputs and outputs realified too)."""
    def real_form(X):
        return np.block([[X.real, -X.imag], [X.imag, X.real]])
    return real_form(np.diag(lam)), real_form(B), real_form(C)


# -----------------------------------------------------------------------------------------
# table 1: dense BT
# -----------------------------------------------------------------------------------------
def interleaved_times(contenders, repeats, warmup=True):
    """Times of several contenders measured in rounds: each round runs every contender once,
    in turn, so that a load change on the shared machine hits all of them alike.

    ``contenders``: {name: (fn, setup or None)}; a contender that raises is dropped with its
    error text. Returns ({name: [seconds per round]}, {name: last result}, {name: error text}).
    """
    times = {name: [] for name in contenders}
    results, errors = {}, {}
    for name, (fn, setup) in contenders.items():
        if warmup:
            try:
                fn(*(setup() if setup else ()))
            except Exception as exc:  # noqa: BLE001 - report and continue
                errors[name] = f"error: {type(exc).__name__}: {str(exc)[:80]}"
    for _ in range(repeats):
        for name, (fn, setup) in contenders.items():
            if name in errors:
                continue
            args = setup() if setup else ()
            try:
                t0 = time.perf_counter()
                results[name] = fn(*args)
                times[name].append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001
                errors[name] = f"error: {type(exc).__name__}: {str(exc)[:80]}"
    return times, results, errors


def scipy_factors(A, B, C, discrete):
    """Square-root factors from scipy's Lyapunov solvers and a Cholesky factorisation of the
    formed Gramians (``cholesky`` raises LinAlgError when a Gramian is numerically singular)."""
    if discrete:
        P = scipy.linalg.solve_discrete_lyapunov(A, B @ B.T)
        Q = scipy.linalg.solve_discrete_lyapunov(A.T, C.T @ C)
    else:
        P = scipy.linalg.solve_continuous_lyapunov(A, -B @ B.T)
        Q = scipy.linalg.solve_continuous_lyapunov(A.T, -C.T @ C)
    Lc = scipy.linalg.cholesky((P + P.T) / 2, lower=True)
    Lo = scipy.linalg.cholesky((Q + Q.T) / 2, lower=True)
    return Lc, Lo


def dense_case(n, m, discrete, repeats, seed):
    A, B, C, D = random_stable_dense(n, m, m, discrete, seed)
    r = min(10, n - 1)
    dt = 1.0 if discrete else 0.0
    row = {"n": n, "m": m, "dt": "D" if discrete else "C", "r": r}
    system = StateSpace(A, B, C, D, dt=dt)
    dico = "D" if discrete else "C"
    contenders = {"ours": (lambda: lti_reduce.balanced_truncation(system, order=r), None)}
    if slycot is not None:
        contenders["slycot"] = (lambda a, b, c: slycot.ab09ad(dico, "B", "N", n, m, m, a, b, c, nr=r),
                                lambda: (np.array(A, order="F"), np.array(B, order="F"), np.array(C, order="F")))
    if control is not None and not discrete:
        sys_ct = control.ss(A, B, C, D)
        contenders["control"] = (lambda: control.balred(sys_ct, r), None)
    contenders["scipy"] = (lambda: scipy_factors(A, B, C, discrete), None)
    times, results, errors = interleaved_times(contenders, repeats, warmup=n < 1000)
    for name in ("ours", "slycot", "control", "scipy"):
        if name in errors:
            row[name] = errors[name]
        elif times.get(name):
            row[name] = statistics.median(times[name])
        else:
            row[name] = NA
    if discrete:
        row["control"] = "(cont. only)"
    ok = "ours" not in errors and "slycot" in times and "slycot" not in errors
    # ratio of the medians of per-round ratios: both timed within seconds of each other
    row["ratio"] = statistics.median(o / s for o, s in zip(times["ours"], times["slycot"])) if ok else None
    hsv_sly = np.asarray(results["slycot"][4]) if ok else None
    row["hsv"] = hsv_rel_diff(np.asarray(results["ours"].hsv), hsv_sly) if ok else None
    if "scipy" in errors:
        row["scipy_hsv"] = "Cholesky fails" if "LinAlgError" in errors["scipy"] else "error"
        row["scipy"] = "n/a (see HSV column)" if "LinAlgError" in errors["scipy"] else row["scipy"]
    elif hsv_sly is not None:
        Lc, Lo = results["scipy"]
        row["scipy_hsv"] = fmt_sci(hsv_rel_diff(np.linalg.svd(Lo.T @ Lc, compute_uv=False), hsv_sly))
    else:
        row["scipy_hsv"] = NA
    return row


def dense_table(sizes, ms, repeats, seed, log):
    rows = []
    for discrete in (True, False):
        for n in sizes:
            for m in ms:
                # the smallest cells take milliseconds: their ratio is the most load-sensitive and
                # more rounds cost little
                reps = min(repeats, 3) if n >= 1000 else 5 * repeats if n <= 200 else repeats
                t0 = time.perf_counter()
                row = dense_case(n, m, discrete, reps, seed)
                log(f"  dense {row['dt']} n={n} m=p={m}: {time.perf_counter() - t0:.1f} s "
                    f"(ratio {fmt_ratio(row['ratio'])}, load {os.getloadavg()[0]:.2f})")
                rows.append(row)
    header = ["time base", "n", "m=p", "r", "ours", "slycot ab09ad", "ours/slycot", "control.balred",
              "scipy Lyapunov+Cholesky factors", "max rel HSV diff (ours)", "max rel HSV diff (scipy+Cholesky)"]
    body = [[("discrete" if r["dt"] == "D" else "continuous"), r["n"], r["m"], r["r"], fmt_time(r["ours"]),
             fmt_time(r["slycot"]), fmt_ratio(r["ratio"]), fmt_time(r["control"]), fmt_time(r["scipy"]),
             fmt_sci(r["hsv"]), r["scipy_hsv"]]
            for r in rows]
    return markdown_table(header, body), rows


# -----------------------------------------------------------------------------------------
# table 2: diagonal complex LRU-shaped systems
# -----------------------------------------------------------------------------------------
def lru_case(label, n, h, layers, repeats, seed, naive_c64=True):
    lam, B, C, D = lru_layers(n, h, layers, seed)
    row = {"label": label, "n": n, "h": h, "layers": layers}
    system = DiagonalStateSpace(lam, B, C, D, dt=True) if layers > 1 else \
        DiagonalStateSpace(lam[0], B[0], C[0], D[0], dt=True)

    res, err = guarded(median_time, lambda: lti_reduce.balanced_truncation(system, energy=ENERGY_TAU),
                       repeats, True)
    row["ours"] = err or res[0]
    results = None if err else (res[1] if layers > 1 else (res[1],))
    row["orders"] = "-" if results is None else ",".join(str(x.order) for x in results)

    def naive(method, dtype):
        return naive_published.naive_reduce_layers(lam, B, C, ENERGY_TAU, method, dtype)

    for key, method, dtype in (("naive_sqrtm", "sqrtm", np.complex128), ("naive_chol", "chol", np.complex128),
                               ("naive_c64", "chol", np.complex64)):
        if dtype == np.complex64 and not naive_c64:
            row[key] = "skipped"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res, err = guarded(median_time, lambda: naive(method, dtype), repeats, True)
        row[key] = err or res[0]
        if key == "naive_chol" and not err:
            row["naive_orders"] = ",".join(str(out[1]) for out in res[1])

    naive_times = [row[k] for k in ("naive_sqrtm", "naive_chol") if isinstance(row[k], float)]
    row["speedup"] = (min(naive_times) / row["ours"]) if naive_times and isinstance(row["ours"], float) else None

    if slycot is None:
        row["slycot"], row["hsv"] = NA, None
    else:
        sly_reps = max(1, min(repeats, 3))

        def run_slycot(mats):
            out = []
            for A_r, B_r, C_r, nr in mats:
                out.append(slycot.ab09ad("D", "B", "N", A_r.shape[0], B_r.shape[1], C_r.shape[0],
                                         A_r, B_r, C_r, nr=nr)[4])
            return out

        def setup():
            mats = []
            for i in range(layers):
                A_r, B_r, C_r = realify(lam[i], B[i], C[i])
                nr = 2 * (results[i].order if results is not None else 10)
                mats.append((np.asfortranarray(A_r), np.asfortranarray(B_r), np.asfortranarray(C_r), nr))
            return (mats,)

        res, err = guarded(median_time, run_slycot, sly_reps, False, setup)
        row["slycot"] = err or res[0]
        if err or results is None:
            row["hsv"] = None
        else:
            row["hsv"] = max(hsv_rel_diff(np.repeat(np.asarray(results[i].hsv), 2), res[1][i])
                             for i in range(layers))
    return row


def lru_table(configs, repeats, seed, log, naive_c64=True):
    rows = []
    for label, n, h, layers in configs:
        t0 = time.perf_counter()
        rows.append(lru_case(label, n, h, layers, repeats, seed, naive_c64))
        log(f"  LRU {label}: {time.perf_counter() - t0:.1f} s")

    def per_layer(t, layers):
        return t / layers if isinstance(t, float) else t

    header = ["config", "n", "m=p", "layers", "r (ours)", "ours / layer", "ours total",
              "naive sqrtm c128 / layer", "naive chol c128 / layer", "naive chol c64 / layer",
              "speed-up / layer", "slycot realified (2n) total", "max rel HSV diff"]
    body = [[r["label"], r["n"], r["h"], r["layers"], r["orders"], fmt_time(per_layer(r["ours"], r["layers"])),
             fmt_time(r["ours"]), fmt_time(per_layer(r["naive_sqrtm"], r["layers"])),
             fmt_time(per_layer(r["naive_chol"], r["layers"])), fmt_time(per_layer(r["naive_c64"], r["layers"])),
             NA if r["speedup"] is None else f"{r['speedup']:.1f}x", fmt_time(r["slycot"]), fmt_sci(r["hsv"])]
            for r in rows]
    return markdown_table(header, body), rows


# -----------------------------------------------------------------------------------------
# optional profile
# -----------------------------------------------------------------------------------------
def profile_dense(n, m, discrete, seed, top=20):
    """cProfile of ``calls`` calls of ours (enough of them for sub-millisecond resolution at small
    n; the profiler's per-call overhead inflates Python-heavy parts such as the factor leaves)."""
    import cProfile
    import io
    import pstats
    A, B, C, D = random_stable_dense(n, m, m, discrete, seed)
    system = StateSpace(A, B, C, D, dt=1.0 if discrete else 0.0)
    calls = max(1, 5000 // n)
    lti_reduce.balanced_truncation(system, order=min(10, n - 1))
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        lti_reduce.balanced_truncation(system, order=min(10, n - 1))
    prof.disable()
    out = io.StringIO()
    out.write(f"{calls} calls profiled: divide the times by {calls} for one call\n")
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


MINIMAL = "the same calls chained with no checks (Schur, factors, SVD, projections)"


def _minimal_reduction(A, B, C, D, discrete, r):
    """The square-root reduction as a bare chain of the library's calls: no argument checks,
    no stability or finiteness checks, no result objects (what ours costs without them)."""
    from lti_reduce import _balanced, _real_schur_factor
    form = _real_schur_factor.real_schur(A)
    Lc, Lo = _real_schur_factor.real_gramian_factors(form, B, C, discrete)
    U, s, Vh = _balanced._svd(np, Lo.T @ Lc)
    scale = 1.0 / np.sqrt(s[:r])
    W, V = (Lo @ U[:, :r]) * scale, (Lc @ Vh[:r].T) * scale
    return W.T @ A @ V, W.T @ B, C @ V, D


def factor_routes(sizes, seed, repeats):
    """The real factor route against the complex one on the same systems (discrete, m = p = 1,
    interleaved): both factors from a Schur form computed once, and the Schur forms themselves."""
    from lti_reduce import _blocked_factor, _real_schur_factor
    rows = []
    for n in sizes:
        A, B, C, _ = random_stable_dense(n, 1, 1, True, seed)
        real_form, complex_form = _real_schur_factor.real_schur(A), _blocked_factor.fast_complex_schur(A)
        contenders = {
            "real": (lambda: _real_schur_factor.real_gramian_factors(real_form, B, C, True), None),
            "complex": (lambda: _blocked_factor.schur_gramian_factors(complex_form, B, C, True), None),
            "real Schur": (lambda: _real_schur_factor.real_schur(A), None),
            "complex Schur": (lambda: _blocked_factor.fast_complex_schur(A), None),
        }
        times, _, errors = interleaved_times(contenders, max(3, min(repeats, 2000 // n)))
        med = {k: float(np.median(v)) for k, v in times.items() if v}
        rows.append([n] + [fmt_time(med[k]) if k in med else errors.get(k, NA) for k in contenders]
                    + [fmt_ratio(med["real"] / med["complex"])])
    return markdown_table(["n", "both factors: real route", "complex route (compiled leaves + QR)",
                           "real Schur form", "complex Schur form (real Schur + 2x2 rotations)",
                           "real / complex factors"], rows)


def parts_dense(n, m, discrete, seed, repeats):
    """Ours and slycot beside the library calls ours makes (interleaved rounds): what is left
    of ours after them is Python (argument checks, orchestration, result objects)."""
    from lti_reduce import _balanced, _real_schur_factor
    A, B, C, D = random_stable_dense(n, m, m, discrete, seed)
    r = min(10, n - 1)
    dt = 1.0 if discrete else 0.0
    system = StateSpace(A, B, C, D, dt=dt)
    form = _real_schur_factor.real_schur(A)
    Lc, Lo = _real_schur_factor.real_gramian_factors(form, B, C, discrete)
    product = Lo.T @ Lc
    dico = "D" if discrete else "C"
    contenders = {
        "ours (all of it)": (lambda: lti_reduce.balanced_truncation(StateSpace(A, B, C, D, dt=dt), order=r), None),
        "slycot ab09ad": (lambda a, b, c: slycot.ab09ad(dico, "B", "N", n, m, m, a, b, c, nr=r),
                          lambda: (np.asfortranarray(A), np.asfortranarray(B), np.asfortranarray(C))),
        "StateSpace(A, B, C, D) (the caller's)": (lambda: StateSpace(A, B, C, D, dt=dt), None),
        "real Schur form (LAPACK gees)": (lambda: _real_schur_factor.real_schur(A), None),
        "both factors (C: " + ("Cayley, " if discrete else "") + "2 real Hammarling)":
            (lambda: _real_schur_factor.real_gramian_factors(form, B, C, discrete), None),
        "SVD of Lo^T Lc (LAPACK gesdd)": (lambda: _balanced._svd(np, product), None),
        "3 products (gemm): Z U twice, Lo^T Lc": (lambda: (form.Z @ Lc, form.Z @ Lo, Lo.T @ Lc), None),
        MINIMAL: (lambda: _minimal_reduction(A, B, C, D, discrete, r), None),
    }
    if slycot is None:
        del contenders["slycot ab09ad"]
    times, _, errors = interleaved_times(contenders, repeats)
    med = {k: float(np.median(v)) for k, v in times.items() if v}
    # the calls ours makes (the factors' glue included), not the minimal script that chains them
    calls = [k for k in med if k not in ("ours (all of it)", "slycot ab09ad", MINIMAL)]
    ref = med.get("slycot ab09ad")
    rows = [[k, fmt_time(v), fmt_ratio(v / ref) if ref else "n/a"] for k, v in med.items() if k != MINIMAL]
    total = sum(med[k] for k in calls)
    rows.append(["sum of the calls above (ours without Python)", fmt_time(total),
                 fmt_ratio(total / ref) if ref else "n/a"])
    rows.append(["ours minus that sum (Python)", fmt_time(med["ours (all of it)"] - total),
                 fmt_ratio((med["ours (all of it)"] - total) / ref) if ref else "n/a"])
    if MINIMAL in med:
        rows.append([MINIMAL, fmt_time(med[MINIMAL]), fmt_ratio(med[MINIMAL] / ref) if ref else "n/a"])
    rows += [[k, e, ""] for k, e in errors.items()]
    return markdown_table(["part", "time", "/ slycot"], rows)


# -----------------------------------------------------------------------------------------
def _state_counts(text):
    """argparse type of --factor-routes: comma-separated state counts, each >= 2."""
    return [_state_count(part) for part in text.split(",")]


def _state_count(text):
    """argparse type of --profile and --parts: a state count n >= 2."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 2:
        raise argparse.ArgumentTypeError(f"expected a number of states >= 2, got {text!r}")
    return n


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="dense n <= 400 only, smaller LRU configurations, "
                    "3 repeats: a few minutes")
    ap.add_argument("--sizes", default=None, help="comma-separated dense n (overrides the default list)")
    ap.add_argument("--ms", default=None, help="comma-separated dense m = p (overrides the default list)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed repeats per cell (default 5, 3 with --quick; n >= 1000 uses at most 3)")
    ap.add_argument("--out", default=None, help="also write the report (Markdown) to this file")
    ap.add_argument("--seed", type=int, default=0, help="seed of the test systems (default 0)")
    ap.add_argument("--skip-dense", action="store_true", help="only the LRU table")
    ap.add_argument("--skip-lru", action="store_true", help="only the dense table")
    ap.add_argument("--no-c64", action="store_true", help="skip the complex64 naive column")
    ap.add_argument("--profile", type=_state_count, default=None, metavar="N",
                    help="also cProfile one call of ours (dense, discrete, m=p=16) at this n")
    ap.add_argument("--parts", type=_state_count, default=None, metavar="N",
                    help="also time, at this n (discrete, m=p=1), the library calls ours makes beside ours "
                         "and slycot (interleaved, 25 x repeats rounds)")
    ap.add_argument("--factor-routes", type=_state_counts, default=None, metavar="N,N,...",
                    help="also time the real factor route against the complex one at these n (discrete, m=p=1)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    if args.quick:
        sizes, ms = (50, 100, 200, 400), (1, 4, 16)
        configs = [("(a) sMNIST-shaped", 256, 8, 1), ("(b) quick, like n=384 m=p=512 x6", 128, 128, 2)]
    else:
        sizes, ms = (50, 100, 200, 400, 1000), (1, 4, 16)
        configs = [("(a) sMNIST-shaped", 256, 8, 1), ("(b) sCIFAR-shaped", 384, 512, 6)]

    if args.sizes:
        sizes = tuple(int(x) for x in args.sizes.split(","))
    if args.ms:
        ms = tuple(int(x) for x in args.ms.split(","))
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv) if argv is None else \
        "bench_core.main(" + repr(argv) + ")"
    started = datetime.datetime.now().astimezone()
    head = [f"# lti_reduce core benchmark{' (--quick)' if args.quick else ''}", "",
            f"Command: `{command}`  ", f"Date: {started.isoformat(timespec='seconds')}  ",
            f"Repeats: median of {repeats} (dense: {5 * repeats} at n <= 200, at most 3 at n >= 1000), seed {args.seed}",
            "", "```"]
    head += environment_lines() + ["load average (1, 5, 15 min) at start: %.2f %.2f %.2f" % os.getloadavg(), "```"]
    print("\n".join(head), flush=True)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    sections = []
    missed = []      # the targets: the exit status is 1 when one is not met
    if not args.skip_dense:
        table, rows = dense_table(sizes, ms, repeats, args.seed, log)
        for r in rows:
            if r["hsv"] is not None and r["hsv"] > 1e-10:
                missed.append(f"dense n={r['n']}: HSV diff {r['hsv']:.1e} > 1e-10")
            if r["ratio"] is not None and r["ratio"] > 1.5:
                missed.append(f"dense {r['dt']} n={r['n']} m=p={r['m']}: ours/slycot {r['ratio']:.2f} > 1.5")
        sections.append("\n".join([
            "", "## Dense balanced truncation (random stable real systems, r = min(10, n-1))", "", table, "",
            "ours: `lti_reduce.balanced_truncation(StateSpace(A, B, C, D, dt), order=r)`; slycot: "
            "`ab09ad(dico, 'B', 'N', n, m, p, A, B, C, nr=r)`; control: `control.balred(sys, r)` "
            "(continuous only; calls slycot); scipy: `solve_continuous_lyapunov` / `solve_discrete_lyapunov` for "
            "P and Q, then `cholesky` of each (the square-root factors only, no SVD or projection). The "
            "contenders run in interleaved rounds (one call each per round); times are medians over rounds, "
            "ours/slycot the median of the per-round ratios. HSV diff: max |s_i - s_i^slycot| / s_i^slycot over "
            f"s_i >= {HSV_FLOOR:g} s_1 (scipy+Cholesky: HSVs as svd(Lo^T Lc) of its factors). "
            "Targets: ours/slycot <= 1.5 at every n, HSV diff <= 1e-10."]))
        print(sections[-1], flush=True)
    if not args.skip_lru:
        table, rows = lru_table(configs, repeats, args.seed, log, not args.no_c64)
        for r in rows:
            if r["speedup"] is not None and r["speedup"] < 5:
                missed.append(f"diagonal {r['label']}: speed-up {r['speedup']:.1f}x < 5x")
            if r["hsv"] is not None and r["hsv"] > 1e-10:
                missed.append(f"diagonal {r['label']}: HSV diff {r['hsv']:.1e} > 1e-10")
        sections.append("\n".join([
            "", f"## Diagonal complex LRU-shaped systems (discrete, energy tau = {ENERGY_TAU})", "", table, "",
            "ours: one `balanced_truncation(DiagonalStateSpace(lam, B, C, D, dt=True), energy=0.1)` call on the "
            "batch of layers; naive: `naive_published.py` (kron-built Gramians, sqrt(eig(PQ)), sqrtm or "
            "Cholesky balancing with an explicit inverse, eig + explicit inverse of the reduced A), layer by "
            "layer; speed-up = fastest complex128 naive variant / ours. The naive times include the "
            "re-diagonalisation of the reduced A (an r x r eig), which ours does not do. slycot: ab09ad on "
            "the realified real system (2n states, 2m inputs, 2p outputs; each HSV twice), all layers. "
            f"Targets: speed-up >= 5x per layer, HSV diff <= 1e-10 (s_i >= {HSV_FLOOR:g} s_1)."]))
        print(sections[-1], flush=True)
    elapsed = (datetime.datetime.now().astimezone() - started).total_seconds()
    tail = (f"\nTotal wall time {elapsed:.1f} s; load average at the end %.2f %.2f %.2f (1, 5, 15 min).\n\n"
            % os.getloadavg()) + "Targets missed: " + ("; ".join(missed) if missed else "none")
    print(tail, flush=True)
    if args.profile:
        prof = profile_dense(args.profile, 16, True, args.seed)
        sections.append(f"\n## cProfile of ours, dense discrete n={args.profile}, m=p=16 (by tottime, then cumulative)\n\n```\n"
                        f"{prof}```")
        print(sections[-1], flush=True)
    if args.factor_routes:
        routes = factor_routes(args.factor_routes, args.seed, 25 * repeats)
        sections.append(f"\n## Factor routes for real systems, dense discrete, m=p=1 (medians of interleaved "
                        f"rounds)\n\n{routes}")
        print(sections[-1], flush=True)
    if args.parts:
        for discrete in (True, False):
            parts = parts_dense(args.parts, 1, discrete, args.seed, 25 * repeats)
            sections.append(f"\n## Where ours spends its time, dense {'discrete' if discrete else 'continuous'} "
                            f"n={args.parts}, m=p=1 (medians of {25 * repeats} interleaved rounds)\n\n{parts}")
            print(sections[-1], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(head + sections + [tail]) + "\n")
        print(f"(written to {args.out})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
