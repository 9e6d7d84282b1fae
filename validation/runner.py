"""Run a whole comparison: every method, every tau, every seed; then analyses and report."""

import datetime
import os
import platform
import sys
import time

import torch

from .analysis import analyze
from .errors import ConfigError
from .data import load_dataset
from .models import default_layer_cls
from .methods import RunSettings, run_full, run_compressm, run_small, run_kd, run_nuclear
from .presets import validate, event_steps
from .report import write_report, write_json

__all__ = ["run_experiment", "environment", "check_device"]


def environment(device="cpu"):
    try:
        cpu = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        cpu = platform.processor()
    dev = str(device)
    if torch.device(device).type == "cuda":
        dev += f" ({torch.cuda.get_device_name(torch.device(device))})"
    return {"machine": f"{cpu or platform.machine()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
            "python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": dev, "date": datetime.datetime.now().isoformat(timespec="seconds")}


def check_device(device):
    """Refuse a device this torch cannot use, with the fix (no traceback, nothing written).

    Raises
    ------
    ConfigError
        An unparsable device string, or CUDA / MPS that this torch build or machine lacks.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise ConfigError(f"--device {device}: {why} (torch {torch.__version__}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {device}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {device}: only cpu, cuda and mps are supported")
    return dev


def _say(progress, text):
    if progress:
        from tqdm.auto import tqdm
        tqdm.write(text, file=sys.stderr)


def run_experiment(cfg, *, out_dir, device="cpu", progress=True, data_dir=None, download=False,
                   layer_cls=None, command="", figures=True, echo=True):
    """Train and evaluate every method of ``cfg`` for every seed; write the report into ``out_dir``.

    Returns the results dict (also written to ``out_dir/results.json``).
    """
    validate(cfg)
    check_device(device)            # before anything is written: a bad device leaves no folder
    t_start = time.perf_counter()
    data = load_dataset(cfg.dataset, data_dir=data_dir, download=download)
    os.makedirs(out_dir, exist_ok=True)
    rs = RunSettings(cfg, data, device=device, progress=progress, layer_cls=layer_cls,
                     log_dir=os.path.join(out_dir, "logs"))
    layer_name = getattr(layer_cls or default_layer_cls(), "__qualname__", str(layer_cls))
    results = {"command": command, "config": cfg.to_dict(), "dataset": data.summary(), "layer": layer_name,
               "events": event_steps(cfg), "environment": environment(device), "runs": []}
    runs = results["runs"]
    partial = os.path.join(out_dir, "results.partial.json")

    def add(rec):
        runs.append(rec)
        t = rec["time"]
        _say(progress, f"[{rec['method']}{'' if rec.get('tau') is None else ' tau=%g' % rec['tau']} seed {rec['seed']}] "
                       f"test acc {100 * rec['test_acc']:.2f}%  n={rec['final_sizes']}  "
                       f"time {t['total_s']:.1f}s (train {t['train_s']:.1f}, reductions {t['reduction_s']:.2f}, "
                       f"eval {t['eval_s']:.2f})")
        write_json(results, partial)

    methods = set(cfg.methods)
    for seed in cfg.seeds:
        teacher = None
        if "full" in methods:
            rec, teacher = run_full(rs, seed)
            add(rec)
        sizes_by_tau = {}
        for tau in cfg.taus:
            if "compressm" in methods:
                rec, _ = run_compressm(rs, seed, tau)
                add(rec)
                sizes_by_tau[tau] = rec["final_sizes"]
            sizes = sizes_by_tau.get(tau)
            if "small" in methods:
                add(run_small(rs, seed, tau, sizes)[0])
            if "kd" in methods:
                full_rec = [r for r in runs if r["method"] == "full" and r["seed"] == seed][0]
                add(run_kd(rs, seed, tau, sizes, teacher, full_rec["time"])[0])
            for select in ("smallest", "random"):
                if select in methods:
                    add(run_compressm(rs, seed, tau, select=select)[0])
        if "nuclear" in methods:
            for rec in run_nuclear(rs, seed, sizes_by_tau):
                add(rec)
        del teacher
    results["analysis"] = analyze(runs, list(cfg.taus))
    results["wall_clock_s"] = time.perf_counter() - t_start
    table = write_report(results, out_dir, figures=figures)
    if os.path.exists(partial):
        os.remove(partial)
    if echo:
        print(table)
        print(f"\nwrote {os.path.join(out_dir, 'results.md')}, results.json and figures/ "
              f"(experiment wall-clock {results['wall_clock_s']:.1f} s)")
    return results
