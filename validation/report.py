"""Results table (printed, Markdown, JSON) and figures (matplotlib, Agg, PNG).

Accuracy is reported over ALL seeds (mean and sample standard deviation, none for one
seed); the mean of the best 3 seeds (the paper's statistic) is printed beside it, labelled
``best-3``, when there are more than 3 seeds. The terminal gets a compact table
(:func:`format_compact_table`); ``results.md`` holds every column.
"""

import json
import math
import os

import numpy as np

from .analysis import format_size, group_key, group_label, sort_key

__all__ = ["summarize", "format_table", "format_compact_table", "write_report", "write_json", "make_figures", "load_results"]


def _mean_std(v):
    """Mean and sample standard deviation; the std is None for one seed (not 0: it is unknown)."""
    v = np.asarray(v, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def _acc(r):
    return f"{r['acc_mean']:.2f}" + (f" ± {r['acc_std']:.2f}" if r["acc_std"] is not None else " (1 seed)")


def summarize(records):
    """One row per (method, tau): accuracy over all seeds, best-3, sizes, times, memory."""
    groups = {}
    for rec in records:
        groups.setdefault(group_key(rec), []).append(rec)
    full_total = {r["seed"]: r["time"]["total_s"] for r in records if r["method"] == "full"}
    full_step = {r["seed"]: r["step_time"]["median_s"] for r in records if r["method"] == "full"}
    rows = []
    for key in sorted(groups, key=sort_key):
        recs = sorted(groups[key], key=lambda r: r["seed"])
        acc = [100.0 * r["test_acc"] for r in recs]
        m, s = _mean_std(acc)
        # with 3 seeds or fewer the best 3 are all of them: best-3 would repeat the mean
        best3 = float(np.mean(sorted(acc, reverse=True)[:3])) if len(acc) > 3 else None
        sizes = np.array([r["final_sizes"] for r in recs], dtype=float)        # (seeds, layers)
        totals = [r["time"].get("total_with_teacher_s", r["time"]["total_s"]) for r in recs]
        ratio = [t / full_total[r["seed"]] for t, r in zip(totals, recs) if r["seed"] in full_total]
        step_after = [r["step_time"]["after_last_event_s"] for r in recs]
        cpu_after = [r["step_time"].get("after_last_event_cpu_s") or np.nan for r in recs]
        step_ratio = [r["step_time"]["after_last_event_s"] / full_step[r["seed"]] for r in recs if r["seed"] in full_step]
        mem = [r["memory"].get("cuda_peak_mb") or r["memory"].get("activation_mb") for r in recs]
        rows.append({
            "method": key[0], "tau": key[1], "label": group_label(*key), "seeds": [r["seed"] for r in recs],
            "acc_mean": m, "acc_std": s, "acc_best3": best3, "acc_all": acc,
            "n_per_layer": sizes.mean(axis=0).tolist(), "n_mean": float(sizes.mean()),
            "n_params": float(np.mean([r["n_params"] for r in recs])),
            "total_s": float(np.mean(totals)), "total_ratio": float(np.mean(ratio)) if ratio else None,
            "train_s": float(np.mean([r["time"]["train_s"] for r in recs])),
            "cpu_s": float(np.mean([r["time"].get("cpu_s", np.nan) + r["time"].get("teacher_cpu_s", 0.0) for r in recs])),
            "peak_rss_mb": float(np.mean([r["memory"].get("peak_rss_mb") or np.nan for r in recs])),
            "reduction_s": float(np.mean([r["time"]["reduction_s"] for r in recs])),
            "eval_s": float(np.mean([r["time"]["eval_s"] for r in recs])),
            "teacher_s": float(np.mean([r["time"].get("teacher_s", 0.0) for r in recs])),
            "step_ms_after": 1e3 * float(np.mean(step_after)),
            "step_cpu_ms_after": 1e3 * float(np.mean(cpu_after)),
            "step_ratio_after": float(np.mean(step_ratio)) if step_ratio else None,
            "mem_mb": float(np.mean([x for x in mem if x is not None])) if any(x is not None for x in mem) else None,
        })
    return rows


def _fmt(x, spec=".1f", none="-"):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, spec)


