"""Accuracy at equal final size: in-training compression with ``output='complex'`` vs ``'real'``.

The validation ``demo`` preset (sequential digits, 1 block of the default layer, n = 64,
h = 32, 1000 steps, 4 events in the first 10% of training), once per seed with a
``Compressor(mode='fixed', fraction=F)`` for each output. Fixed cuts ask both for the
same sizes (64 -> 48 -> 36 -> 27 -> 20 for F = 0.25); the sizes actually reached are
reported (the real-output reduction may keep fewer: LRU skips real orders with a real
positive eigenvalue). Same data order, same initialisation, same events per seed.

Run (from the repository root)::

    nice python3 benchmarks/val_real_output.py --seeds 0 1 2 3 4 --out benchmarks/results_val_real_output.md
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))          # the checkout's packages, not an installed copy

import torch  # noqa: E402

from _report import finish  # noqa: E402
import lti_reduce_torch  # noqa: E402
from lti_reduce_torch import Compressor  # noqa: E402
from validation.data import load_dataset  # noqa: E402
from validation.methods import RunSettings, build_model, train  # noqa: E402
from validation.presets import get_preset  # noqa: E402


class _Log:
    """In-memory Compressor log: the layers' reasons of every event."""

    def __init__(self):
        self.records = []

    def write(self, line):
        self.records.append(json.loads(line))


def run(rs, seed, output, fraction):
    """Train once; returns the record and how many layer reductions took the complex
    reduction under output='real' (see lti_reduce_torch's output='real' notes)."""
    cfg = rs.cfg
    model = build_model(rs, [cfg.n] * cfg.blocks, seed)
    log = _Log()

    def factory(m, opt):
        return Compressor(m, [opt], mode="fixed", fraction=fraction, events=list(rs.events), output=output,
                          log=log)

    rec, _ = train(rs, model, seed=seed, label=f"{output} s{seed}", compressor_factory=factory)
    reductions = [x for r in log.records if r.get("event") == "reduce" for x in r["layers"]
                  if x["status"] == "reduced"]
    fallback = sum("complex reduction is better" in x["reason"] for x in reductions)
    return rec, f"{fallback}/{len(reductions)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--layer", choices=["LRU", "S5", "S4D"], default=None,
                        help="SSM layer class (default: the validation default)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = get_preset(args.preset)
    if args.steps:
        cfg = cfg.replace(steps=args.steps)
    layer_cls = None if args.layer is None else getattr(lti_reduce_torch, args.layer)
    rs = RunSettings(cfg, load_dataset(cfg.dataset), progress=False, layer_cls=layer_cls)
    lines = ["# Accuracy at equal final size: output='complex' vs 'real'", "",
             f"command: `{' '.join(['python3', 'benchmarks/val_real_output.py'] + (argv or sys.argv[1:]))}`",
             f"layer {args.layer or 'default'}; preset {cfg.name}: {cfg.dataset}, {cfg.blocks} block(s), n={cfg.n}, h={cfg.h}, {cfg.steps} steps, "
             f"events {rs.events}, Compressor(mode='fixed', fraction={args.fraction})", "",
             "| seed | complex: test acc % | complex: final sizes | real: test acc % | real: final sizes | "
             "real: reductions that took the complex one | s |",
             "|---|---|---|---|---|---|---|"]
    acc = {"complex": [], "real": []}
    for seed in args.seeds:
        start = time.perf_counter()
        runs = {output: run(rs, seed, output, args.fraction) for output in ("complex", "real")}
        recs = {output: rec for output, (rec, _) in runs.items()}
        for output in acc:
            acc[output].append(100 * recs[output]["test_acc"])
        lines.append(f"| {seed} | {acc['complex'][-1]:.2f} | {recs['complex']['final_sizes']} | "
                     f"{acc['real'][-1]:.2f} | {recs['real']['final_sizes']} | {runs['real'][1]} | "
                     f"{time.perf_counter() - start:.0f} |")
        print(lines[-1], flush=True)

    def stat(values):
        if len(values) < 2:
            return f"{values[0]:.2f}"
        return f"{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}"

    diffs = [r - c for r, c in zip(acc["real"], acc["complex"])]
    lines += ["", f"mean +- sample std over {len(args.seeds)} seeds: complex {stat(acc['complex'])}, "
                  f"real {stat(acc['real'])}; paired difference real - complex {stat(diffs)} points"]
    return finish(lines, args.out, missed=False)


if __name__ == "__main__":
    sys.exit(main())
