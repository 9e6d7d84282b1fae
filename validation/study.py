"""Powered studies: born-small curves and seed-paired comparisons at equal state size.

Commands (run from the checkout; each writes ``results.json`` into ``--out`` after every run,
so a stopped study keeps what it measured)::

    python -m validation.study curve  --preset lagcorr --ns 2 4 8 16 32 --seeds 0 1 2 --out runs/x
    python -m validation.study paired --preset lagcorr --seeds 0 1 2 3 4 --out runs/y
    python -m validation.study summary runs/y runs/y2     # merge folders, print the tables

``curve`` trains the preset's architecture born at state size n (every layer) for each n and
seed. ``paired`` runs, per seed: CompreSSM (the preset's first tau), the model born at
CompreSSM's final per-layer sizes (``small``), and the two modal ablations *forced to
CompreSSM's size trajectory* (``random-eq``, ``smallest-eq``: at each step where CompreSSM
changed a layer, the ablation cuts that layer to the same size with its own selection, so
every method of a seed ends at identical sizes and the selection rule is the only
difference). ``summary`` pairs the records by seed and reports mean paired differences with
95 % t and bootstrap intervals (:mod:`validation.stats`) and the seeds a pilot says are needed
to resolve half a point.
"""

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np
import torch

from lti_reduce import choose_order
from lti_reduce_torch import reduce_

from .data import load_dataset
from .methods import RunSettings, build_model, train, run_compressm, run_small
from .models import ssm_layers
from .cli import _positive_int
from .errors import ValidationError
from .presets import get_preset, validate
from .runner import environment
from .stats import paired_difference, pair_by_seed, seeds_needed, wilcoxon_p

__all__ = ["SizeReplay", "run_born", "run_forced", "run_curve", "run_paired", "read_study", "summarize", "main"]

#: comparisons of the paired study: (A, B, claim)
COMPARISONS = (
    ("compressm", "small", "CompreSSM beats the model born at its final sizes"),
    ("compressm", "random-eq", "balanced selection beats random modal states (equal sizes)"),
    ("compressm", "smallest-eq", "balanced selection beats smallest-energy modal states (equal sizes)"),
)


class SizeReplay:
    """Cut each SSM layer to prescribed sizes at prescribed steps, with a given selection.

    Parameters
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
        Rebound in place at each cut.
    schedule : sequence of (int, sequence of int)
        ``[(step, per-layer sizes after that step), ...]`` (CompreSSM's ``sizes_over_steps``
        without its initial entry).
    select : {'balanced', 'smallest', 'random'}
    seed : int
        Seed of the generator used by ``select='random'``.
    """

    def __init__(self, model, optimizer, schedule, select, seed):
        self.model, self.optimizer, self.select = model, optimizer, select
        self.schedule = {int(s): list(sizes) for s, sizes in schedule}
        self.generator = torch.Generator().manual_seed(int(seed))

    def step(self, step):
        target = self.schedule.get(int(step))
        if target is None:
            return None
        layers = ssm_layers(self.model)
        if len(target) != len(layers):
            raise ValueError(f"schedule gives {len(target)} sizes at step {step} for {len(layers)} layers")
        order = {}
        for (name, layer), r in zip(layers, target):
            n = layer_size(layer)
            if r > n:
                raise ValueError(f"schedule asks layer {name} to grow from {n} to {r} at step {step}")
            if r < n:
                order[name] = int(r)
        if not order:
            return None
        return reduce_(self.model, order=order, optimizers=[self.optimizer], select=self.select,
                       generator=self.generator)


def layer_size(layer):
    """State size of one SSM layer (through :func:`lti_reduce_torch.state_sizes`)."""
    from lti_reduce_torch import state_sizes
    sizes = state_sizes(layer)
    return int(next(iter(sizes.values())))


def run_born(rs, seed, n):
    """The architecture born at state size ``n`` in every layer (never reduced)."""
    model = build_model(rs, [int(n)] * rs.cfg.blocks, seed)
    rec, _ = train(rs, model, seed=seed, label=f"born n={n} s{seed}")
    rec.update({"method": "born", "tau": None, "born_n": int(n)})
    return rec