def format_table(rows, markdown=True):
    """The results table as Markdown (or aligned plain text when ``markdown=False``)."""
    head = ["method", "final n per layer", "test acc % (all seeds: mean ± std)", "best-3 mean (paper's statistic)",
            "seeds", "wall-clock s (train+red.+eval)", "x full", "CPU s", "step ms after last event (wall / CPU)", "x full (wall)",
            "activation MB / step"]
    body = []
    for r in rows:
        n = ", ".join(format_size(v) for v in r["n_per_layer"])
        wall = f"{r['total_s']:.1f} ({r['train_s']:.1f}+{r['reduction_s']:.2f}+{r['eval_s']:.2f}"
        wall += f"; teacher {r['teacher_s']:.1f})" if r["teacher_s"] else ")"
        body.append([r["label"], n, _acc(r),
                     f"best-3: {_fmt(r['acc_best3'], '.2f')}", str(len(r["seeds"])), wall,
                     _fmt(r["total_ratio"], ".2f"), _fmt(r["cpu_s"], ".1f"),
                     f"{_fmt(r['step_ms_after'], '.2f')} / {_fmt(r['step_cpu_ms_after'], '.2f')}",
                     _fmt(r["step_ratio_after"], ".2f"), _fmt(r["mem_mb"], ".2f")])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(b) + " |" for b in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])


def format_compact_table(rows):
    """The few columns worth a terminal (about 100 characters); ``results.md`` has them all."""
    head = ["method", "final n", "test acc %", "seeds", "wall s", "x full"]
    body = [[r["label"], ", ".join(format_size(v) for v in r["n_per_layer"]), _acc(r), str(len(r["seeds"])),
             f"{r['total_s']:.1f}", _fmt(r["total_ratio"], ".2f")] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])


def _md_table(rows, cols):
    if not rows:
        return "_none_\n"
    lines = ["| " + " | ".join(c for c, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f(r) for _, f in cols) + " |")
    return "\n".join(lines) + "\n"


