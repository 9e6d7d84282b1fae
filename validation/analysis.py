"""Analyses of a set of run records (pure functions of the JSON-able records).

- :func:`ranking_stability`: on the full (never reduced) runs, whose modal coordinates keep
  their identity through training, compare the ranking of the states at each checkpoint
  (the CompreSSM event steps, and step 0) with the ranking at the end. A state's score is
  its modal energy ``||b_i|| ||c_i|| / (1 - |lambda_i|)`` (:func:`lti_reduce_torch.selection.modal_energy`;
  the HSVs themselves carry no identity). Reported:
  overlap of the top-r sets (r = the size CompreSSM reached for that seed, layer and tau;
  chance level r/n), Kendall's tau of the full ranking, and the order that the tau rule
  would pick on the HSVs at the checkpoint vs at the end.
- :func:`weyl_summary`: per optimizer step, ``max_i |sigma_i(t) - sigma_i(t-1)|`` against
  the Hankel norm of the change ``sigma_1(G_t - G_{t-1})`` (Weyl's inequality says <=), and
  the Hankel change per unit of parameter-update norm.
- :func:`bound_check`: each reduction event's measured layer-output error on real layer
  inputs, ``max ||y - y_r|| / ||u||``, against its bound ``2 * sum of discarded HSVs``.
- :func:`costs`: time per step and in total of each method, as ratios to the full run of
  the same seed (KD: the teacher's run included in its total).
"""

import numpy as np
from scipy.stats import kendalltau

from lti_reduce import select_order

__all__ = ["format_size", "sort_key", "tau_order", "ranking_stability", "weyl_summary", "bound_check", "costs", "step_segments", "analyze",
           "group_key", "group_label", "METHOD_ORDER"]

METHOD_ORDER = ["full", "compressm", "small", "kd", "nuclear", "smallest", "random"]
_NAMES = {"full": "full", "compressm": "CompreSSM", "small": "small from scratch", "kd": "distillation (KD)",
          "nuclear": "nuclear-norm reg.", "smallest": "ablation: smallest HSVs", "random": "ablation: random states"}


def format_size(v):
    """A state size: ``64`` when it is a whole number (every seed agrees), else ``44.5``."""
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def group_key(rec):
    return (rec["method"], rec.get("tau"))


def group_label(method, tau):
    name = _NAMES.get(method, method)
    return name if tau is None else f"{name} (tau={tau:g})"


def sort_key(key):
    method, tau = key
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else 99, -1 if tau is None else tau)


def tau_order(hsv, tau):
    """The order CompreSSM's energy rule picks on ``hsv``: the core's :func:`lti_reduce.select_order`."""
    return select_order(np.sort(np.asarray(hsv, dtype=float))[::-1], energy=tau)


def _kendall(a, b):
    if len(a) < 2:
        return None
    return float(kendalltau(a, b).statistic)


def ranking_stability(records, taus):
    rows = []
    fulls = [r for r in records if r["method"] == "full" and r.get("checkpoints")]
    for rec in fulls:
        cps = [c for c in rec["checkpoints"] if "modal" in c]
        if len(cps) < 2:
            continue
        end = cps[-1]
        for tau in taus:
            cm = [r for r in records if r["method"] == "compressm" and r.get("tau") == tau and r["seed"] == rec["seed"]]
            for li, (modal_end, hsv_end) in enumerate(zip(end["modal"], end["hsv"])):
                n = len(modal_end)
                r = cm[0]["final_sizes"][li] if cm else tau_order(hsv_end, tau)
                r = max(1, min(int(r), n))
                top_end = set(np.argsort(modal_end)[::-1][:r].tolist())
                for cp in cps[:-1]:
                    modal = cp["modal"][li]
                    top = set(np.argsort(modal)[::-1][:r].tolist())
                    rows.append({"seed": rec["seed"], "layer": li, "step": cp["step"], "tau": tau, "r": r, "n": n,
                                 "overlap": len(top & top_end) / r, "chance": r / n,
                                 "kendall": _kendall(modal, modal_end),
                                 "r_rule_at_step": tau_order(cp["hsv"][li], tau),
                                 "r_rule_at_end": tau_order(hsv_end, tau)})
    summary = {}
    for row in rows:
        summary.setdefault((row["tau"], row["step"]), []).append(row)
    table = [{"tau": tau, "step": step, "runs": len(v),
              "overlap_mean": float(np.mean([x["overlap"] for x in v])),
              "overlap_min": float(np.min([x["overlap"] for x in v])),
              "chance_mean": float(np.mean([x["chance"] for x in v])),
              "kendall_mean": float(np.mean([x["kendall"] for x in v if x["kendall"] is not None] or [np.nan])),
              "r_rule_at_step_mean": float(np.mean([x["r_rule_at_step"] for x in v])),
              "r_rule_at_end_mean": float(np.mean([x["r_rule_at_end"] for x in v]))}
             for (tau, step), v in sorted(summary.items())]
    return {"rows": rows, "table": table}


