"""One reduction event of LRU stacks: ``reduce_`` vs the published step vs the floor, in one run.

Shapes of the paper: (a) 1 layer, n=256, h=8 (sMNIST); (b) 6 layers, n=384, h=512
(sCIFAR). Three things are timed, interleaved repeat by repeat (so that load from other
processes hits them alike), one thread:

* ours: ``reduce_(model, energy=tau)`` on the model's parameters (CPU), everything an event
  costs: LTI form, batched Gramian factors, SVD, truncation, re-diagonalisation with its
  guards and the exactness check, parameter swap;
* published: per layer, dense Gramians, ``sqrt(eig(P Q))``, balancing transform with an
  explicit inverse, ``eig`` of the reduced A (``benchmarks/naive_published.py``), in
  complex64 as published, with the published default balancing (the Cholesky variant;
  also shown: its ``sqrtm`` variant in complex64, and the Cholesky variant in complex128);
* floor: the work no exact method can skip, with the libraries ours uses for it: the
  closed-form Gramians (lower triangle, BLAS ``herk``) and their Cholesky factors and the
  SVD of ``Lo^H Lc`` (``trmm``; numpy, as the core computes them for CPU tensors), and
  ``eig`` (torch) of each layer's actual reduced
  ``r x r`` matrix ``A_r`` (made once, outside the timer). Not in the floor, although an
  exact method needs them too: the projections ``W, V`` and ``A_r, B_r, C_r`` and the modal
  ``B_m = X^-1 B_r``, ``C_m = C_r X``; these are timed on their own ("products") to show
  how much of the difference between ours and the floor they are.

Peak memory of one event (item 3 of issue 13) is measured in fresh child processes: the
peak resident set size above the level before the event (numpy and torch alike; Linux),
and, in a second child, the peak of numpy's allocations by ``tracemalloc``, against the
size of the two Gramian factors (``2 L n^2`` complex128 numbers).

Targets (issue 13): (b) ours >= 1.5x faster than published c64 and <= 1.3x the floor;
(a) >= 2.5x faster than published c64. Exit status 1 when one is missed.

Run (BLAS and torch at one thread; the OpenBLAS variables unset for this command only)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_reduce.py

``--profile b`` prints a cProfile of one event of ours instead (where its time goes beyond the
floor).
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import scipy.linalg.blas as blas  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]     # this checkout's packages, not an installed copy
from naive_published import naive_reduce_layers  # noqa: E402
from _report import finish  # noqa: E402

from lti_reduce import DiagonalStateSpace, balanced_truncation  # noqa: E402
from lti_reduce_torch import LRU, get_adapter, reduce_  # noqa: E402

CONFIGS = {"a": ("(a) sMNIST-shaped", 1, 256, 8), "b": ("(b) sCIFAR-shaped", 6, 384, 512),
           "b-quick": ("(b) quick (scaled)", 2, 128, 128)}


def _stack(layers, n, h, seed):
    torch.manual_seed(seed)
    return torch.nn.ModuleList(LRU(h, n) for _ in range(layers))


def _systems(model):
    return [get_adapter(layer).reduction_system(layer) for layer in model]


def reduced_matrices(systems, orders):
    """Each layer's reduced ``A_r`` (torch, c128) as the event computes it: the floor's eig input."""
    stacked = DiagonalStateSpace(*(torch.stack([getattr(s, k) for s in systems])
                                   for k in ("eigenvalues", "B", "C", "D")), dt=True)
    return [res.system.A for res in balanced_truncation(stacked, order=list(orders), warn=False)]


def prepare_products(lams, Bs, Cs, orders):
    """Per layer, what :func:`products_step` starts from (computed once, outside the timer)."""
    prepared = []
    for lam, B, C, r in zip(lams, Bs, Cs, orders):
        P = (B @ B.conj().T) / (1 - lam[:, None] * lam.conj()[None, :])
        Q = (C.conj().T @ C) / (1 - lam.conj()[:, None] * lam[None, :])
        Lc, Lo = np.linalg.cholesky(P), np.linalg.cholesky(Q)
        U, s, Vh = np.linalg.svd(Lo.conj().T @ Lc)
        scale = s[:r] ** -0.5
        W, V = (Lo @ U[:, :r]) * scale, (Lc @ Vh[:r].conj().T) * scale
        X = torch.linalg.eig(torch.from_numpy(W.conj().T @ (lam[:, None] * V)))[1]
        prepared.append((lam, B, C, Lc, Lo, U[:, :r], Vh[:r].conj().T, scale, X))
    return prepared


def products_step(prepared):
    """The products an exact event adds to the floor, with the calls ours uses, per layer: the
    projections ``W = Lo U_r S^-1/2``, ``V = Lc V_r S^-1/2`` (``trmm``), ``A_r = W^H diag(lam) V``,
    ``B_r = W^H B``, ``C_r = C V`` (numpy), and the modal ``B_m = X^-1 B_r`` (LU) and ``C_m = C_r X``
    (torch)."""
    for lam, B, C, Lc, Lo, U_r, V_r, scale, X in prepared:
        W = blas.ztrmm(1.0, Lo.T, U_r, lower=0, trans_a=1) * scale
        V = blas.ztrmm(1.0, Lc.T, V_r, lower=0, trans_a=1) * scale
        Wh = W.conj().T
        Wh @ (lam[:, None] * V)
        B_r, C_r = torch.from_numpy(Wh @ B), torch.from_numpy(C @ V)
        lu, pivots = torch.linalg.lu_factor(X)
        torch.linalg.lu_solve(lu, pivots, B_r)
        C_r @ X


def floor_step(lams, Bs, Cs, reduced):
    """Closed-form Gramians + Cholesky and the SVD of Lo^H Lc (numpy/BLAS, c128), eig of A_r (torch), per layer.

    With the BLAS calls ours uses: ``herk`` forms only the lower triangle of ``B B^H``
    (what Cholesky reads), ``trmm`` multiplies by the triangular factor."""
    for lam, B, C, A_r in zip(lams, Bs, Cs, reduced):
        P = blas.zherk(1.0, B, lower=1) / (1 - lam[:, None] * lam.conj()[None, :])
        Q = blas.zherk(1.0, C, trans=2, lower=1) / (1 - lam.conj()[:, None] * lam[None, :])
        Lc, Lo = np.linalg.cholesky(P), np.linalg.cholesky(Q)
        np.linalg.svd(blas.ztrmm(1.0, Lc.T, Lo.conj().T, side=1, lower=0, trans_a=1), full_matrices=False)
        torch.linalg.eig(A_r)


def _interleaved(fns, repeats):
    """Median time of each function, run round-robin (order rotated each repeat)."""
    times = {name: [] for name in fns}
    names = list(fns)
    for k in range(repeats):
        for name in names[k % len(names):] + names[:k % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _status(field):
    """A ``kB`` field of /proc/self/status (Linux), in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(key, tau):
    """Peak memory of one event above the level before it (run in a fresh process, Linux).

    The kernel's peak-RSS mark is reset just before the event (``5`` written to
    /proc/self/clear_refs), so the mark after it is the event's own peak (plus the modules
    the first event imports lazily)."""
    _, layers, n, h = CONFIGS[key]
    model = _stack(layers, n, h, seed=0)
    if os.environ.get("BENCH_REDUCE_TRACEMALLOC"):      # its bookkeeping would inflate the RSS
        tracemalloc.start()
        reduce_(model, energy=tau)
        print(json.dumps({"numpy_peak": tracemalloc.get_traced_memory()[1]}))
        return
    before = _status("VmRSS")        # no warm-up: memory freed by it would be reused unseen
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    reduce_(model, energy=tau)
    print(json.dumps({"rss_peak": _status("VmHWM") - before, "factors": 2 * layers * n * n * 16}))


