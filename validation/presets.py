"""Named experiment configurations.

``tiny`` is for CI (seconds); ``demo`` is the main job (sequential digits, three seeds, under
10 minutes on a 2-core CPU); ``digits`` / ``mnist1d`` are the full CPU runs behind
``docs/results.md``; ``smnist`` / ``scifar`` carry the paper's published settings (GPU scale:
200k / 180k steps) and need ``--download`` once.
"""

from dataclasses import dataclass, field, replace, asdict

from .errors import ConfigError, UnknownPresetError

__all__ = ["Preset", "PRESETS", "get_preset", "METHODS", "event_steps", "validate"]

#: method name -> what it is
METHODS = {
    "full": "full-size model, no reduction",
    "compressm": "CompreSSM: balanced truncation at events in the first ~10% of steps (tolerance mode, per tau)",
    "small": "same architecture trained from scratch at CompreSSM's final per-layer sizes (same seed, tau)",
    "kd": "knowledge distillation from the trained full model into CompreSSM's final sizes (cost = teacher + student)",
    "nuclear": "full size trained with a Hankel nuclear-norm regulariser, balanced-truncated at the end to CompreSSM's sizes",
    "smallest": "ablation: CompreSSM's events but keeping the smallest-HSV states",
    "random": "ablation: CompreSSM's events but keeping random states",
}


@dataclass(frozen=True)
class Preset:
    """One experiment configuration (every field can be overridden from the CLI)."""

    name: str
    dataset: str
    blocks: int
    n: int                      # initial state size of each SSM layer
    h: int                      # model width
    steps: int
    batch_size: int
    lr: float
    ssm_lr_factor: float = 1.0  # SSM parameters' lr = lr * factor, no weight decay on them
    weight_decay: float = 0.0
    schedule: str = "constant"  # 'constant' | 'cosine' (linear warm-up then cosine to 0)
    warmup_frac: float = 0.0    # fraction of steps of linear warm-up
    dropout: float = 0.0
    taus: tuple = (0.05,)       # CompreSSM energy tolerances (one CompreSSM run per tau)
    n_events: int = 4           # reduction events spread evenly over the window
    event_window: tuple = (0.0, 0.1)  # fraction of steps: events at start + k*(stop-start)/n_events
    events: tuple = ()          # explicit event steps (override n_events / event_window)
    horizon: object = None      # CompreSSM Gramians: None (infinite horizon), an int, or "L" (the sequence length)
    output: str = "complex"     # CompreSSM reduction: "complex" (bound on C x) or "real" (bound on Re(C x))
    seeds: tuple = (0, 1, 2)
    methods: tuple = ("full", "compressm", "small")
    kd_alpha: float = 0.5
    kd_temperature: float = 2.0
    nuclear_weight: float = 1e-3
    eval_batch_size: int = 512
    analysis: bool = True       # Weyl check and event error measurements (timed apart)
    weyl_steps: int = 0         # first steps of the full run with the per-step Weyl check (0: up to the last event)
    description: str = ""
    paper: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)

    def replace(self, **kw):
        return replace(self, **kw)


PRESETS = {
    "tiny": Preset(
        name="tiny", dataset="digits", blocks=1, n=8, h=8, steps=12, batch_size=32, lr=3e-3,
        taus=(0.1,), n_events=2, event_window=(0.0, 0.34), seeds=(0,), eval_batch_size=512,
        methods=tuple(METHODS), weyl_steps=0,
        description="CI smoke test: seconds per method"),
    "demo": Preset(
        name="demo", dataset="digits", blocks=1, n=64, h=32, steps=1000, batch_size=32, lr=3e-3,
        schedule="cosine", warmup_frac=0.1, taus=(0.05,), seeds=(0, 1, 2),
        methods=("full", "compressm", "small"),
        description="main job: sequential digits, full vs CompreSSM vs small-from-scratch, 3 seeds, <10 min on 2 CPU cores"),
    "digits": Preset(
        name="digits", dataset="digits", blocks=2, n=64, h=32, steps=1500, batch_size=32, lr=3e-3,
        schedule="cosine", warmup_frac=0.1, dropout=0.1, taus=(0.02, 0.05, 0.1), seeds=(0, 1, 2, 3, 4),
        methods=tuple(METHODS),
        description="full CPU comparison on sequential digits, every method, 3 taus, 5 seeds (~30 min CPU)"),
    "mnist1d": Preset(
        name="mnist1d", dataset="mnist1d", blocks=2, n=64, h=64, steps=2000, batch_size=64, lr=3e-3,
        schedule="cosine", warmup_frac=0.1, dropout=0.1, taus=(0.02, 0.05, 0.1), seeds=(0, 1, 2, 3, 4),
        methods=tuple(METHODS),
        description="full CPU comparison on MNIST-1D, every method, 3 taus, 5 seeds (~1 h CPU)"),
    # issue 14: tasks where state size matters (run through `python -m validation.study`)
    "lagcorr": Preset(
        name="lagcorr", dataset="lagcorr", blocks=1, n=32, h=16, steps=1500, batch_size=32, lr=3e-3,
        schedule="cosine", warmup_frac=0.1, taus=(0.05,), seeds=tuple(range(10)),
        methods=("full", "compressm", "small", "smallest", "random"),
        description="generated lag-correlation task (L=256, needed state known), 1 block, 10 seeds (~25 s CPU a run)"),
    "permdigits": Preset(
        name="permdigits", dataset="digits-permuted", blocks=1, n=64, h=32, steps=1000, batch_size=32, lr=3e-3,
        schedule="cosine", warmup_frac=0.1, taus=(0.05,), seeds=tuple(range(10)),
        methods=("full", "compressm", "small", "smallest", "random"),
        description="permuted sequential digits, 1 block, 10 seeds (~12 s CPU a run)"),
    "osuleaf": Preset(
        name="osuleaf", dataset="ucr-osuleaf", blocks=1, n=32, h=16, steps=600, batch_size=16, lr=3e-3,
        schedule="cosine", warmup_frac=0.1, taus=(0.05,), seeds=tuple(range(10)),
        methods=("full", "compressm", "small", "smallest", "random"),
        description="UCR OSULeaf (L=427, bundled in aeon), 1 block, 10 seeds"),
    "smnist": Preset(
        name="smnist", dataset="smnist", blocks=1, n=256, h=8, steps=200_000, batch_size=50, lr=4e-4,
        taus=(0.01, 0.02, 0.04), seeds=(0, 1, 2, 3, 4), methods=("full", "compressm", "small"),
        eval_batch_size=1000, weyl_steps=200,
        description="the paper's sMNIST setting (GPU scale)",
        paper={"full": 97.3, "compressm": {0.01: (46.8, 96.9), 0.02: (27.6, 96.9), 0.04: (12.7, 95.9)},
               "note": "mean of the best 3 of 5+ seeds; (final n, test accuracy %)"}),
    "scifar": Preset(
        name="scifar", dataset="scifar", blocks=6, n=384, h=512, steps=180_000, batch_size=50, lr=1e-3,
        ssm_lr_factor=0.25, weight_decay=0.05, schedule="cosine", warmup_frac=0.1, dropout=0.1,
        taus=(0.05, 0.10, 0.15), seeds=(0, 1, 2, 3, 4), methods=("full", "compressm", "small", "kd"),
        eval_batch_size=500, weyl_steps=200,
        description="the paper's sCIFAR setting (GPU scale)",
        paper={"full": 86.5, "compressm": {0.05: (160.8, 85.8), 0.10: (92.6, 85.7), 0.15: (57.4, 84.4)},
               "small_n93": 81.8, "kd_n93": 83.5,
               "note": "mean of the best 3 of 5+ seeds; (final n, test accuracy %)"}),
}


