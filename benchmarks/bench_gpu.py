"""Reduction event and training steps of LRU, S5 and S4D on a CUDA device and on the CPU, in one run.

For each layer type and working precision (float32 parameters / complex64 arithmetic,
float64 / complex128), a stack of layers is built at n = 256 and timed:

* the reduction event ``reduce_(model, order=32)`` (Gramian factors, SVD, truncation,
  re-diagonalisation, guards, swap), on the parameters' device;
* the host reads of one event (:class:`~lti_reduce_torch.diagnostics.HostReadCounter`,
  counted in a separate untimed event): each is a synchronisation on a GPU;
* one training step (forward + backward + Adam) before (n = 256) and after (n = 32) the
  event, and the speed-up of the step.

When CUDA is available (and ``--device`` is not ``cpu``) every row is measured on the GPU
and on the CPU in the same run (``torch.cuda.synchronize`` around each timed call). With
``--device cpu`` only the CPU rows are measured: that is the smoke test run in CI
(``--quick``: small shapes, seconds).

Run::

    python benchmarks/bench_gpu.py                      # CUDA if present, and the CPU
    python benchmarks/bench_gpu.py --device cpu --quick  # smoke test
"""

import argparse
import os
import statistics
import sys
import time

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]     # this checkout's packages, not an installed copy
from _report import finish  # noqa: E402

from lti_reduce_torch import reduce_  # noqa: E402
from lti_reduce_torch.diagnostics import HostReadCounter  # noqa: E402
from lti_reduce_torch.layers import LRU, S4D, S5  # noqa: E402

LAYERS = {"LRU": LRU, "S5": S5, "S4D": S4D}
DTYPES = {"complex64": torch.float32, "complex128": torch.float64}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeats):
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _model(cls, layers, h, n, device, dtype, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(*(cls(h, n, device=device, dtype=dtype) for _ in range(layers))).to(device)


def _step_fn(model, u):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        model(u).square().mean().backward()
        optimizer.step()
    return step


def measure(cls, device, dtype, args):
    """(event seconds, host reads of one event, step seconds at n and at r) for one layer type on one device."""
    u = torch.randn(args.batch, args.length, args.h, device=device, dtype=dtype)
    fresh = [_model(cls, args.layers, args.h, args.n, device, dtype, seed=k) for k in range(args.repeats + 1)]
    reduce_(fresh.pop(), order=args.r)                     # warm-up (kernels, caches)
    event = _timed(lambda: reduce_(fresh.pop(), order=args.r), device, args.repeats)
    with HostReadCounter() as counter:                     # untimed: the mode slows every call
        reduce_(_model(cls, args.layers, args.h, args.n, device, dtype, seed=0), order=args.r)
    big = _model(cls, args.layers, args.h, args.n, device, dtype, seed=0)
    step_big = _step_fn(big, u)
    step_big()
    t_big = _timed(step_big, device, args.repeats)
    reduce_(big, order=args.r)
    step_small = _step_fn(big, u)
    step_small()
    t_small = _timed(step_small, device, args.repeats)
    return event, counter.total, t_big, t_small


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="'cuda' (default when available) or 'cpu' (CPU only)")
    parser.add_argument("--quick", action="store_true", help="small shapes for a smoke test (seconds)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", help="also write the table as Markdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.h, args.n, args.r, args.length, args.batch = 1, 4, 16, 4, 32, 2
        args.repeats = args.repeats or 1
    else:
        args.layers, args.h, args.n, args.r, args.length, args.batch = 2, 32, 256, 32, 1024, 8
        args.repeats = args.repeats or 5
    requested = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if requested not in ("cpu", "cuda"):
        parser.error(f"--device must be 'cpu' or 'cuda', got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    devices = [torch.device("cuda"), torch.device("cpu")] if requested == "cuda" else [torch.device("cpu")]
    torch.set_num_threads(1)
    lines = [f"command: {' '.join(['python'] + sys.argv)}", f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
             f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, devices: "
             + ", ".join(torch.cuda.get_device_name(d) if d.type == "cuda" else "cpu" for d in devices),
             f"{args.layers} layer(s), h={args.h}, n={args.n} -> {args.r}, L={args.length}, batch={args.batch}, "
             f"medians of {args.repeats}, load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
             "",
             "| layer | arithmetic | device | event | host reads / event | step n=%d | step n=%d | step speed-up |"
             % (args.n, args.r), "|---|---|---|---|---|---|---|---|"]
    rows = {}
    for name, cls in LAYERS.items():
        for arithmetic, dtype in DTYPES.items():
            for device in devices:
                event, reads, t_big, t_small = measure(cls, device, dtype, args)
                rows[name, arithmetic, device.type] = event
                lines.append(f"| {name} | {arithmetic} | {device.type} | {event * 1e3:.1f} ms | {reads} | {t_big * 1e3:.1f} ms "
                             f"| {t_small * 1e3:.1f} ms | {t_big / t_small:.2f}x |")
                print(lines[-1], flush=True)
    if len(devices) == 2:
        lines += ["", "| layer | arithmetic | event GPU / CPU |", "|---|---|---|"]
        for name in LAYERS:
            for arithmetic in DTYPES:
                lines.append(f"| {name} | {arithmetic} | {rows[name, arithmetic, 'cuda'] / rows[name, arithmetic, 'cpu']:.2f} |")
    lines += ["", f"load average at end {os.getloadavg()[0]:.1f}"]
    return finish(lines, args.out, 0)


if __name__ == "__main__":
    sys.exit(main())