def _analysis_md(an):
    out = []
    costs = an.get("costs", [])
    out.append("## Cost relative to the full model (same seed, mean over seeds)\n")
    out.append(_md_table(costs, [
        ("method", lambda r: r["label"]), ("runs", lambda r: str(r["runs"])),
        ("total time / full", lambda r: f"{r['total_ratio']:.2f}"),
        ("training time / full", lambda r: f"{r['train_ratio']:.2f}"),
        ("median step / full", lambda r: f"{r['step_ratio_median']:.2f}"),
        ("step after last event / full", lambda r: f"{r['step_ratio_after']:.2f}"),
        ("CPU time / full", lambda r: f"{r['cpu_ratio']:.2f}"),
        ("CPU step after last event / full", lambda r: f"{r['cpu_step_ratio_after']:.2f}"),
        ("share of time in reductions", lambda r: f"{100 * r['reduction_share']:.2f} %")]))
    seg = an.get("step_segments", [])
    out.append("\n## Step time before and after each event (median per stretch of constant size, mean over seeds)\n\n")
    out.append(_md_table(seg, [
        ("method", lambda r: r["label"]), ("stretch", lambda r: str(r["index"])),
        ("steps", lambda r: f"{r['from_step']}-{r['to_step']}"), ("state sizes (mean)", lambda r: r["sizes"]),
        ("step ms (wall)", lambda r: f"{1e3 * r['median_s']:.2f}"),
        ("step ms (CPU)", lambda r: f"{1e3 * r['cpu_median_s']:.2f}"),
        ("x first stretch (CPU)", lambda r: f"{r['ratio']:.2f}")]))
    rs = an.get("ranking_stability", {}).get("table", [])
    out.append("\n## HSV-ranking stability (full runs: checkpoint vs end of training)\n")
    out.append("Top-r overlap of the modal-energy ranking (r = CompreSSM's final size for that seed, layer and tau; "
               "chance = r/n), Kendall's tau of the whole ranking, and the order the tau rule picks on the "
               "checkpoint's HSVs vs on the final HSVs.\n\n")
    out.append(_md_table(rs, [
        ("tau", lambda r: f"{r['tau']:g}"), ("step", lambda r: str(r["step"])), ("runs", lambda r: str(r["runs"])),
        ("top-r overlap (mean / min)", lambda r: f"{r['overlap_mean']:.2f} / {r['overlap_min']:.2f}"),
        ("chance", lambda r: f"{r['chance_mean']:.2f}"), ("Kendall tau", lambda r: f"{r['kendall_mean']:.2f}"),
        ("r by rule at step", lambda r: f"{r['r_rule_at_step_mean']:.1f}"),
        ("r by rule at end", lambda r: f"{r['r_rule_at_end_mean']:.1f}")]))
    w = an.get("weyl", [])
    out.append("\n## Weyl check (per optimizer step: max_i |d sigma_i| <= sigma_1(G_t - G_{t-1}))\n")
    out.append(_md_table(w, [
        ("seed", lambda r: str(r["seed"])), ("layer", lambda r: str(r["layer"])),
        ("steps", lambda r: f"{r['first_step']}-{r['last_step']}"), ("violations", lambda r: str(r["violations"])),
        ("max |dsigma| / Hankel change (max, median)", lambda r: f"{_fmt(r['max_ratio'], '.3f')}, {_fmt(r['median_ratio'], '.3f')}"),
        ("median Hankel change per step", lambda r: f"{r['median_hankel_change']:.2e}"),
        ("Hankel change / param-update norm (median)", lambda r: _fmt(r["median_hankel_per_param"], ".3f")),
        ("cumulative Hankel change", lambda r: f"{r['cumulative_hankel_change']:.3f}"),
        ("sigma_1 at end", lambda r: f"{r['sigma1_end']:.3f}")]))
    refused = an.get("refused", [])
    if refused:
        out.append("\n## Reductions refused by lti_reduce_torch (layer left unchanged)\n\n")
        out.append(_md_table(refused, [
            ("method", lambda r: group_label(r["method"], r["tau"])), ("seed", lambda r: str(r["seed"])),
            ("step", lambda r: str(r["step"])), ("layer", lambda r: r["layer"]), ("reason", lambda r: r["reason"])]))
    b = an.get("bound_check", [])
    out.append("\n## Error bound of each event vs measured layer-output error (probe batch of validation inputs)\n")
    out.append(_md_table(b, [
        ("method", lambda r: group_label(r["method"], r["tau"])), ("seed", lambda r: str(r["seed"])),
        ("step", lambda r: str(r["step"])), ("layer", lambda r: r["layer"]),
        ("n", lambda r: f"{r['old_n']} -> {r['new_n']}"), ("bound", lambda r: _fmt(r["bound"], ".3e")),
        ("measured max ||dy||/||u||", lambda r: f"{r['measured']:.3e}"),
        ("measured / bound", lambda r: _fmt(r["ratio"], ".3f")), ("holds", lambda r: str(r["holds"]))]))
    return "".join(out)


def write_json(results, path):
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=_json_default)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def load_results(path):
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    with open(path) as f:
        return json.load(f)