def run_forced(rs, seed, tau, select, sizes_over_steps):
    """A modal ablation (``select``) forced to CompreSSM's size trajectory of the same seed."""
    cfg = rs.cfg
    schedule = [(s, sizes) for s, sizes in sizes_over_steps[1:]]
    model = build_model(rs, [cfg.n] * cfg.blocks, seed)
    rec, _ = train(rs, model, seed=seed, label=f"{select}-eq s{seed}",
                   compressor_factory=lambda m, opt: SizeReplay(m, opt, schedule, select, seed))
    rec.update({"method": f"{select}-eq", "tau": tau, "select": select})
    return rec


def _slim(rec):
    """Drop the bulky analysis fields (Weyl rows, intermediate spectra) before writing; keep
    the first and last HSV spectra (``hsv_first`` / ``hsv_final``: per layer, descending)."""
    out = {k: v for k, v in rec.items() if k not in ("checkpoints", "weyl")}
    cps = rec.get("checkpoints") or []
    if cps:
        out["hsv_first"], out["hsv_final"] = cps[0]["hsv"], cps[-1]["hsv"]
    return out


class _Writer:
    def __init__(self, out, cfg, data, command, kind):
        os.makedirs(out, exist_ok=True)
        self.path = os.path.join(out, "results.json")
        self.results = {"kind": kind, "command": command, "config": cfg.to_dict(), "dataset": data.summary(),
                        "data_info": {k: v for k, v in data.info.items() if k != "permutation"},
                        "environment": environment("cpu"), "runs": []}
        self.t0 = time.perf_counter()

    def add(self, rec, echo=True):
        self.results["runs"].append(_slim(rec))
        if rec.get("failed"):
            self._write()
            print(f"[{rec['method']} s{rec['seed']}] FAILED: {rec['failed']}", flush=True)
            return
        self._write()
        if echo:
            print(f"[{rec['method']} s{rec['seed']}] test {100 * rec['test_acc']:.2f}% n={rec['final_sizes']} "
                  f"cpu {rec['time']['cpu_s']:.0f}s", flush=True)

    def _write(self):
        self.results["wall_clock_s"] = time.perf_counter() - self.t0
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.results, f)
        os.replace(tmp, self.path)


def _guarded(method, seed, tau, fn, *args):
    """``fn(*args)``, or a record of the failure when training diverges (non-finite loss):
    the study keeps going and the summaries count failed runs apart."""
    try:
        return fn(*args)
    except FloatingPointError as exc:
        return {"method": method, "seed": int(seed), "tau": tau, "failed": str(exc), "test_acc": None,
                "final_sizes": None, "sizes_over_steps": None}


def _settings(cfg, progress=False):
    data = load_dataset(cfg.dataset)
    return RunSettings(cfg, data, progress=progress), data


def run_curve(cfg, ns, out, command=""):
    """Born-small curve: every ``n`` in ``ns`` for every seed of ``cfg`` (runs already in
    ``out/results.json`` are kept, not rerun)."""
    rs, data = _settings(cfg)
    w = _Writer(out, cfg, data, command, "curve")
    done = set()
    if os.path.exists(w.path):      # resume: keep the finished runs
        with open(w.path) as f:
            for rec in json.load(f)["runs"]:
                done.add((rec["born_n"], rec["seed"]))
                w.results["runs"].append(rec)
    for seed in cfg.seeds:
        for n in ns:
            if (int(n), seed) not in done:
                rec = _guarded("born", seed, None, lambda: run_born(rs, seed, n))
                rec["born_n"] = int(n)
                w.add(rec)
    return w.results


