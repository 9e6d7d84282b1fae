"""Pareto view of paired studies: accuracy against final state size and against CPU time.

One row per CompreSSM *variant* — the energy tolerance ``tau``, the Gramians' ``horizon``,
the event window and the reduction ``output`` read from each study folder's configuration —
with the models born at that variant's final sizes (``small``, same seeds) beside it, and
the paired difference CompreSSM - small with its 95 % intervals (:mod:`validation.stats`).
Folders of the same variant (a study split over processes) are merged; curve folders add
the born-small curve (accuracy of models built at n and never reduced).

Time is the process CPU time of a whole run (training, the reduction events, evaluation),
``time.cpu_s`` of each record: the runs are single-threaded, so on an idle core it equals
the wall-clock time, and unlike wall-clock it is not inflated by other jobs on a shared
machine.
"""

import numpy as np

from .stats import paired_difference, pair_by_seed
from .study import read_study

__all__ = ["variant_key", "variant_label", "collect", "pareto_table", "pareto_figure"]


def variant_key(config):
    """``(tau, horizon, event_window, output)`` of a paired-study configuration."""
    return (float(config["taus"][0]), config.get("horizon"), tuple(float(x) for x in config["event_window"]),
            config.get("output", "complex"))


def variant_label(key):
    """Short text of a variant: ``tau=0.05``, plus what differs from the defaults."""
    tau, horizon, window, output = key
    parts = [f"tau={tau:g}"]
    if horizon is not None:
        parts.append(f"horizon={horizon}")
    if window != (0.0, 0.1):
        parts.append(f"events in {100 * window[0]:g}-{100 * window[1]:g} %")
    if output != "complex":
        parts.append(f"output={output}")
    return ", ".join(parts)


def collect(folders):
    """``(variants, born, dataset)``: paired-study records grouped by variant key
    (``{key: [record, ...]}``, diverged runs left out) and born-curve records."""
    variants, born, dataset = {}, [], None
    for folder in folders:
        r = read_study(folder)
        dataset = dataset or r.get("dataset")
        ok = [x for x in r["runs"] if not x.get("failed")]
        if r.get("kind") == "curve":
            born += [x for x in ok if x["method"] == "born"]
        else:
            variants.setdefault(variant_key(r["config"]), []).extend(ok)
    for key, runs in variants.items():      # a seed run twice (resumed studies) counts once
        seen, unique = set(), []
        for x in runs:
            if (x["method"], x["seed"]) not in seen:
                seen.add((x["method"], x["seed"]))
                unique.append(x)
        variants[key] = unique
    return variants, born, dataset


def _mean_size(runs):
    return float(np.mean([np.mean(x["final_sizes"]) for x in runs]))


def _cpu(runs):
    return float(np.mean([x["time"]["cpu_s"] for x in runs]))


def pareto_rows(folders):
    """One dict per variant (sorted by mean final size): sizes, accuracies, CPU, paired difference."""
    return _rows(collect(folders)[0])


def _rows(variants):
    rows = []
    for key, runs in variants.items():
        seeds, acc_c, acc_s = pair_by_seed(runs, "compressm", "small")
        if len(seeds) < 2:
            continue
        comp = [x for x in runs if x["method"] == "compressm" and x["seed"] in seeds]
        small = [x for x in runs if x["method"] == "small" and x["seed"] in seeds]
        rows.append({"key": key, "label": variant_label(key), "pairs": len(seeds), "size": _mean_size(comp),
                     "size_min": min(min(x["final_sizes"]) for x in comp),
                     "size_max": max(max(x["final_sizes"]) for x in comp),
                     "acc_compressm": 100 * float(np.mean(acc_c)), "acc_small": 100 * float(np.mean(acc_s)),
                     "sd_compressm": 100 * float(np.std(acc_c, ddof=1)), "sd_small": 100 * float(np.std(acc_s, ddof=1)),
                     "cpu_compressm": _cpu(comp), "cpu_small": _cpu(small),
                     "reduction_s": float(np.mean([x["time"]["reduction_s"] for x in comp])),
                     "diff": paired_difference(100 * acc_c, 100 * acc_s)})
    shown = {r["key"] for r in rows}
    for r in rows:
        r["vs_default"] = _against_default(r["key"], variants, shown)
    return sorted(rows, key=lambda r: (-r["size"], r["label"]))


