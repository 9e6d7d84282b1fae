"""Training-step time of a compressed layer vs the same layer built at that size directly.

Target (issue 3): within 10%. One training step = forward + backward + Adam step, float32,
CPU, sequence length 784, the layer's default (``mode='auto'``) evaluation. Both layers are
timed alternately in the same loop so that load on a shared machine affects both alike.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_compressed_step.py
"""

import argparse
import os
import statistics
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import finish  # noqa: E402

from lti_reduce_torch import LRU, S4D, S5, reduce_  # noqa: E402


def _stepper(layer, u):
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad()
        layer(u).square().mean().backward()
        optimizer.step()
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--length", type=int, default=784)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lines = [f"command: {' '.join(['python'] + sys.argv)}", f"date: {time.strftime('%Y-%m-%d %H:%M:%S')}",
             f"torch {torch.__version__}, threads {torch.get_num_threads()}, L={args.length}, batch={args.batch}",
             "", "| layer | h | n: 256 -> r | compressed (ms) | built at r (ms) | ratio | within 10% |",
             "|---|---|---|---|---|---|---|"]
    missed = 0
    for cls in (LRU, S5, S4D):
        for h, r in ((8, 32), (256, 32)):
            if cls is S4D and h == 256:
                continue
            torch.manual_seed(0)
            big = cls(h, 256)
            reduce_(big, order=r)
            small = cls(h, r)
            u = torch.randn(args.batch, args.length, h)
            steps = {"compressed": _stepper(big, u), "direct": _stepper(small, u)}
            for fn in steps.values():
                fn()                                                    # warm-up
            times = {name: [] for name in steps}
            for _ in range(args.repeats):
                for name, fn in steps.items():
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
            a, b = (statistics.median(times[k]) * 1e3 for k in ("compressed", "direct"))
            met = a <= 1.10 * b
            missed += not met
            lines.append(f"| {cls.__name__} | {h} | {r} | {a:.1f} | {b:.1f} | {a / b:.2f} | {'yes' if met else 'NO'} |")
            print(lines[-1], flush=True)
    return finish(lines, args.out, missed)


if __name__ == "__main__":
    sys.exit(main())