def run_paired(cfg, out, command="", methods=("compressm", "small", "random-eq", "smallest-eq"), sizes_from=()):
    """CompreSSM, born-small at its sizes and the equal-size ablations, per seed of ``cfg``.

    Order: CompreSSM and ``small`` for every seed first (the central comparison), then the
    ablations for every seed, so a study stopped early has the most seeds where they matter
    most. Runs already in ``out/results.json`` (same method and seed) are kept, not rerun.
    ``sizes_from``: other study folders whose CompreSSM records (same seed) supply the size
    trajectories, so ablations can run in a separate process (their CompreSSM is not rerun).
    """
    rs, data = _settings(cfg)
    w = _Writer(out, cfg, data, command, "paired")
    done = {}
    if os.path.exists(w.path):
        with open(w.path) as f:
            for rec in json.load(f)["runs"]:
                done[rec["method"], rec["seed"]] = rec
                w.results["runs"].append(rec)

    def refs():
        return {r["seed"]: r for r in (_load(sizes_from)[0] if sizes_from else []) if r["method"] == "compressm"}

    tau = float(cfg.taus[0])
    if "compressm" in methods:
        for seed in cfg.seeds:
            if ("compressm", seed) not in done:
                rec = _guarded("compressm", seed, tau, lambda: run_compressm(rs, seed, tau)[0])
                w.add(rec)
                done["compressm", seed] = rec
            if done["compressm", seed].get("failed"):
                continue
            if "small" in methods and ("small", seed) not in done:
                w.add(_guarded("small", seed, tau,
                               lambda: run_small(rs, seed, tau, done["compressm", seed]["final_sizes"])[0]))
    for seed in cfg.seeds:
        ref = done.get(("compressm", seed)) or refs().get(seed)   # re-read: another process may add it
        if ref is None or ref.get("failed"):
            print(f"seed {seed}: no CompreSSM run to take sizes from, skipped", flush=True)
            continue
        for select in ("random", "smallest"):
            if f"{select}-eq" in methods and (f"{select}-eq", seed) not in done:
                forced = _guarded(f"{select}-eq", seed, tau,
                                  lambda: run_forced(rs, seed, tau, select, ref["sizes_over_steps"]))
                if not forced.get("failed") and forced["final_sizes"] != ref["final_sizes"]:
                    raise RuntimeError(f"forced {select} ended at {forced['final_sizes']}, "
                                       f"CompreSSM at {ref['final_sizes']}")
                w.add(forced)
    return w.results


# ----------------------------------------------------------------------------- summaries
def read_study(folder):
    """The parsed ``results.json`` of a study folder (or the path of that file itself).

    Raises
    ------
    FileNotFoundError
        ``folder`` holds no ``results.json`` (named in the message).
    """
    path = folder if folder.endswith(".json") else os.path.join(folder, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{folder!r} is not a study folder: {path} does not exist "
                                f"(give the folders written by `python -m validation.study paired|curve --out`)")
    with open(path) as f:
        return json.load(f)


def _load(folders, failed=False):
    """Records of the folders' ``results.json`` (those of diverged runs only with ``failed``)."""
    runs, meta = [], []
    for folder in folders:
        r = read_study(folder)
        runs += [x for x in r["runs"] if failed or not x.get("failed")]
        meta.append(r)
    return runs, meta


def curve_table(runs):
    """Markdown table: accuracy of born models by n (mean, sd, min, max over seeds)."""
    rows = ["| n per layer | seeds | test acc % mean ± sd | min | max | CPU s / run |", "|---|---|---|---|---|---|"]
    by_n = {}
    for r in runs:
        if r["method"] == "born":
            by_n.setdefault(r["born_n"], []).append(r)
    for n in sorted(by_n):
        acc = 100 * np.array([r["test_acc"] for r in by_n[n]])
        cpu = np.mean([r["time"]["cpu_s"] for r in by_n[n]])
        sd = f"{acc.std(ddof=1):.2f}" if acc.size > 1 else "-"
        rows.append(f"| {n} | {acc.size} | {acc.mean():.2f} ± {sd} | {acc.min():.2f} | {acc.max():.2f} | {cpu:.0f} |")
    return "\n".join(rows)