def _against_default(key, variants, shown):
    """The variant's CompreSSM runs against CompreSSM at the default settings of the same tau
    (a variant with a row of its own, in ``shown``), paired by seed: accuracy difference and
    mean size change (None without >= 2 such pairs)."""
    default = (key[0], None, (0.0, 0.1), "complex")
    if key == default or default not in shown:
        return None
    ours, base = ({x["seed"]: x for x in variants[k] if x["method"] == "compressm"} for k in (key, default))
    seeds = sorted(set(ours) & set(base))
    if len(seeds) < 2:
        return None
    acc = [100 * np.array([runs[s]["test_acc"] for s in seeds]) for runs in (ours, base)]
    size_change = np.mean([np.mean(ours[s]["final_sizes"]) - np.mean(base[s]["final_sizes"]) for s in seeds])
    return {"diff": paired_difference(*acc), "size_change": float(size_change)}


def pareto_table(folders):
    """Markdown: the born-small curve (if curve folders are given), then one row per variant."""
    variants, born, dataset = collect(folders)
    rows = _rows(variants)
    out = [dataset or "", ""]
    if born:
        out += ["| born n | seeds | test acc % mean ± sd | CPU s / run |", "|---|---|---|---|"]
        for n in sorted({x["born_n"] for x in born}):
            acc = 100 * np.array([x["test_acc"] for x in born if x["born_n"] == n])
            sd = f"{acc.std(ddof=1):.2f}" if acc.size > 1 else "-"
            out.append(f"| {n} | {acc.size} | {acc.mean():.2f} ± {sd} | {_cpu([x for x in born if x['born_n'] == n]):.0f} |")
        out.append("")
    out += ["| CompreSSM variant | pairs | final n per layer: mean (range) | CompreSSM acc % | small acc % | "
            "CompreSSM - small (points) [95% t CI] [bootstrap] | verdict | CPU s / run: CompreSSM (reductions) | small | "
            "variant - default CompreSSM, same seeds: points [95% t CI]; size change |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = r["diff"]
        verdict = ("resolved: CompreSSM better" if d.resolved and d.mean > 0 else
                   "resolved: small better" if d.resolved else "not resolved")
        out.append(f"| {r['label']} | {r['pairs']} | {r['size']:.1f} ({r['size_min']}-{r['size_max']}) | "
                   f"{r['acc_compressm']:.2f} ± {r['sd_compressm']:.2f} | {r['acc_small']:.2f} ± {r['sd_small']:.2f} | "
                   f"{d.mean:+.2f} [{d.t_low:+.2f}, {d.t_high:+.2f}] [{d.boot_low:+.2f}, {d.boot_high:+.2f}] | {verdict} | "
                   f"{r['cpu_compressm']:.1f} ({r['reduction_s']:.2f}) | {r['cpu_small']:.1f} | {_vs_default(r)} |")
    return "\n".join(out)


def _vs_default(row):
    v = row.get("vs_default")
    if not v:
        return "-"
    d = v["diff"]
    return f"{d.mean:+.2f} [{d.t_low:+.2f}, {d.t_high:+.2f}]; {v['size_change']:+.1f} states"


def pareto_figure(folders, path, title=""):
    """Two panels: test accuracy against mean final state size per layer, and against CPU
    seconds per run; CompreSSM variants (filled), born at their sizes (open), born-small
    curve (line, if curve folders are given). Error bars: one standard deviation over seeds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    variants, born, dataset = collect(folders)
    rows = _rows(variants)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, xkey_c, xkey_s, xlabel in ((axes[0], "size", "size", "final state size per layer (mean over seeds)"),
                                       (axes[1], "cpu_compressm", "cpu_small", "CPU seconds per run (reductions included)")):
        if born:
            ns = sorted({x["born_n"] for x in born})
            acc = [100 * np.mean([x["test_acc"] for x in born if x["born_n"] == n]) for n in ns]
            sd = [100 * np.std([x["test_acc"] for x in born if x["born_n"] == n]) for n in ns]
            xs = ns if xkey_c == "size" else [_cpu([x for x in born if x["born_n"] == n]) for n in ns]
            ax.errorbar(xs, acc, yerr=sd, color="0.5", marker=".", capsize=2, label="born at n (curve)")
        for i, r in enumerate(rows):
            color = f"C{i % 10}"
            ax.errorbar(r[xkey_c], r["acc_compressm"], yerr=r["sd_compressm"], color=color, marker="o", capsize=2,
                        label=f"CompreSSM {r['label']}")
            ax.errorbar(r[xkey_s], r["acc_small"], yerr=r["sd_small"], color=color, marker="o", mfc="white",
                        capsize=2, linestyle="none")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy %")
        ax.grid(alpha=0.3)
    axes[0].set_xscale("log", base=2)
    axes[0].legend(fontsize=7, loc="lower right")
    axes[1].set_title("open markers: born at CompreSSM's final sizes", fontsize=9)
    fig.suptitle(title or (dataset or ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
