"""Mamba d_state experiment (experimental, issue 10): ``python -m validation run --layer mamba``.

A small Mamba classifier (linear encoder -> ``mambapy`` Mamba with ``blocks`` layers of width
``h`` -> LayerNorm -> the last time step -> linear head; the causal scan integrates the
sequence into its last step, whereas a mean over time did not train in a few hundred
steps) on the preset's data set, per seed:

* ``full``: ``d_state = 16`` for all ``steps``;
* ``hankel`` / ``magnitude`` / ``random``: the *same* run as ``full`` up to the reduction
  step (``event_window[1] * steps``; the model and optimizer are copied there), then
  ``d_state`` 16 -> 8 with :func:`lti_reduce_torch.mamba.reduce_mamba_` (the LTI proxy's
  Hankel energy, the weight-magnitude baseline, or uniformly random indices; the
  optimizer is rebound) and training continues to ``steps``;
* ``small``: built at ``d_state = 8``, trained from scratch for ``steps`` (same seed).

Recorded per run: test and validation accuracy, and for the reductions the accuracy right
after the cut (before any further training) and the relative change of the logits on
the calibration batch (256 training sequences) and on 256 held-out validation sequences.
"""

import copy
import json
import math
import os
import statistics
import time

import torch
from torch import nn

from .data import load_dataset

__all__ = ["MambaClassifier", "run_mamba_experiment", "FULL_D_STATE", "SMALL_D_STATE", "MAMBA_METHODS"]

FULL_D_STATE = 16
SMALL_D_STATE = 8
MAMBA_METHODS = ("full", "hankel", "magnitude", "random", "small")
_CALIBRATION = 256


class MambaClassifier(nn.Module):
    """Linear encoder -> mambapy ``Mamba`` -> LayerNorm -> last time step -> linear head."""

    def __init__(self, d_input, n_classes, d_model, n_layers, d_state):
        super().__init__()
        from mambapy.mamba import Mamba, MambaConfig
        self.encoder = nn.Linear(d_input, d_model)
        self.mamba = Mamba(MambaConfig(d_model=d_model, n_layers=n_layers, d_state=d_state))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x):
        return self.head(self.norm(self.mamba(self.encoder(x)))[:, -1])


def _lr_factor(cfg, i):
    """Linear warm-up then cosine to 0 (``schedule='cosine'``), else constant."""
    if cfg.schedule != "cosine":
        return 1.0
    warm = int(cfg.warmup_frac * cfg.steps)
    if i < warm:
        return (i + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (i - warm) / max(1, cfg.steps - warm)))