def paired_table(runs, effect=0.005, pilot=5):
    """Markdown tables: per-method accuracy, then the paired comparisons with 95 % CIs.

    ``effect``: the difference (accuracy fraction) the power estimate aims to resolve;
    ``pilot``: number of first seeds whose paired sd feeds :func:`seeds_needed`.
    """
    methods = [m for m in ("compressm", "small", "random-eq", "smallest-eq") if any(r["method"] == m for r in runs)]
    out = ["| method | seeds | final n per layer (mean) | test acc % mean ± sd | CPU s / run |", "|---|---|---|---|---|"]
    for m in methods:
        rr = [r for r in runs if r["method"] == m]
        acc = 100 * np.array([r["test_acc"] for r in rr])
        sizes = np.mean([r["final_sizes"] for r in rr], axis=0)
        out.append(f"| {m} | {len(rr)} | {', '.join(f'{s:.1f}' for s in sizes)} | {acc.mean():.2f} ± "
                   f"{acc.std(ddof=1) if acc.size > 1 else float('nan'):.2f} | "
                   f"{np.mean([r['time']['cpu_s'] for r in rr]):.0f} |")
    out += ["", "| comparison (A - B, points) | pairs | mean | median | A wins / ties / B wins | 95% CI (t) | "
                "95% CI (bootstrap) | p (paired t) | p (Wilcoxon) | "
                f"seeds for {100 * effect:g} pt (pilot of {pilot}) | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for a, b, _ in COMPARISONS:
        seeds, xa, xb = pair_by_seed(runs, a, b)
        if len(seeds) < 2:
            continue
        d = paired_difference(100 * xa, 100 * xb)
        k = min(pilot, len(seeds))
        need = seeds_needed(float(np.std(100 * (xa[:k] - xb[:k]), ddof=1)), 100 * effect) if k >= 2 else None
        verdict = ("resolved: A better" if d.resolved and d.mean > 0 else
                   "resolved: B better" if d.resolved else "not resolved")
        diff = 100 * (xa - xb)
        wins = f"{int(np.sum(diff > 0))} / {int(np.sum(diff == 0))} / {int(np.sum(diff < 0))}"
        out.append(f"| {a} - {b} | {d.n} | {d.mean:+.2f} | {np.median(diff):+.2f} | {wins} | "
                   f"[{d.t_low:+.2f}, {d.t_high:+.2f}] | [{d.boot_low:+.2f}, {d.boot_high:+.2f}] | {d.p_value:.3g} | "
                   f"{wilcoxon_p(xa, xb):.3g} | {need} | {verdict} |")
    return "\n".join(out)


def bound_table(runs, total=False):
    """Markdown table: per reduction event, the measured layer-output gain of the change against
    the bound ``2 * sum of discarded HSVs`` (the ``Probe`` of :mod:`validation.methods`), one row
    per method, and with ``total`` one more over all of them."""
    rows = {}
    for r in runs:
        for ev in r.get("events", []):
            for lay in ev["layers"]:
                m, b = lay.get("measured_gain"), lay.get("error_bound")
                if m and b and lay.get("old_n") != lay.get("new_n"):
                    rows.setdefault(r["method"], []).append(b / m)
    out = ["| method | layer events | bound / measured: median | min | max |", "|---|---|---|---|---|"]
    if total and len(rows) > 1:     # one row over every method's events
        rows["all"] = [x for v in list(rows.values()) for x in v]
    for m, v in rows.items():
        v = np.array(v)
        out.append(f"| {m} | {v.size} | {np.median(v):.1f} | {v.min():.1f} | {v.max():.1f} |")
    return "\n".join(out)


def energy_rank(hsv, tau):
    """Smallest r with ``sum_{i<=r} s_i >= (1 - tau) * sum_i s_i`` (the core's
    :func:`lti_reduce.choose_order`, CompreSSM's rule applied once)."""
    return int(choose_order(np.sort(np.asarray(hsv, dtype=np.float64))[::-1], energy=float(tau)).order)


def hsv_rank_table(runs, taus=(0.01, 0.02, 0.05, 0.1)):
    """Markdown table: per born size n, the state count the energy rule keeps of the trained
    layer's final HSVs (first layer), mean over seeds."""
    by_n = {}
    for r in runs:
        if r["method"] == "born" and r.get("hsv_final"):
            by_n.setdefault(r["born_n"], []).append(r["hsv_final"][0])
    if not by_n:
        return ""
    out = ["| born n | seeds | " + " | ".join(f"kept at tau={t:g}" for t in taus) +
           " | largest gap s_(i+1)/s_i after i = (per seed, ratio) |", "|---|---|" + "---|" * (len(taus) + 1)]
    for n in sorted(by_n):
        ks = [np.mean([energy_rank(h, t) for h in by_n[n]]) for t in taus]
        gaps = []
        for h in by_n[n]:
            h = np.sort(np.asarray(h, dtype=np.float64))[::-1]
            if h.size > 2:
                ratio = h[2:] / h[1:-1]          # the first HSV is skipped: it stands apart in most layers
                i = int(np.argmin(ratio))
                gaps.append(f"{i + 2} ({ratio[i]:.2f})")
        out.append(f"| {n} | {len(by_n[n])} | " + " | ".join(f"{k:.1f}" for k in ks) + f" | {', '.join(gaps) or '-'} |")
    return "\n".join(out)


def summarize(folders, effect=0.005, pilot=5):
    """Merged Markdown summary of one or more study folders."""
    runs, meta = _load(folders)
    text = [f"Commands: {'; '.join('`' + m['command'] + '`' for m in meta)}", "", meta[0]["dataset"], ""]
    failed = [x for x in _load(folders, failed=True)[0] if x.get("failed")]
    if failed:
        text += ["Diverged runs (left out of every table; their seed's pairs are missing): " +
                 "; ".join(f"{x['method']} seed {x['seed']} ({x['failed']})" for x in failed), ""]
    if any(r["method"] == "born" for r in runs):
        text += [curve_table(runs), "", hsv_rank_table(runs), ""]
    if any(r["method"] == "compressm" for r in runs):
        text += [paired_table(runs, effect, pilot), "", bound_table(runs), ""]
    return "\n".join(text)


def failure_table(folders, below=0.95):
    """Markdown: per method, the unique runs (a born-small run is identified by its seed and
    sizes, since several studies may train the same one) and how many ended below ``below``
    test accuracy; Fisher's exact test of CompreSSM against ``small`` on those counts."""
    from scipy.stats import fisher_exact
    runs, _ = _load(folders)
    unique = {}
    for r in runs:
        key = (r["method"], r["seed"], tuple(r["final_sizes"]))
        if r["method"] == "compressm":      # CompreSSM variants differ in settings: all count
            key += (len(unique),)
        unique.setdefault(key, r["test_acc"])
    rows = ["| method | unique runs | final n per layer: range | below "
            f"{100 * below:g} % | lowest accuracy % |", "|---|---|---|---|---|"]
    counts = {}
    for m in ("compressm", "small", "random-eq", "smallest-eq"):
        acc = [(k, a) for k, a in unique.items() if k[0] == m]
        if not acc:
            continue
        low = sum(a < below for _, a in acc)
        counts[m] = (low, len(acc) - low)
        sizes = [s for k, _ in acc for s in k[2]]
        rows.append(f"| {m} | {len(acc)} | {min(sizes)}-{max(sizes)} | {low} | {100 * min(a for _, a in acc):.2f} |")
    if "compressm" in counts and "small" in counts:
        p = fisher_exact([counts["compressm"], counts["small"]]).pvalue
        rows += ["", f"Fisher's exact test, CompreSSM vs small (runs below {100 * below:g} %): p = {p:.3g} "
                 "(runs of one seed share data order and initialisation, so they are not independent)"]
    return "\n".join(rows)


def parse_comparison(text):
    """``'LABEL=FOLDER[,FOLDER...]:A-B'`` -> ``(label, [folders], a, b)`` (the label may hold '=')."""
    head, sep, pair = text.rpartition(":")
    label, eq, folders = head.rpartition("=")
    a, dash, b = pair.partition("-")
    if not (sep and eq and dash and label and folders and a and b):
        raise ValueError(f"comparison {text!r} is not of the form LABEL=FOLDER[,FOLDER...]:A-B")
    return label, folders.split(","), a, b


def family_table(comparisons):
    """Markdown: each comparison's mean paired difference, t interval, p and Holm-adjusted p
    over the whole family (:func:`validation.stats.holm_adjusted`)."""
    from .stats import holm_adjusted
    rows = []
    for text in comparisons:
        label, folders, a, b = parse_comparison(text)
        runs, _ = _load(folders)
        seeds, xa, xb = pair_by_seed(runs, a, b)
        if len(seeds) < 2:
            raise ValueError(f"comparison {label!r}: fewer than 2 seeds have both {a!r} and {b!r}")
        rows.append((label, a, b, paired_difference(100 * xa, 100 * xb)))
    adjusted = holm_adjusted([d.p_value for *_, d in rows])
    out = ["| comparison | A - B | pairs | mean (points) | 95% CI (t) | p (paired t) | p (Holm, family of "
           f"{len(rows)}) | survives at 5 % |", "|---|---|---|---|---|---|---|---|"]
    for (label, a, b, d), p_adj in zip(rows, adjusted):
        out.append(f"| {label} | {a} - {b} | {d.n} | {d.mean:+.2f} | [{d.t_low:+.2f}, {d.t_high:+.2f}] | "
                   f"{d.p_value:.3g} | {p_adj:.3g} | {'yes' if p_adj <= 0.05 else 'no'} |")
    return "\n".join(out)


# ----------------------------------------------------------------------------- command line
def _horizon(text):
    if text == "L":
        return "L"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--horizon must be a positive step count or L, got {text!r}") from None


def _accuracy(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"--below must be an accuracy fraction in (0, 1], got {text!r}")
    return value


def build_parser():
    p = argparse.ArgumentParser(prog="python -m validation.study", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("curve", "paired"):
        s = sub.add_parser(name)
        s.add_argument("--preset", required=True)
        s.add_argument("--seeds", type=int, nargs="+")
        s.add_argument("--steps", type=int)
        s.add_argument("--tau", type=float)
        s.add_argument("--out", required=True)
        s.add_argument("--threads", type=int, default=1)
        if name == "paired":
            s.add_argument("--methods", nargs="+", default=["compressm", "small", "random-eq", "smallest-eq"])
            s.add_argument("--sizes-from", nargs="+", default=[],
                           help="study folders whose CompreSSM runs (same seeds) give the size trajectories")
            s.add_argument("--window", type=float, nargs=2, metavar=("START", "STOP"),
                           help="event window as fractions of the steps (default: the preset's, 0 0.1)")
            s.add_argument("--horizon", type=_horizon,
                           help="CompreSSM's Gramian horizon: a step count or L (the sequence length); default infinite")
            s.add_argument("--output", choices=("complex", "real"), help="CompreSSM's reduction output (default complex)")
        if name == "curve":
            s.add_argument("--ns", type=int, nargs="+", required=True)
    s = sub.add_parser("pareto", help="accuracy against final size and against CPU time, one row per "
                                      "CompreSSM variant (tau, horizon, event window, output), with its born-small pair")
    s.add_argument("folders", nargs="+", help="paired-study folders (and curve folders for the born-small curve)")
    s.add_argument("--figure", help="write the two Pareto panels to this image file")
    s.add_argument("--title", default="")
    s = sub.add_parser("family", help="a family of paired comparisons with Holm-adjusted p-values")
    s.add_argument("comparisons", nargs="+", metavar="LABEL=FOLDER[,FOLDER...]:A-B",
                   help="e.g. 'lagcorr tau=0.1=runs/a,runs/b:compressm-small'")
    s = sub.add_parser("failures", help="how often each method ends below an accuracy threshold (unique runs)")
    s.add_argument("folders", nargs="+")
    s.add_argument("--below", type=_accuracy, default=0.95, help="accuracy threshold, a fraction in (0, 1] (default 0.95)")
    s = sub.add_parser("bounds", help="measured / bound over every reduction event of the folders")
    s.add_argument("folders", nargs="+")
    s = sub.add_parser("summary")
    s.add_argument("folders", nargs="+")
    s.add_argument("--effect", type=float, default=0.005, help="accuracy difference to resolve (fraction)")
    s.add_argument("--pilot", type=int, default=5)
    return p


def _table(args):
    """The text a table command prints (``pareto`` also writes its figure)."""
    if args.command == "summary":
        return summarize(args.folders, args.effect, args.pilot)
    if args.command == "bounds":
        return bound_table(_load(args.folders)[0], total=True)
    if args.command == "failures":
        return failure_table(args.folders, args.below)
    if args.command == "family":
        return family_table(args.comparisons)
    from .pareto import pareto_table, pareto_figure
    text = pareto_table(args.folders)
    if args.figure:
        pareto_figure(args.folders, args.figure, title=args.title)
        text += f"\nfigure: {args.figure}"
    return text


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("summary", "bounds", "failures", "family", "pareto"):
        try:
            print(_table(args))
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    torch.set_num_threads(args.threads)
    over = {}
    if args.seeds:
        over["seeds"] = tuple(args.seeds)
    if args.steps:
        over["steps"] = args.steps
    if args.tau:
        over["taus"] = (args.tau,)
    if getattr(args, "window", None):
        over["event_window"] = tuple(args.window)
    if getattr(args, "horizon", None) is not None:
        over["horizon"] = args.horizon
    if getattr(args, "output", None):
        over["output"] = args.output
    try:
        cfg = validate(get_preset(args.preset).replace(**over))
    except ValidationError as exc:      # a bad option value: one line and exit 2, as the runner's CLI
        parser.error(str(exc))
    command = "python -m validation.study " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.command == "curve":
        run_curve(cfg, args.ns, args.out, command)
    else:
        run_paired(cfg, args.out, command, methods=tuple(args.methods), sizes_from=args.sizes_from)
    print(summarize([args.out]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
