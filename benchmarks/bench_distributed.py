"""CompreSSM under DDP: event overhead on 2 ranks vs 1, and step time after the last event.

Two figures, each a ratio of peers measured in the same run (CPU, gloo, loopback):

* **event**: wall time of one reduction event (``DistributedCompressor.step`` at an event
  step: agreement, reduction, vote with hashes, DDP re-wrap) on 2 ranks, vs the same
  event by ``Compressor.step`` in one process without torch.distributed.
* **step after the last event**: one DDP training step (forward, backward with gradient
  all-reduce, Adam) on 2 ranks of the compressed model, vs the same on a model built at
  the final size directly; the two are timed alternately in the same loop.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_distributed.py
"""

import argparse
import os
import socket
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
sys.path.insert(1, os.path.dirname(_HERE))
from _report import finish  # noqa: E402

from lti_reduce_torch import LRU, S5, Compressor, state_sizes  # noqa: E402
from lti_reduce_torch.distributed import DistributedCompressor  # noqa: E402


class Net(nn.Module):
    def __init__(self, h, n, depth, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Linear(1, h)
        self.ssms = nn.ModuleList((LRU if i % 2 == 0 else S5)(h, n) for i in range(depth))
        self.head = nn.Linear(h, 1)

    def forward(self, u):
        x = self.encoder(u)
        for ssm in self.ssms:
            x = x + ssm(x)
        return self.head(x.mean(1)).squeeze(-1)


def _step(model, opt, u, y):
    loss = nn.functional.mse_loss(model(u), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def _data(args, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(args.batch, args.length, 1, generator=g)
    return u, u[..., 0].cumsum(1).mean(1)


def _event_once(args, distributed, rank):
    model = Net(args.h, args.n, args.depth)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    if distributed:
        dc = DistributedCompressor(model, opt, mode="fixed", fraction=args.fraction, events=[1], timeout=120)
        wrapped = dc.model
    else:
        dc = Compressor(model, opt, mode="fixed", fraction=args.fraction, events=[1])
        wrapped = model
    _step(wrapped, opt, *_data(args, rank))
    if distributed:
        dist.barrier()
    t0 = time.perf_counter()
    report = dc.step(1)
    seconds = time.perf_counter() - t0
    assert report is not None and report.changed
    return seconds, report.seconds


def _worker(rank, port, args, queue):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    events = [_event_once(args, True, rank) for _ in range(args.repeats)]
    # compressed (several events) vs built at the final size, both wrapped by DDP
    model = Net(args.h, args.n, args.depth)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = list(range(1, args.events + 1))
    dc = DistributedCompressor(model, opt, mode="fixed", fraction=args.fraction, events=steps, timeout=120)
    for step in steps:
        _step(dc.model, opt, *_data(args, rank))
        dc.step(step)
    final = state_sizes(model)
    r = next(iter(final.values()))
    built = Net(args.h, r, args.depth, seed=1)
    built_opt = torch.optim.Adam(built.parameters(), lr=1e-3)
    built_ddp = nn.parallel.DistributedDataParallel(built)
    u, y = _data(args, rank)
    for _ in range(2):   # warm-up
        _step(dc.model, opt, u, y)
        _step(built_ddp, built_opt, u, y)
    compressed_t, built_t = [], []
    for _ in range(args.step_repeats):
        dist.barrier()
        t0 = time.perf_counter()
        _step(dc.model, opt, u, y)
        compressed_t.append(time.perf_counter() - t0)
        dist.barrier()
        t0 = time.perf_counter()
        _step(built_ddp, built_opt, u, y)
        built_t.append(time.perf_counter() - t0)
    queue.put((rank, {"events": events, "final": final, "compressed": compressed_t, "built": built_t,
                      "built_sizes": state_sizes(built)}))
    dist.destroy_process_group()


def _blas():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS kernel unknown"]
    return [f"threadpool: {i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
            f"threads={i.get('num_threads')}" for i in threadpool_info()]


def _fmt(seconds):
    return f"{seconds * 1e3:.1f} ms"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--h", type=int, default=32)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--step-repeats", type=int, default=31)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    single = [_event_once(args, False, 0) for _ in range(args.repeats)]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(rank, port, args, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=1800) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    # a rank's event ends when its last collective does: the slower rank is the event's time
    two = [max(a, b, key=lambda t: t[0]) for a, b in zip(results[0]["events"], results[1]["events"])]
    comp = [max(a, b) for a, b in zip(results[0]["compressed"], results[1]["compressed"])]
    built = [max(a, b) for a, b in zip(results[0]["built"], results[1]["built"])]
    rows = []
    for label, pick in (("event total", lambda t: t[0]), ("of which reduce_ (compute)", lambda t: t[1]),
                        ("rest: agreement, hashes, vote, DDP re-wrap", lambda t: t[0] - t[1])):
        a, b = statistics.median(map(pick, single)), statistics.median(map(pick, two))
        rows.append(f"| {label} | {_fmt(a)} | {_fmt(b)} | {b / a:.2f} |")
    s_c, s_b = statistics.median(comp), statistics.median(built)
    lines = [f"command: {' '.join(['python'] + sys.argv)}", f"date: {time.strftime('%Y-%m-%d %H:%M:%S')}",
             f"torch {torch.__version__}, threads 1 per process, gloo on 127.0.0.1, cpus {os.cpu_count()}, "
             f"load average at start {load0:.1f}", *_blas(),
             f"model: {args.depth} layers (LRU/S5 alternating), h={args.h}, n={args.n}; batch {args.batch} x "
             f"length {args.length} per rank; fixed fraction {args.fraction} per event",
             "", f"one event (every layer n={args.n} -> {args.n - int(args.fraction * args.n + 0.5)}), median of "
             f"{args.repeats}; 2 ranks: the slower rank's time", "",
             "| event | 1 process (Compressor) | 2 ranks (DistributedCompressor) | ratio 2/1 |", "|---|---|---|---|",
             *rows,
             "", f"| step after the last event ({args.events} events, sizes {results[0]['final']}) | compressed | "
             "built at that size | ratio |", "|---|---|---|---|",
             f"| DDP step on 2 ranks, median of {args.step_repeats} | {_fmt(s_c)} | {_fmt(s_b)} | {s_c / s_b:.2f} |",
             f"| DDP step on 2 ranks, min of {args.step_repeats} | {_fmt(min(comp))} | {_fmt(min(built))} | "
             f"{min(comp) / min(built):.2f} |",
             "", f"# total wall time {time.perf_counter() - t_start:.0f} s, load average at end "
             f"{os.getloadavg()[0]:.1f} (2 ranks share the cores with other processes when it exceeds 2)"]
    assert results[0]["final"] == results[1]["final"]
    return finish(lines, args.out, missed=False)


if __name__ == "__main__":
    sys.exit(main())