def write_report(results, out_dir, figures=True):
    """Write ``results.json``, ``results.md`` and ``figures/*.png`` into ``out_dir``; return the table text."""
    os.makedirs(out_dir, exist_ok=True)
    rows = summarize(results["runs"])
    results["summary"] = rows
    figs = make_figures(results, os.path.join(out_dir, "figures")) if figures else []
    results["figures"] = [os.path.relpath(p, out_dir) for p in figs]
    write_json(results, os.path.join(out_dir, "results.json"))
    cfg, env = results["config"], results.get("environment", {})
    md = [f"# Results: preset `{cfg['name']}` on `{cfg['dataset']}`\n\n",
          f"Command: `{results.get('command', '')}`\n\n",
          f"Data: {results.get('dataset', '')}\n\n",
          f"Model: {cfg['blocks']} block(s) of {results.get('layer', 'LRU')}, n={cfg['n']}, h={cfg['h']}; {cfg['steps']} steps, batch {cfg['batch_size']}, "
          f"lr {cfg['lr']:g} ({cfg['schedule']}, warm-up {cfg['warmup_frac']:g}), events at steps {results.get('events')}.\n\n",
          f"Machine: {env.get('machine', '')}; torch {env.get('torch', '')}, {env.get('threads', '')} thread(s), "
          f"device {env.get('device', '')}. Experiment wall-clock: {results.get('wall_clock_s', 0):.1f} s.\n\n",
          "Accuracy: all seeds, mean ± sample std; `best-3` is the mean of the best 3 seeds (the paper's statistic), "
          "shown only beside it. Wall-clock includes the reduction events; KD's includes its teacher's run. "
          "Step time: median in the last stretch of constant state size. CPU s: process CPU time of the run "
          "(KD: with its teacher's), steadier than wall-clock on a shared machine. Memory: bytes autograd "
          "saves for backward in one training step of the final model (GPU: peak allocated).\n\n",
          format_table(rows), "\n\n", _analysis_md(results.get("analysis", {}))]
    if figs:
        md.append("\n## Figures\n\n")
        md += [f"![{os.path.basename(p)}]({os.path.relpath(p, out_dir)})\n\n" for p in figs]
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("".join(md))
    return format_compact_table(rows) + f"\n(all columns: {os.path.join(out_dir, 'results.md')})"


# ----------------------------------------------------------------------------- figures
_COLORS = {"full": "black", "compressm": "tab:red", "small": "tab:blue", "kd": "tab:green",
           "nuclear": "tab:purple", "smallest": "tab:orange", "random": "tab:gray"}


