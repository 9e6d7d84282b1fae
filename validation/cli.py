"""Command line: ``python -m validation {demo,run,list,report} ...`` (see ``--help``)."""

import argparse
import os
import shlex
import sys

from .errors import ValidationError
from .presets import PRESETS, METHODS, get_preset, validate

__all__ = ["main", "build_parser"]


def _tau(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"tau must be a number in (0, 1), got {text!r}") from None
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"tau must lie strictly between 0 and 1, got {v} (e.g. --tau 0.05)")
    return v


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _add_common(p, default_out, out_help=None):
    p.add_argument("--out", default=default_out, help=out_help or f"output folder (default: {default_out})")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the preset's)")
    p.add_argument("--steps", type=_positive_int, help="optimizer steps per run")
    p.add_argument("--tau", type=_tau, nargs="+", help="CompreSSM energy tolerance(s), each in (0, 1)")
    p.add_argument("--events", type=int, nargs="+", help="explicit reduction steps (1 <= step < steps)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="torch intra-op CPU threads (default 1: the tensors are small, extra threads mostly add "
                        "synchronisation, and on a shared machine they can make steps many times slower)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-analysis", action="store_true", help="skip the Weyl / bound / spectra measurements")
    p.add_argument("--no-figures", action="store_true", help="write table and JSON only")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m validation",
        description="CompreSSM (in-training balanced truncation of SSM layers) side by side with its baselines, "
                    "on real data that runs offline.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,run,list,report}")

    d = sub.add_parser("demo", help="quick complete comparison on sequential digits (<10 min on 2 CPU cores)",
                       description="Full vs CompreSSM vs small-from-scratch on sequential digits, 3 seeds; "
                                   "prints the table and writes Markdown, JSON and figures.")
    _add_common(d, os.path.join("runs", "demo"))

    r = sub.add_parser("run", help="a configurable comparison (preset + overrides)",
                       description="Train and evaluate the chosen methods for every seed and tau. "
                                   "Methods: " + "; ".join(f"{k}: {v}" for k, v in METHODS.items()))
    r.add_argument("--preset", default="digits", help=f"one of: {', '.join(PRESETS)} (default: digits)")
    r.add_argument("--dataset", help="override the preset's dataset (see `list`)")
    r.add_argument("--methods", nargs="+", help=f"subset of: {' '.join(METHODS)}")
    r.add_argument("--n", type=_positive_int, help="initial state size")
    r.add_argument("--h", type=_positive_int, help="model width")
    r.add_argument("--blocks", type=_positive_int, help="number of blocks")
    r.add_argument("--batch-size", type=_positive_int)
    r.add_argument("--lr", type=float)
    r.add_argument("--nuclear-weight", type=float, help="weight of the Hankel nuclear-norm regulariser")
    r.add_argument("--data-dir", help="folder of torchvision data (smnist, scifar)")
    r.add_argument("--download", action="store_true", help="allow torchvision to download smnist / scifar")
    _add_common(r, None, out_help="output folder (default: runs/<preset>, or runs/<preset>-<dataset> with "
                                  "--dataset)")

    sub.add_parser("list", help="datasets, presets and methods")
    rep = sub.add_parser("report", help="re-render table and figures from a results folder")
    rep.add_argument("folder", help="a folder holding results.json")
    parser._commands = {"demo": d, "run": r, "report": rep}
    return parser


def _config(args, preset_name):
    cfg = get_preset(preset_name)
    over = {}
    for field, attr in [("seeds", "seeds"), ("steps", "steps"), ("taus", "tau"), ("events", "events"),
                        ("dataset", "dataset"), ("methods", "methods"), ("n", "n"), ("h", "h"),
                        ("blocks", "blocks"), ("batch_size", "batch_size"), ("lr", "lr"),
                        ("nuclear_weight", "nuclear_weight")]:
        v = getattr(args, attr, None)
        if v is not None:
            over[field] = tuple(v) if isinstance(v, list) else v
    if args.no_analysis:
        over["analysis"] = False
    return validate(cfg.replace(**over))


def main(argv=None):
    top = build_parser()
    args = top.parse_args(argv)
    parser = top._commands.get(args.command, top)   # errors name the subcommand's usage
    if args.command == "list":
        from .data import available_datasets
        print("datasets:")
        for k, v in available_datasets().items():
            print(f"  {k:18s} {v}")
        print("presets:")
        for k, v in PRESETS.items():
            print(f"  {k:18s} {v.description}")
        print("methods:")
        for k, v in METHODS.items():
            print(f"  {k:18s} {v}")
        return 0
    if args.command == "report":
        from .report import load_results, write_report
        try:
            results = load_results(args.folder)
        except FileNotFoundError as exc:
            parser.error(f"no results.json in {args.folder!r}: {exc}")
        print(write_report(results, args.folder if os.path.isdir(args.folder) else os.path.dirname(args.folder)))
        return 0

    preset = "demo" if args.command == "demo" else args.preset
    try:
        cfg = _config(args, preset)
    except ValidationError as exc:
        parser.error(str(exc))
    out = args.out or os.path.join("runs", cfg.name if cfg.dataset == get_preset(cfg.name).dataset
                                   else f"{cfg.name}-{cfg.dataset}")
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from .runner import run_experiment
    try:
        run_experiment(cfg, out_dir=out, device=args.device, progress=not args.no_progress,
                       data_dir=getattr(args, "data_dir", None), download=getattr(args, "download", False),
                       figures=not args.no_figures,
                       command="python -m validation " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    except ValidationError as exc:  # missing optional package / data: exit like argparse, naming the fix
        parser.error(str(exc))
    return 0
