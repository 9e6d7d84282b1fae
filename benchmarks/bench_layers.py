"""Training-step time of the built-in SSM layers against state size n (does compression pay off?).

For every layer (LRU, S5, S4D, DenseLTI), width h and evaluation mode, times one training
step (forward + backward + Adam step) on random data at state sizes n = 256, 64, 32, and
prints the median over repeats with the 256 -> 32 speed-up. Also times the two halves of
the FFT path (kernel formation vs convolution). The ``auto`` column marks the mode
``mode='auto'`` resolves to.

Usage::

    python benchmarks/bench_layers.py                 # full run (~2-4 min on 2 cores)
    python benchmarks/bench_layers.py --quick         # smaller run (~20 s)
    python benchmarks/bench_layers.py --out benchmarks/results_layers.txt --threads 1
"""

import argparse
import io
import os
import platform
import statistics
import sys
import time

import torch


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter sequences, fewer repeats")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    ap.add_argument("--length", type=int, default=None, help="sequence length (default 784; 256 with --quick)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default=None, help="also write the report to this file")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def environment(threads):
    lines = [f"python {platform.python_version()}, torch {torch.__version__}, "
             f"torch threads {torch.get_num_threads()} (requested {threads}), "
             f"interop threads {torch.get_num_interop_threads()}, machine {platform.machine()}, "
             f"{platform.processor() or 'cpu'}"]
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            lines.append("  threadpool: " + ", ".join(f"{k}={info.get(k)}" for k in
                                                      ("user_api", "internal_api", "num_threads", "prefix",
                                                       "version", "architecture") if info.get(k) is not None))
    except ImportError:
        lines.append("  threadpoolctl not installed: no BLAS thread info")
    if hasattr(os, "getloadavg"):
        lines.append(f"  cpus {os.cpu_count()}, load average at start {os.getloadavg()[0]:.1f} "
                     f"(other processes share the cores when it exceeds the thread count)")
    mkl = torch.backends.mkl.is_available()
    lines.append(f"  torch BLAS: {'MKL' if mkl else 'not MKL'}; CPU capability "
                 f"{torch.backends.cpu.get_cpu_capability()}")
    return lines