def weyl_summary(records, rel_tol=1e-6, abs_tol=1e-10):
    out = []
    for rec in records:
        if not rec.get("weyl"):
            continue
        nl = len(rec["weyl"][0]["layers"])
        for li in range(nl):
            ds = np.array([w["layers"][li]["max_dsigma"] for w in rec["weyl"]])
            dh = np.array([w["layers"][li]["hankel_change"] for w in rec["weyl"]])
            dp = np.array([w["layers"][li]["param_change"] for w in rec["weyl"]])
            s1 = np.array([w["layers"][li]["sigma1"] for w in rec["weyl"]])
            viol = int(np.sum(ds > dh * (1 + rel_tol) + abs_tol * np.maximum(1.0, s1)))
            ok = dh > 0
            out.append({"method": rec["method"], "seed": rec["seed"], "layer": li, "steps": int(len(ds)),
                        "first_step": rec["weyl"][0]["step"], "last_step": rec["weyl"][-1]["step"],
                        "violations": viol,
                        "max_ratio": float(np.max(ds[ok] / dh[ok])) if ok.any() else None,
                        "median_ratio": float(np.median(ds[ok] / dh[ok])) if ok.any() else None,
                        "median_hankel_change": float(np.median(dh)),
                        "median_hankel_per_param": float(np.median(dh[dp > 0] / dp[dp > 0])) if (dp > 0).any() else None,
                        "cumulative_hankel_change": float(dh.sum()),
                        "sigma1_end": float(s1[-1])})
    return out


def bound_check(records, rel_slack=1e-3, abs_slack=1e-5):
    """Rows per (run, event, layer) with both a bound and a measurement.

    ``holds`` allows float32 rounding in the layers' forward (``abs_slack``)."""
    rows = []
    for rec in records:
        for ev in rec.get("events", []):
            for lay in ev["layers"]:
                m, b = lay.get("measured_gain"), lay.get("error_bound")
                if m is None:
                    continue
                rows.append({"method": rec["method"], "tau": rec.get("tau"), "seed": rec["seed"], "step": ev["step"],
                             "layer": lay["name"], "old_n": lay["old_n"], "new_n": lay["new_n"], "bound": b,
                             "measured": m, "ratio": (m / b) if b else None,
                             "holds": None if b is None else bool(m <= b * (1 + rel_slack) + abs_slack)})
    return rows


def costs(records):
    full = {r["seed"]: r for r in records if r["method"] == "full"}
    groups = {}
    for rec in records:
        f = full.get(rec["seed"])
        if f is None:
            continue
        t = rec["time"]
        total = t.get("total_with_teacher_s", t["total_s"])
        groups.setdefault(group_key(rec), []).append({
            "step_ratio_after": rec["step_time"]["after_last_event_s"] / f["step_time"]["median_s"],
            "step_ratio_median": rec["step_time"]["median_s"] / f["step_time"]["median_s"],
            "cpu_step_ratio_after": rec["step_time"]["after_last_event_cpu_s"] / f["step_time"]["cpu_median_s"],
            "cpu_ratio": (t.get("cpu_s", np.nan) + t.get("teacher_cpu_s", 0.0)) / f["time"].get("cpu_s", np.nan),
            "total_ratio": total / f["time"]["total_s"],
            "train_ratio": t["train_s"] / f["time"]["train_s"],
            "reduction_share": t["reduction_s"] / t["total_s"] if t["total_s"] else 0.0})
    out = []
    for key in sorted(groups, key=sort_key):
        v = groups[key]
        out.append({"method": key[0], "tau": key[1], "label": group_label(*key), "runs": len(v),
                    **{k: float(np.mean([x[k] for x in v])) for k in v[0]}})
    return out


def step_segments(records):
    """Per method with reduction events: median step time of each stretch of constant state size
    (k-th stretch = after the k-th size change), averaged over seeds, and its ratio to the first."""
    groups = {}
    for rec in records:
        segs = rec["step_time"]["segments"]
        if len(segs) > 1:
            groups.setdefault(group_key(rec), []).append(segs)
    out = []
    for key in sorted(groups, key=sort_key):
        runs = groups[key]
        for k in range(min(len(s) for s in runs)):
            rows = [s[k] for s in runs]
            first = [s[0]["cpu_median_s"] for s in runs]
            out.append({"method": key[0], "tau": key[1], "label": group_label(*key), "index": k,
                        "from_step": rows[0]["from_step"], "to_step": rows[0]["to_step"],
                        "sizes": ", ".join(format_size(v) for v in np.mean([r["sizes"] for r in rows], axis=0)),
                        "median_s": float(np.mean([r["median_s"] for r in rows])),
                        "cpu_median_s": float(np.mean([r["cpu_median_s"] for r in rows])),
                        "ratio": float(np.mean([r["cpu_median_s"] / f for r, f in zip(rows, first)]))})
    return out


def refused(records):
    """Every layer reduction that ``lti_reduce_torch`` refused (status 'refused'), with its reason."""
    return [{"method": rec["method"], "tau": rec.get("tau"), "seed": rec["seed"], "step": ev["step"],
             "layer": lay["name"], "reason": lay.get("reason") or ""}
            for rec in records for ev in rec.get("events", []) for lay in ev["layers"]
            if lay.get("status") == "refused"]


def analyze(records, taus):
    return {"refused": refused(records), "ranking_stability": ranking_stability(records, taus), "weyl": weyl_summary(records),
            "bound_check": bound_check(records), "costs": costs(records), "step_segments": step_segments(records)}