def get_preset(name):
    """The preset called ``name`` (raises :class:`UnknownPresetError` listing the names)."""
    if name not in PRESETS:
        raise UnknownPresetError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def event_steps(cfg):
    """Reduction event steps (1-based counts of completed optimizer steps), validated."""
    if cfg.events:
        steps = sorted(int(s) for s in cfg.events)
    else:
        start, stop = cfg.event_window
        span = (stop - start) * cfg.steps
        steps = sorted({max(1, int(round(start * cfg.steps + k * span / cfg.n_events)))
                        for k in range(1, cfg.n_events + 1)})
    bad = [s for s in steps if not 1 <= s < cfg.steps]
    if bad:
        raise ConfigError(f"reduction events {bad} are outside the run: events must lie in "
                          f"[1, {cfg.steps - 1}] for steps={cfg.steps} (change --events or --steps)")
    return steps


def validate(cfg):
    """Check a configuration; raise :class:`ConfigError` naming the offending field and the fix."""
    from .data import DATASETS
    from .errors import UnknownDatasetError
    if cfg.dataset not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {cfg.dataset!r}; choose one of: {', '.join(DATASETS)}")
    for tau in cfg.taus:
        if not 0.0 < float(tau) < 1.0:
            raise ConfigError(f"tau must lie strictly between 0 and 1 (fraction of HSV energy dropped "
                              f"per event), got {tau}; e.g. --tau 0.05")
    if not cfg.taus:
        raise ConfigError("at least one tau is needed (--tau 0.05)")
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from: {', '.join(METHODS)}")
    for f in ("blocks", "n", "h", "steps", "batch_size", "n_events", "eval_batch_size"):
        if int(getattr(cfg, f)) < 1:
            raise ConfigError(f"{f} must be a positive integer, got {getattr(cfg, f)}")
    if not cfg.lr > 0:
        raise ConfigError(f"lr must be positive, got {cfg.lr}")
    if cfg.schedule not in ("constant", "cosine"):
        raise ConfigError(f"schedule must be 'constant' or 'cosine', got {cfg.schedule!r}")
    if not 0.0 <= cfg.warmup_frac < 1.0:
        raise ConfigError(f"warmup_frac must lie in [0, 1), got {cfg.warmup_frac}")
    if cfg.horizon is not None and cfg.horizon != "L" and (isinstance(cfg.horizon, bool) or not isinstance(cfg.horizon, int) or cfg.horizon < 1):
        raise ConfigError(f"horizon must be None, a positive integer or 'L' (the sequence length), got {cfg.horizon!r}")
    if cfg.output not in ("complex", "real"):
        raise ConfigError(f"output must be 'complex' or 'real', got {cfg.output!r}")
    start, stop = cfg.event_window
    if not 0.0 <= start < stop <= 1.0:
        raise ConfigError(f"event_window must satisfy 0 <= start < stop <= 1, got {cfg.event_window}")
    if not 0.0 <= cfg.kd_alpha <= 1.0 or cfg.kd_temperature <= 0:
        raise ConfigError("kd_alpha must lie in [0, 1] and kd_temperature be positive")
    if len(set(cfg.seeds)) != len(cfg.seeds) or not cfg.seeds:
        raise ConfigError(f"seeds must be a non-empty list of distinct integers, got {cfg.seeds}")
    needs_compressm = {"small", "kd", "nuclear"} & set(cfg.methods)
    if needs_compressm and "compressm" not in cfg.methods:
        raise ConfigError(f"methods {sorted(needs_compressm)} use CompreSSM's final sizes: add 'compressm'")
    if "kd" in cfg.methods and "full" not in cfg.methods:
        raise ConfigError("method 'kd' distils from the trained full model: add 'full'")
    event_steps(cfg)
    return cfg