def _figure(w=6.4, h=4.2, ncols=1):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w * ncols, h))
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def make_figures(results, fig_dir):
    """Accuracy vs final size, accuracy vs wall-clock, state size over steps, HSV spectra; returns paths."""
    os.makedirs(fig_dir, exist_ok=True)
    runs, rows = results["runs"], results.get("summary") or summarize(results["runs"])
    paths = []
    markers = "os^vDP*X<>"
    taus = sorted({r["tau"] for r in rows if r["tau"] is not None})
    cfg = results["config"]
    title = f"preset {cfg['name']!r} on {cfg['dataset']}"
    kd_ran = any(r["method"] == "kd" for r in runs)
    mk = lambda tau: "o" if tau is None else markers[(taus.index(tau) + 1) % len(markers)]  # noqa: E731

    # 1-2. accuracy vs final size / wall-clock
    for fname, xlab, xfun, xrow in [
            ("accuracy_vs_size.png", "final state size (mean over layers)",
             lambda r: float(np.mean(r["final_sizes"])), lambda g: g["n_mean"]),
            ("accuracy_vs_wallclock.png", "wall-clock per run, s (training + reductions + evaluation"
             + ("; KD incl. teacher)" if kd_ran else ")"),
             lambda r: r["time"].get("total_with_teacher_s", r["time"]["total_s"]), lambda g: g["total_s"])]:
        fig, (ax,) = _figure()
        for g in rows:
            recs = [r for r in runs if group_key(r) == (g["method"], g["tau"])]
            c = _COLORS.get(g["method"], "tab:brown")
            ax.scatter([xfun(r) for r in recs], [100 * r["test_acc"] for r in recs], color=c, alpha=0.35,
                       marker=mk(g["tau"]), s=18)
            ax.errorbar([xrow(g)], [g["acc_mean"]], yerr=[g["acc_std"] or 0.0], color=c, marker=mk(g["tau"]), ms=8,
                        capsize=3, label=g["label"])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlab)
        ax.set_ylabel("test accuracy % (dots: seeds; marker: mean ± std)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        paths.append(_save(fig, os.path.join(fig_dir, fname)))

    # 3. state size over steps
    fig, (ax,) = _figure()
    steps = results["config"]["steps"]
    seen = set()
    for r in runs:
        key = group_key(r)
        pts = r["sizes_over_steps"]
        xs = [p[0] for p in pts] + [steps]
        ys = [float(np.mean(p[1])) for p in pts] + [float(np.mean(pts[-1][1]))]
        lab = None if key in seen else group_label(*key)
        seen.add(key)
        ax.step(xs, ys, where="post", color=_COLORS.get(r["method"], "tab:brown"), alpha=0.6, label=lab,
                linestyle="-" if r["tau"] in (None, taus[0] if taus else None) else "--")
    for e in results.get("events", []):
        ax.axvline(e, color="k", lw=0.5, alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("training step (thin lines: event steps)")
    ax.set_ylabel("state size (mean over layers)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(_save(fig, os.path.join(fig_dir, "state_size_over_steps.png")))

    # 4. HSV spectra over training: the full run and a CompreSSM run of the first seed
    chosen = [r for r in runs if r["method"] == "full"][:1] + [r for r in runs if r["method"] == "compressm"][:1]
    chosen = [r for r in chosen if r.get("checkpoints")]
    if chosen:
        nl = len(chosen[0]["checkpoints"][0]["hsv"])
        from matplotlib.figure import Figure
        fig = Figure(figsize=(5.2 * nl, 3.8 * len(chosen)))
        fig.suptitle(f"HSV spectra over training, {title}", fontsize=9)
        for i, r in enumerate(chosen):
            cps = r["checkpoints"]
            cmap = __import__("matplotlib").colormaps["viridis"]
            for li in range(nl):
                ax = fig.add_subplot(len(chosen), nl, i * nl + li + 1)
                for j, cp in enumerate(cps):
                    h = np.asarray(cp["hsv"][li], dtype=float)
                    h = h[h > 0]
                    if len(h):
                        ax.semilogy(np.arange(1, len(h) + 1), h, color=cmap(j / max(1, len(cps) - 1)),
                                    lw=1.2, label=f"step {cp['step']}")
                ax.set_title(f"{group_label(r['method'], r.get('tau'))}, seed {r['seed']}, layer {li}", fontsize=8)
                ax.set_xlabel("index")
                ax.set_ylabel("Hankel singular value")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=6)
        paths.append(_save(fig, os.path.join(fig_dir, "hsv_spectra.png")))

    # 5. ranking stability: the overlap (chance level r/n) and Kendall's tau (chance level 0)
    #    on two axes, each with its own chance line
    table = results.get("analysis", {}).get("ranking_stability", {}).get("table", [])
    if table:
        fig, (ax, ax_k) = _figure(ncols=2)
        fig.suptitle(f"Stability of the modal-energy ranking (full runs), {title}", fontsize=9)
        for i, tau in enumerate(sorted({t["tau"] for t in table})):
            t = [x for x in table if x["tau"] == tau]
            line, = ax.plot([x["step"] for x in t], [x["overlap_mean"] for x in t], marker="o",
                            label=f"top-r overlap, tau={tau:g}")
            ax.plot([x["step"] for x in t], [x["chance_mean"] for x in t], ls=":", color=line.get_color(),
                    label="chance level r/n" if i == 0 else None)
        t = [x for x in table if x["tau"] == table[0]["tau"]]
        ax_k.plot([x["step"] for x in t], [x["kendall_mean"] for x in t], marker="s", color="k",
                  label="Kendall's tau of the whole ranking")
        ax_k.axhline(0.0, ls=":", color="k", label="chance level 0")
        ax.set_ylabel("top-r overlap with the final ranking")
        ax.set_ylim(-0.05, 1.05)
        ax_k.set_ylabel("Kendall's tau with the final ranking")
        ax_k.set_ylim(-1.05, 1.05)
        for a in (ax, ax_k):
            a.set_xlabel("checkpoint step (compared with the end of training)")
            a.grid(alpha=0.3)
            a.legend(fontsize=7)
        paths.append(_save(fig, os.path.join(fig_dir, "ranking_stability.png")))
    return paths