def _memory(key, tau):
    result = {}
    for trace in ("", "1"):
        env = dict(os.environ, BENCH_REDUCE_TRACEMALLOC=trace,
                   PYTHONPATH=os.pathsep.join([os.path.dirname(_HERE), os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", key, "--tau", str(tau)],
                             capture_output=True, text=True, env=env, check=True)
        result.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return result


def _mb(x):
    return "-" if x is None else f"{x / 2 ** 20:.0f} MB"


def profile_event(key, tau, top=30):
    """cProfile of one ``reduce_`` event (after a warm-up event on a copy), by own time."""
    import cProfile
    import pstats
    name, layers, n, h = CONFIGS[key]
    model = _stack(layers, n, h, seed=0)
    reduce_(copy.deepcopy(model), energy=tau)
    profiler = cProfile.Profile()
    profiler.enable()
    reduce_(model, energy=tau)
    profiler.disable()
    print(f"{name}: {layers} layer(s), n={n}, h={h}, tau={tau}; one event of ours")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--quick", action="store_true", help="(b) scaled down to 2 layers, n=128, h=128")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--out", help="also write the table as Markdown")
    parser.add_argument("--profile", choices=sorted(CONFIGS),
                        help="only profile one event of ours on that configuration (cProfile, by own time)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threadpool_limits(1)
    torch.set_num_threads(1)
    if args.memory_child:
        memory_child(args.memory_child, args.tau)
        return 0
    if args.profile:
        profile_event(args.profile, args.tau)
        return 0
    lines = [f"command: {' '.join(['python'] + sys.argv)}", f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
             f"torch {torch.__version__}, numpy {np.__version__}, torch threads {torch.get_num_threads()}, "
             f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"]
    for info in threadpool_info():
        lines.append(f"BLAS: {info.get('internal_api')} {info.get('version')} "
                     f"kernel={info.get('architecture')} num_threads={info.get('num_threads')}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            lines.append(f"WARNING: {var}={os.environ[var]} is set: scipy's LAPACK runs a slow kernel")
    keys = ["a", "b-quick" if args.quick else "b"]
    lines += ["", "| config | layers | n | h | sizes after (ours) | ours | floor | ours/floor | products "
              "| ours/(floor+products) | published c64 | published c64 sqrtm | published c128 | speed-up vs c64 "
              "| targets |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    memory_lines = ["", "| config | factors (2 L n^2 c128) | peak RSS above start | numpy peak (tracemalloc) |",
                    "|---|---|---|---|"]
    missed = 0
    for key in keys:
        name, layers, n, h = CONFIGS[key]
        model = _stack(layers, n, h, seed=0)
        copies = [copy.deepcopy(model) for _ in range(args.repeats)]     # copied outside the timer
        sizes = [e.new_n for e in reduce_(copy.deepcopy(model), energy=args.tau).layers]   # warm-up, orders
        systems = _systems(model)
        inputs = ([s.eigenvalues.numpy() for s in systems], [s.B.numpy() for s in systems],
                  [s.C.numpy() for s in systems])
        reduced = reduced_matrices(systems, sizes)
        prepared = prepare_products(*inputs, sizes)
        t = _interleaved({
            "ours": lambda: reduce_(copies.pop(), energy=args.tau),
            "floor": lambda: floor_step(*inputs, reduced),
            "products": lambda: products_step(prepared),
            "c64": lambda: naive_reduce_layers(*inputs, args.tau, method="chol", dtype=np.complex64),
            "sqrtm64": lambda: naive_reduce_layers(*inputs, args.tau, method="sqrtm", dtype=np.complex64),
            "c128": lambda: naive_reduce_layers(*inputs, args.tau, method="chol", dtype=np.complex128),
        }, args.repeats)
        speed = t["c64"] / t["ours"]
        ratio = t["ours"] / t["floor"]
        if layers == 1:
            checks = [("vs c64 >= 2.5x", speed >= 2.5)]
        else:
            checks = [("vs c64 >= 1.5x", speed >= 1.5), ("<= 1.3x floor", ratio <= 1.3)]
        missed += sum(not ok for _, ok in checks)
        verdict = "; ".join(f"{label}: {'met' if ok else 'MISSED'}" for label, ok in checks)
        lines.append(f"| {name} | {layers} | {n} | {h} | {','.join(map(str, sizes))} | {t['ours']:.3f} s "
                     f"| {t['floor']:.3f} s | {ratio:.2f} | {t['products']:.3f} s "
                     f"| {t['ours'] / (t['floor'] + t['products']):.2f} "
                     f"| {t['c64']:.3f} s | {t['sqrtm64']:.3f} s | {t['c128']:.3f} s "
                     f"| {speed:.2f}x "
                     f"| {verdict} |")
        print(lines[-1], flush=True)
        if not args.no_memory:
            mem = _memory(key, args.tau)
            memory_lines.append(f"| {name} | {_mb(mem['factors'])} | {_mb(mem['rss_peak'])} "
                                f"| {_mb(mem['numpy_peak'])} |")
            print(memory_lines[-1], flush=True)
    lines.append("")
    lines.append(f"tau = {args.tau}; medians of {args.repeats} interleaved repeats; published: the Cholesky "
                 "balancing (the published default; the speed-up and targets are against its complex64 time), "
                 "sqrtm: its alternative; the published step also ends with the re-diagonalisation (eig + explicit "
                 "inverse), as ours does; floor: Gramians + Cholesky + SVD (numpy) and eig of the actual reduced "
                 "A_r (torch); products: the projections W, V, A_r, B_r, C_r and the modal B_m, C_m (not in the "
                 f"floor, needed by any exact method too); load average at end {os.getloadavg()[0]:.1f}")
    if not args.no_memory:
        lines += memory_lines
        lines.append("")
        lines.append("peak RSS: the resident-set high-water mark during the event (reset just before it) above "
                     "the level before it, numpy and torch together; numpy peak: tracemalloc (numpy's "
                     "allocations only, not torch's)")
    return finish(lines, args.out, missed)


if __name__ == "__main__":
    sys.exit(main())