def step_time(layer, u, reps):
    """(median, min) seconds of forward + backward + Adam step (after one warm-up step)."""
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = layer(u).square().mean()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def skip_reason(name, mode, h, n, batch, length):
    if mode == "fft" and h >= 128 and name in ("LRU", "S5", "DenseLTI"):
        return "kernel L n h^2 + h x h product per frequency: > 10 s/step"
    if name == "S4D" and mode != "fft" and batch * length * h * n > 4_000_000:
        return "materialises batch*L*h*n states"
    return None


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from lti_reduce_torch.layers import LRU, S5, S4D, DenseLTI
    from lti_reduce_torch.layers import _scan
    try:  # after the imports, so that every BLAS loaded by numpy/scipy is limited too
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass

    L = args.length or (256 if args.quick else 784)
    batch = args.batch
    ns = (256, 64, 32)
    widths = (8, 256)
    layers = {"LRU": LRU, "S5": S5, "S4D": S4D, "DenseLTI": DenseLTI}
    out = io.StringIO()

    def emit(line=""):
        print(line, flush=True)
        out.write(line + "\n")

    emit("# bench_layers: training step (forward + backward + Adam) of one layer, float32, CPU")
    emit(f"# length L={L}, batch={batch}, median of repeats (7 at h=8, 3 at h=256; quick: 3 / 1), "
         f"times in ms")
    for line in environment(args.threads):
        emit("# " + line)
    emit("# cells: median (min) over the repeats; the machine may be shared, min is the less noisy")
    emit(f"{'layer':9s} {'h':>4s} {'mode':11s} " + " ".join(f"{'n=' + str(n):>15s}" for n in ns)
         + f" {'256->32':>8s}  auto picks")
    t_start = time.perf_counter()
    results = {}                                   # (name, h, mode, n) -> (median, min)
    for h in widths:
        reps = (3 if args.quick else 7) if h <= 8 else (1 if args.quick else 3)
        u = torch.randn(batch, L, h)
        for name, cls in layers.items():
            modes = [m for m in cls.modes if m != "auto"]
            for mode in modes:
                cells = []
                for n in ns:
                    if skip_reason(name, mode, h, n, batch, L):
                        cells.append(f"{'skip':>15s}")
                        continue
                    torch.manual_seed(args.seed)
                    med, lo = step_time(cls(h, n, mode=mode), u, reps)
                    results[name, h, mode, n] = (med, lo)
                    cells.append(f"{1e3 * med:7.1f} ({1e3 * lo:5.1f})")
                t256, t32 = results.get((name, h, mode, 256)), results.get((name, h, mode, 32))
                speed = f"{t256[0] / t32[0]:7.1f}x" if t256 and t32 else f"{'-':>8s}"
                picks = [n for n in ns if _auto(cls, h, n, L, batch) == mode]
                mark = ("n=" + ",".join(str(n) for n in picks)) if picks else ""
                emit(f"{name:9s} {h:4d} {mode:11s} " + " ".join(cells) + f" {speed}  {mark}")
                if mode == modes[-1]:
                    reasons = {skip_reason(name, m, h, n, batch, L) for m in modes for n in ns} - {None}
                    for r in sorted(reasons):
                        emit(f"{'':9s} {'':4s} (skip: {r})")
    emit()
    emit("# default (auto) mode per configuration, median ms, and the fastest measured mode (by median)")
    emit("# where it differs:")
    emit(f"{'layer':9s} {'h':>4s} " + " ".join(f"{'n=' + str(n):>30s}" for n in ns) + f" {'auto 256->32':>13s}")
    for h in widths:
        for name, cls in layers.items():
            cells, auto_t = [], {}
            for n in ns:
                mode = _auto(cls, h, n, L, batch)
                t = results.get((name, h, mode, n))
                auto_t[n] = t[0] if t else None
                measured = {m: v[0] for (nm, hh, m, nn), v in results.items() if (nm, hh, nn) == (name, h, n)}
                tag = f"{mode} " + (f"{1e3 * t[0]:.0f}" if t else "?")
                if measured:
                    fastest = min(measured, key=measured.get)
                    if fastest != mode:
                        tag += f" (best {fastest} {1e3 * measured[fastest]:.0f})"
                cells.append(f"{tag:>30s}")
            sp = (f"{auto_t[256] / auto_t[32]:12.1f}x" if auto_t.get(256) and auto_t.get(32) else f"{'-':>13s}")
            emit(f"{name:9s} {h:4d} " + " ".join(cells) + " " + sp)
    emit()
    emit("# FFT path split (forward only, ms): forming the kernel, LRU K_j = Re(C diag(lambda^j) B) in")
    emit("# O(L n h^2), S4D K_cj = Re(sum_i C_ci B_ci lambda_ci^j) in O(L n h), vs the causal convolution")
    emit("# by rfft of length ~2L, O(batch h^2 L log L) (MIMO) / O(batch h L log L) (S4D), independent of n")
    for name, h, n in (("LRU", 8, 256), ("LRU", 8, 32), ("LRU", 256, 256), ("LRU", 256, 32),
                       ("S4D", 256, 256), ("S4D", 256, 32)):
        reps = 3 if h <= 8 or name == "S4D" else 1
        layer = layers[name](h, n, mode="fft")
        u = torch.randn(batch, L, h)
        with torch.no_grad():
            log_lam, B, C = layer.discrete()
            tk, tc = [], []
            for _ in range(reps + 1):
                t0 = time.perf_counter()
                if name == "S4D":
                    K = _scan.channel_diag_kernel(log_lam, C * B, L)
                else:
                    K = _scan.mimo_diag_kernel(log_lam, B, C, L)
                t1 = time.perf_counter()
                _scan.causal_conv_fft(u, K, channelwise=name == "S4D")
                t2 = time.perf_counter()
                tk.append(t1 - t0)
                tc.append(t2 - t1)
        emit(f"  {name:4s} h={h:4d} n={n:4d}: kernel {1e3 * statistics.median(tk[1:]):8.1f}   "
             f"convolution {1e3 * statistics.median(tc[1:]):8.1f}")
    emit()
    load = f", load average at end {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    emit(f"# total benchmark wall time {time.perf_counter() - t_start:.0f} s{load}")
    if args.out:
        with open(args.out, "w") as f:
            f.write(out.getvalue())


def _auto(cls, h, n, L, batch):
    from lti_reduce_torch.layers import auto_method
    kind = {"LRU": "mimo", "S5": "mimo", "S4D": "channel", "DenseLTI": "dense"}[cls.__name__]
    return auto_method(kind, h, n, L, batch, torch.device("cpu"))


if __name__ == "__main__":
    sys.exit(main())