def _accuracy(model, x, y, batch_size=512):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            correct += int((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
    model.train()
    return correct / len(y)


def _train(model, opt, sched, data, start, stop, generator):
    x, y = data
    for _ in range(start, stop):
        idx = torch.randint(0, len(y), (sched.batch_size,), generator=generator)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        sched.scheduler.step()


class _Schedule:
    def __init__(self, cfg, opt):
        self.batch_size = cfg.batch_size
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: _lr_factor(cfg, i))


def _fresh(cfg, data, d_state, seed):
    torch.manual_seed(seed)
    model = MambaClassifier(data.channels, data.n_classes, cfg.h, cfg.blocks, d_state)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return model, opt, _Schedule(cfg, opt)


def _one_seed(cfg, data, tensors, seed, cut, progress):
    from lti_reduce_torch.mamba import reduce_mamba_
    train_xy, (xv, yv), (xt, yt) = tensors
    records = []

    def record(method, model, seconds, **extra):
        rec = {"method": method, "seed": seed, "d_state": extra.pop("d_state"),
               "test_acc": _accuracy(model, xt, yt), "val_acc": _accuracy(model, xv, yv), "seconds": seconds,
               **extra}
        records.append(rec)
        if progress:
            print(f"[{method} seed {seed}] test acc {100 * rec['test_acc']:.2f}%  d_state {rec['d_state']}  "
                  f"{seconds:.1f}s", flush=True)

    t0 = time.perf_counter()
    model, opt, sched = _fresh(cfg, data, FULL_D_STATE, seed)
    gen = torch.Generator().manual_seed(10_000 + seed)
    _train(model, opt, sched, train_xy, 0, cut, gen)
    at_cut = (copy.deepcopy(model), copy.deepcopy(opt.state_dict()), sched.scheduler.state_dict(), gen.get_state())
    t_cut = time.perf_counter() - t0
    _train(model, opt, sched, train_xy, cut, cfg.steps, gen)
    record("full", model, time.perf_counter() - t0, d_state=FULL_D_STATE)

    cal = train_xy[0][:_CALIBRATION]
    held = xv[:_CALIBRATION]
    for select in ("hankel", "magnitude", "random"):
        t1 = time.perf_counter()
        model = copy.deepcopy(at_cut[0])
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        opt.load_state_dict(at_cut[1])
        sched = _Schedule(cfg, opt)
        sched.scheduler.load_state_dict(at_cut[2])
        gen = torch.Generator()
        gen.set_state(at_cut[3])
        model.eval()                                     # calibration in inference mode
        report = reduce_mamba_(model, cal, order=SMALL_D_STATE, held_out=held, select=select,
                               generator=torch.Generator().manual_seed(20_000 + seed), optimizers=opt)
        model.train()
        acc_cut = _accuracy(model, xt, yt)
        _train(model, opt, sched, train_xy, cut, cfg.steps, gen)
        record(select, model, t_cut + time.perf_counter() - t1, d_state=SMALL_D_STATE,
               test_acc_at_cut=acc_cut, calibration_change=report.calibration_change,
               held_out_change=report.held_out_change, kept=[list(b.kept) for b in report.blocks])

    t2 = time.perf_counter()
    model, opt, sched = _fresh(cfg, data, SMALL_D_STATE, seed)
    _train(model, opt, sched, train_xy, 0, cfg.steps, torch.Generator().manual_seed(10_000 + seed))
    record("small", model, time.perf_counter() - t2, d_state=SMALL_D_STATE)
    return records


def _summary(runs):
    rows = []
    for method in MAMBA_METHODS:
        rs = [r for r in runs if r["method"] == method]
        if not rs:
            continue

        def ms(key, scale=1.0):
            vals = [scale * r[key] for r in rs if r.get(key) is not None]
            if not vals:
                return "-"
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            if scale != 1.0:
                return f"{statistics.mean(vals):.2f} ± {sd:.2f}"
            return f"{statistics.mean(vals):.3g} ± {sd:.2g}"
        rows.append(f"| {method} | {rs[0]['d_state']} | {ms('test_acc', 100)} | {ms('test_acc_at_cut', 100)} | "
                    f"{ms('calibration_change')} | {ms('held_out_change')} | {len(rs)} |")
    head = ("| method | d_state | test acc % (mean ± sd) | test acc % right after the cut | "
            "rel. logit change, calibration | rel. logit change, held-out | seeds |\n"
            "|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows)


def _seed_job(args):
    cfg, seed, cut, progress = args
    torch.set_num_threads(1)
    data = load_dataset(cfg.dataset)
    as_t = torch.as_tensor
    tensors = ((as_t(data.x_train), as_t(data.y_train)), (as_t(data.x_val), as_t(data.y_val)),
               (as_t(data.x_test), as_t(data.y_test)))
    return _one_seed(cfg, data, tensors, seed, cut, progress)


def _write(results, out_dir, name):
    with open(os.path.join(out_dir, name), "w") as f:
        json.dump(results, f, indent=1, allow_nan=False)


def run_mamba_experiment(cfg, *, out_dir, device="cpu", progress=True, command="", jobs=1):
    """Run the experiment of the module docstring for ``cfg`` (a validation preset); write
    ``results.json`` and ``results.md`` into ``out_dir`` and return the results dict.

    ``jobs > 1`` runs seeds in that many worker processes (each with one torch thread);
    the results do not depend on it. Finished seeds are written to
    ``results.partial.json`` as they come in.
    """
    if device != "cpu":
        raise ValueError(f"the Mamba experiment runs on the CPU only (mambapy's pure-PyTorch scan), got {device!r}")
    data = load_dataset(cfg.dataset)
    cut = max(1, int(round(cfg.event_window[1] * cfg.steps)))
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    results = {"command": command, "dataset": data.summary(), "d_state": [FULL_D_STATE, SMALL_D_STATE],
               "cut_step": cut, "config": cfg.to_dict(), "runs": []}
    jobs_args = [(cfg, seed, cut, progress) for seed in cfg.seeds]
    if jobs > 1:
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(min(jobs, len(jobs_args))) as pool:
            for records in pool.imap_unordered(_seed_job, jobs_args):
                results["runs"].extend(records)
                _write(results, out_dir, "results.partial.json")
    else:
        for args in jobs_args:
            results["runs"].extend(_seed_job(args))
            _write(results, out_dir, "results.partial.json")
    results["runs"].sort(key=lambda r: (r["seed"], MAMBA_METHODS.index(r["method"])))
    results["seconds"] = time.perf_counter() - t0
    _write(results, out_dir, "results.json")
    os.remove(os.path.join(out_dir, "results.partial.json"))
    table = _summary(results["runs"])
    kept = "\n".join(f"- {method}: " + "; ".join(f"seed {r['seed']}: {r['kept']}" for r in results["runs"]
                                                 if r["method"] == method)
                     for method in ("hankel", "magnitude", "random"))
    text = (f"# Mamba d_state {FULL_D_STATE} -> {SMALL_D_STATE} ({data.summary()})\n\n"
            f"Command: `{command}`\n\n{table}\n\nReduction at step {cut} of {cfg.steps}; "
            f"wall-clock {results['seconds']:.0f} s.\n\nKept state indices (per block, of 0..15):\n\n{kept}\n")
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    print(text)
    return results
