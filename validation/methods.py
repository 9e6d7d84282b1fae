"""Training, evaluation, and the methods compared (one function per method).

Timing (seconds, ``time.perf_counter``; on CUDA each timed block ends with a synchronize):

- ``train_s``: forward + backward + optimizer + LR-scheduler steps (and, for KD, the
  teacher's forward; for the nuclear baseline, the regulariser);
- ``reduction_s``: every ``Compressor.step`` call (no-op calls included) and end-of-training
  truncations;
- ``eval_s``: validation and test evaluation;
- ``total_s = train_s + reduction_s + eval_s`` (reductions are INCLUDED, unlike the published
  code); KD records also ``teacher_s`` (the full run's total) and ``total_with_teacher_s``;
- ``cpu_s``: CPU time of the process over the run (all threads; analysis excluded), which
  on a shared machine says more about cost than wall-clock;
- ``analysis_s``: the measurements made only for this report (HSV spectra at checkpoints,
  Weyl check, layer-output error at events), kept OUT of the total.

Memory: peak resident set size of the process sampled every 20 ms during the run
(``peak_rss_mb``; its increase over the run's start, ``rss_increase_mb``: noisy, the allocator
reuses freed memory), the process high-water mark from ``resource.getrusage`` (``maxrss_mb``),
on CUDA ``torch.cuda.max_memory_allocated`` (``cuda_peak_mb``); and, deterministic, the bytes
autograd saves for backward in one training step of the final model (``activation_mb``), the
parameters (``param_mb``) and the optimizer state (``optimizer_state_mb``).
"""

import copy
import math
import os
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

from lti_reduce import hankel_singular_values
from lti_reduce_torch import Compressor, reduce_, state_sizes as layer_state_sizes

from .losses import kd_loss, hankel_nuclear_norm_regulariser
from .models import SSMClassifier, ssm_layers
from .spectra import hankel_norm_of_change, layer_spectrum, reduction_system, state_size
from .presets import event_steps

__all__ = ["RunSettings", "build_model", "build_optimizer", "evaluate", "train",
           "run_full", "run_compressm", "run_small", "run_kd", "run_nuclear"]


class RunSettings:
    """Everything a method needs besides its own arguments."""

    def __init__(self, cfg, data, *, device="cpu", progress=True, log_dir=None, layer_cls=None):
        self.cfg = cfg
        self.data = data
        self.device = torch.device(device)
        self.progress = progress
        self.log_dir = log_dir
        self.layer_cls = layer_cls
        self.events = event_steps(cfg)
        to = lambda a, dt=None: torch.as_tensor(a, dtype=dt).to(self.device)  # noqa: E731
        self.x_train, self.y_train = to(data.x_train), to(data.y_train)
        self.x_val, self.y_val = to(data.x_val), to(data.y_val)
        self.x_test, self.y_test = to(data.x_test), to(data.y_test)
        self.probe = self.x_val[:64]


# ----------------------------------------------------------------------------- utilities
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_mb():
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 2**10


def activation_bytes(model, loss_fn, xb, yb):
    """Bytes of the distinct tensors autograd saves for backward in one training step.

    Measured on a copy of ``model`` (BatchNorm statistics of the original stay untouched); a
    deterministic proxy for the activation memory that the state size drives.
    """
    m = copy.deepcopy(model)
    m.train()
    seen, total = set(), [0]

    def pack(t):
        try:
            key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):
            key = (id(t), t.numel() * t.element_size())
        if key not in seen:
            seen.add(key)
            total[0] += key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(m, xb, yb)
    loss.backward()
    return total[0]


class MemoryMonitor:
    """Peak RSS during a block (background sampling) and the CUDA peak when on a GPU."""

    def __init__(self, device, interval=0.02):
        self.device, self.interval = device, interval
        self._stop = threading.Event()
        self.base = self.peak = None

    def _loop(self):
        while not self._stop.wait(self.interval):
            r = _rss_bytes()
            if r is not None and r > self.peak:
                self.peak = r

    def __enter__(self):
        self.base = self.peak = _rss_bytes()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        if self.base is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.base is not None:
            self._stop.set()
            self._thread.join()
            r = _rss_bytes()
            self.peak = max(self.peak, r or 0)
        return False

    def result(self):
        out = {"peak_rss_mb": None if self.peak is None else self.peak / 2**20,
               "rss_increase_mb": None if self.base is None else (self.peak - self.base) / 2**20,
               "maxrss_mb": _maxrss_mb(), "cuda_peak_mb": None}
        if self.device.type == "cuda":
            out["cuda_peak_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
        return out


def state_sizes(model):
    """The state size of each of the model's SSM layers, in block order (``lti_reduce_torch.state_sizes``)."""
    return list(layer_state_sizes(model).values())


def _tolist(x):
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_complex():
            x = x.abs()
        return x.double().tolist()
    return np.asarray(x, dtype=float).tolist()


def build_model(rs, ns, seed):
    """The classifier with per-layer state sizes ``ns``, initialised from ``seed``."""
    torch.manual_seed(seed)
    model = SSMClassifier(rs.data.channels, rs.data.n_classes, rs.cfg.h, list(ns),
                          layer_cls=rs.layer_cls, dropout=rs.cfg.dropout)
    return model.to(rs.device)


def build_optimizer(cfg, model, steps):
    """AdamW: SSM parameters at ``lr * ssm_lr_factor`` without weight decay, the rest at ``lr``
    with ``weight_decay``; LR: linear warm-up over ``warmup_frac * steps``, then constant or cosine to 0."""
    ssm_ids = {id(p) for _, layer in ssm_layers(model) for p in layer.parameters()}
    ssm = [p for p in model.parameters() if id(p) in ssm_ids]
    other = [p for p in model.parameters() if id(p) not in ssm_ids]
    opt = torch.optim.AdamW([
        {"params": other, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": ssm, "lr": cfg.lr * cfg.ssm_lr_factor, "weight_decay": 0.0},
    ], lr=cfg.lr)
    warm = int(round(cfg.warmup_frac * steps))

    def factor(i):  # i = number of completed steps
        if warm and i < warm:
            return (i + 1) / warm
        if cfg.schedule == "cosine":
            progress = (i - warm) / max(1, steps - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


@torch.no_grad()
def evaluate(model, x, y, batch_size):
    """``(accuracy, mean cross-entropy)`` in eval mode."""
    was = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), batch_size):
        out = model(x[i:i + batch_size])
        loss += float(F.cross_entropy(out, y[i:i + batch_size], reduction="sum"))
        correct += int((out.argmax(-1) == y[i:i + batch_size]).sum())
    model.train(was)
    return correct / len(y), loss / len(y)


# ----------------------------------------------------------------------------- analysis hooks
class Probe:
    """Measurements for the analyses, timed apart from the method (``analysis_s``).

    - ``checkpoint(step)``: HSVs, modal energies and |lambda| of every SSM layer;
    - ``before_event`` / ``after_event``: the layer-output error of each reduction on the
      layers' real inputs (a probe batch of validation data, model in eval mode):
      ``max_b ||y_b - y_r,b||_2 / ||u_b||_2`` over the batch (norms over time and channels),
      against the bound ``2 * sum of discarded HSVs`` on ``||G - G_r||_Hinf``;
    - ``weyl(step)``: per step, each layer's ``max_i |sigma_i(t) - sigma_i(t-1)|`` against
      ``sigma_1(G_t - G_{t-1})`` (the Hankel norm of the change: Weyl's bound) and against the
      norm of the layer's parameter update.
    """

    def __init__(self, rs, model, weyl_steps=0):
        self.rs, self.model, self.weyl_steps = rs, model, weyl_steps
        self.seconds = self.cpu_seconds = 0.0
        self.checkpoints, self.weyl_rows = [], []
        self._snap = self._inputs = None
        self._prev = None

    def _timed(fn):  # noqa: N805
        def wrapper(self, *a, **k):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(self, *a, **k)
            finally:
                self.seconds += time.perf_counter() - t
                self.cpu_seconds += time.process_time() - c
        return wrapper

    def _checkpoint(self, step):
        rows = [layer_spectrum(layer) for _, layer in ssm_layers(self.model)]
        self.checkpoints.append({"step": step, "hsv": [r[0] for r in rows],
                                 "modal": [r[1] for r in rows], "abs_lambda": [r[2] for r in rows]})

    checkpoint = _timed(_checkpoint)

    @_timed
    def before_event(self, step):
        self._checkpoint(step)
        layers = ssm_layers(self.model)
        self._snap = {name: copy.deepcopy(layer) for name, layer in layers}
        inputs = {}
        handles = [layer.register_forward_pre_hook(
            (lambda nm: lambda mod, args: inputs.__setitem__(nm, args[0].detach()))(name))
            for name, layer in layers]
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                self.model(self.rs.probe)
        finally:
            self.model.train(was)
            for hd in handles:
                hd.remove()
        self._inputs = inputs

    @_timed
    def after_event(self, step, report):
        out = {}
        if self._snap is None:
            return out
        with torch.no_grad():
            for name, layer in ssm_layers(self.model):
                old = self._snap[name]
                if state_size(old) == state_size(layer):
                    continue
                u = self._inputs[name]
                err = (old(u) - layer(u)).flatten(1).norm(dim=1)
                out[name] = float((err / u.flatten(1).norm(dim=1).clamp_min(1e-30)).max())
        self._snap = self._inputs = None
        return out

    def _state(self):
        rows = []
        for _, layer in ssm_layers(self.model):
            sys_ = reduction_system(layer)
            flat = torch.cat([p.detach().double().flatten() for p in layer.parameters()])
            rows.append((sys_, flat))
        return rows

    @_timed
    def weyl(self, step):
        if self.weyl_steps <= 0 or step > self.weyl_steps:
            return
        with torch.no_grad():
            cur = self._state()
            if self._prev is not None and [c[1].numel() for c in cur] == [p[1].numel() for p in self._prev]:
                row = {"step": step, "layers": []}
                for (s1, f1), (s0, f0) in zip(cur, self._prev):
                    h1, h0 = (torch.sort(torch.as_tensor(hankel_singular_values(s)).flatten(), descending=True).values
                              for s in (s1, s0))
                    dH = hankel_norm_of_change(s1, s0)
                    row["layers"].append({"max_dsigma": float((h1 - h0).abs().max()), "hankel_change": dH,
                                          "param_change": float((f1 - f0).norm()),
                                          "sigma1": float(h1[0])})
                self.weyl_rows.append(row)
            self._prev = cur


# ----------------------------------------------------------------------------- training loop
def _report_layers(report):
    layers = getattr(report, "layers", None) or []
    out = []
    for e in layers:
        get = (lambda k: e.get(k)) if isinstance(e, dict) else (lambda k: getattr(e, k, None))
        out.append({"name": get("name"), "old_n": get("old_n"), "new_n": get("new_n"),
                    "error_bound": None if get("error_bound") is None else float(get("error_bound")),
                    "hsv": _tolist(get("hsv")), "seconds": get("seconds"),
                    "status": None if get("status") is None else str(get("status")),
                    "reason": get("reason")})
    return out


def train(rs, model, *, seed, label, loss_fn=None, compressor_factory=None, checkpoints=(), weyl_steps=0):
    """Train ``model`` for ``cfg.steps`` steps; returns ``(record, model)``.

    ``loss_fn(model, xb, yb) -> loss`` (default cross-entropy); ``compressor_factory(model, opt)``
    builds the compressor whose ``step(step)`` is called after every optimizer step;
    ``checkpoints``: steps at which HSV spectra are recorded (analysis); ``weyl_steps``: the Weyl
    check runs on steps 1..weyl_steps (0: never).
    """
    cfg, dev = rs.cfg, rs.device
    steps = cfg.steps
    loss_fn = loss_fn or (lambda m, xb, yb: F.cross_entropy(m(xb), yb))
    opt, sched = build_optimizer(cfg, model, steps)
    compressor = compressor_factory(model, opt) if compressor_factory else None
    probe = Probe(rs, model, weyl_steps) if cfg.analysis else None
    events = set(rs.events) if compressor is not None else set()
    checkpoints = set(checkpoints) | events
    gen = torch.Generator().manual_seed(10_000 + int(seed))
    N, bs = len(rs.y_train), min(cfg.batch_size, len(rs.y_train))
    order, pos = None, N

    t_train = t_red = 0.0
    step_times, step_cpu, losses, sizes_log, event_rows = [], [], [], [], []
    sizes = state_sizes(model)
    sizes_log.append([0, sizes])
    bar = _progress(steps, label, rs.progress)
    model.train()
    if probe:
        probe.checkpoint(0)
        probe.weyl(0)
    cpu0 = time.process_time()
    with MemoryMonitor(dev) as mem:
        for step in range(1, steps + 1):
            if pos + bs > N:
                order, pos = torch.randperm(N, generator=gen).to(dev), 0
            idx = order[pos:pos + bs]
            pos += bs
            xb, yb = rs.x_train[idx], rs.y_train[idx]
            t0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, xb, yb)
            loss.backward()
            opt.step()
            sched.step()
            _sync(dev)
            dt = time.perf_counter() - t0
            t_train += dt
            step_times.append(dt)
            step_cpu.append(time.process_time() - c0)
            lv = float(loss.detach())
            losses.append(lv)
            if not math.isfinite(lv):
                raise FloatingPointError(f"{label}: loss became {lv} at step {step}")
            if probe:
                probe.weyl(step)
                if step in checkpoints:
                    if step in events:
                        probe.before_event(step)
                    else:
                        probe.checkpoint(step)
            if compressor is not None:
                t0 = time.perf_counter()
                report = compressor.step(step)
                _sync(dev)
                t_red += time.perf_counter() - t0
                if report is not None:
                    new_sizes = state_sizes(model)
                    measured = probe.after_event(step, report) if probe else {}
                    layers = _report_layers(report)
                    for row in layers:
                        row["measured_gain"] = measured.get(row["name"])
                    event_rows.append({"step": step, "sizes_before": sizes, "sizes_after": new_sizes,
                                       "layers": layers})
                    if new_sizes != sizes:
                        sizes = new_sizes
                        sizes_log.append([step, sizes])
                        if probe:
                            probe._prev = None  # Weyl check restarts on the new coordinates
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == steps:
                    bar.set_postfix_str(f"loss={lv:.3f} n={sizes}", refresh=False)
        if bar is not None:
            bar.close()
        t0 = time.perf_counter()
        val_acc, val_loss = evaluate(model, rs.x_val, rs.y_val, cfg.eval_batch_size)
        test_acc, test_loss = evaluate(model, rs.x_test, rs.y_test, cfg.eval_batch_size)
        _sync(dev)
        t_eval = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0 - (probe.cpu_seconds if probe else 0.0)
    t0 = time.perf_counter()
    memory = mem.result()
    memory["activation_mb"] = activation_bytes(model, loss_fn, xb, yb) / 2**20
    memory["param_mb"] = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    memory["optimizer_state_mb"] = sum(v.numel() * v.element_size() for st in opt.state.values()
                                       for v in st.values() if isinstance(v, torch.Tensor)) / 2**20
    t_extra = time.perf_counter() - t0
    if probe:
        probe.seconds += t_extra
        probe.checkpoint(steps)
    record = {
        "label": label, "seed": int(seed),
        "test_acc": test_acc, "val_acc": val_acc, "test_loss": test_loss, "val_loss": val_loss,
        "init_sizes": sizes_log[0][1], "final_sizes": state_sizes(model), "sizes_over_steps": sizes_log,
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "time": {"train_s": t_train, "reduction_s": t_red, "eval_s": t_eval,
                 "total_s": t_train + t_red + t_eval,
                 "analysis_s": probe.seconds if probe else 0.0, "cpu_s": cpu_s},
        "step_time": _segments(step_times, step_cpu, sizes_log, steps),
        "memory": memory,
        "loss_curve": _subsample(losses),
        "events": event_rows,
        "checkpoints": probe.checkpoints if probe else [],
        "weyl": probe.weyl_rows if probe else [],
    }
    return record, model


def _progress(total, label, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=label, unit="step", leave=False, mininterval=0.5, dynamic_ncols=True)


def _subsample(values, points=200):
    k = max(1, len(values) // points)
    return [[i + 1, float(np.mean(values[i:i + k]))] for i in range(0, len(values), k)]


def _segments(step_times, step_cpu, sizes_log, steps):
    """Median / mean wall-clock and median CPU time of a step in each stretch of constant state
    sizes (the run's first step dropped as warm-up)."""
    bounds = [s for s, _ in sizes_log] + [steps]
    out = []
    for (start, sizes), stop in zip(sizes_log, bounds[1:]):
        lo = start + 1 if start == 0 and stop - start > 1 else start
        ts, cs = step_times[lo:stop], step_cpu[lo:stop]
        if not ts:
            continue
        out.append({"from_step": start + 1, "to_step": stop, "sizes": sizes,
                    "median_s": float(np.median(ts)), "mean_s": float(np.mean(ts)),
                    "cpu_median_s": float(np.median(cs))})
    return {"segments": out,
            "before_first_event_s": out[0]["median_s"] if out else None,
            "after_last_event_s": out[-1]["median_s"] if out else None,
            "after_last_event_cpu_s": out[-1]["cpu_median_s"] if out else None,
            "median_s": float(np.median(step_times[1:] or step_times)),
            "cpu_median_s": float(np.median(step_cpu[1:] or step_cpu))}


# ----------------------------------------------------------------------------- methods
def _base(record, method, tau=None, **extra):
    record.update({"method": method, "tau": tau}, **extra)
    return record


def run_full(rs, seed):
    """Full-size model, no reduction; HSV spectra recorded at the event steps and at the end."""
    cfg = rs.cfg
    model = build_model(rs, [cfg.n] * cfg.blocks, seed)
    weyl = cfg.weyl_steps or max(rs.events)
    rec, model = train(rs, model, seed=seed, label=f"full s{seed}", checkpoints=rs.events, weyl_steps=weyl)
    return _base(rec, "full"), model


def compressor_horizon(rs):
    """The Gramians' horizon of the configuration: ``None`` (infinite), or a step count
    (``"L"`` resolves to the dataset's sequence length)."""
    h = rs.cfg.horizon
    return int(rs.data.seq_len) if h == "L" else h


def _compressor_factory(rs, tau, select, log_path, seed):
    def make(model, opt):
        return Compressor(model, [opt], mode="tolerance", energy=float(tau), events=list(rs.events),
                          select=select, min_ratio=0.95, log=log_path, seed=int(seed),
                          horizon=compressor_horizon(rs), output=rs.cfg.output)
    return make


def _log_path(rs, name):
    if rs.log_dir is None:
        return None
    os.makedirs(rs.log_dir, exist_ok=True)
    path = os.path.join(rs.log_dir, name + ".jsonl")
    if os.path.exists(path):      # the Compressor appends: start this run's log afresh
        os.remove(path)
    return path


def run_compressm(rs, seed, tau, select="balanced"):
    """CompreSSM (tolerance mode, energy ``tau`` per event) or its ``smallest`` / ``random`` ablations."""
    cfg = rs.cfg
    method = {"balanced": "compressm", "smallest": "smallest", "random": "random"}[select]
    model = build_model(rs, [cfg.n] * cfg.blocks, seed)
    label = f"{method} tau={tau:g} s{seed}"
    rec, model = train(rs, model, seed=seed, label=label,
                       compressor_factory=_compressor_factory(rs, tau, select, _log_path(rs, f"{method}_tau{tau:g}_s{seed}"), seed))
    return _base(rec, method, tau, select=select), model


def run_small(rs, seed, tau, sizes):
    """The same architecture trained from scratch at ``sizes`` (CompreSSM's final sizes)."""
    model = build_model(rs, sizes, seed)
    rec, model = train(rs, model, seed=seed, label=f"small n={sizes} s{seed}")
    return _base(rec, "small", tau), model


def run_kd(rs, seed, tau, sizes, teacher, teacher_time):
    """Distillation into ``sizes`` from ``teacher`` (kept in eval mode), loss of :func:`kd_loss`.

    ``teacher_time``: the teacher run's ``time`` dict; its total is added to KD's cost."""
    cfg = rs.cfg
    teacher = teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss_fn(m, xb, yb):
        with torch.no_grad():
            t_logits = teacher(xb)
        return kd_loss(m(xb), t_logits, yb, alpha=cfg.kd_alpha, temperature=cfg.kd_temperature)

    model = build_model(rs, sizes, seed)
    rec, model = train(rs, model, seed=seed, label=f"kd n={sizes} s{seed}", loss_fn=loss_fn)
    rec["time"]["teacher_s"] = teacher_time["total_s"]
    rec["time"]["teacher_cpu_s"] = teacher_time.get("cpu_s", 0.0)
    rec["time"]["total_with_teacher_s"] = rec["time"]["total_s"] + teacher_time["total_s"]
    return _base(rec, "kd", tau, kd={"alpha": cfg.kd_alpha, "temperature": cfg.kd_temperature}), model


def run_nuclear(rs, seed, sizes_by_tau):
    """Train full size with ``CE + nuclear_weight * sum over layers of sum(HSVs)`` (recomputed every
    step), then balanced-truncate a copy to each tau's sizes; one record per tau (shared training)."""
    cfg = rs.cfg
    model = build_model(rs, [cfg.n] * cfg.blocks, seed)
    weight = float(cfg.nuclear_weight)

    def loss_fn(m, xb, yb):
        ce = F.cross_entropy(m(xb), yb)
        reg = hankel_nuclear_norm_regulariser([layer for _, layer in ssm_layers(m)])
        return ce + weight * reg.to(ce.dtype)

    rec, model = train(rs, model, seed=seed, label=f"nuclear s{seed}", loss_fn=loss_fn, checkpoints=rs.events)
    out = []
    for tau, sizes in sizes_by_tau.items():
        m = copy.deepcopy(model)
        t0 = time.perf_counter()
        order = {name: int(r) for (name, layer), r in zip(ssm_layers(m), sizes) if state_size(layer) > r}
        layer_rows = _report_layers(reduce_(m, order=order)) if order else []
        _sync(rs.device)
        t_red = time.perf_counter() - t0
        t0 = time.perf_counter()
        val_acc, val_loss = evaluate(m, rs.x_val, rs.y_val, cfg.eval_batch_size)
        test_acc, test_loss = evaluate(m, rs.x_test, rs.y_test, cfg.eval_batch_size)
        t_eval = time.perf_counter() - t0
        r = copy.deepcopy(rec)
        final = state_sizes(m)
        r.update({"test_acc": test_acc, "val_acc": val_acc, "test_loss": test_loss, "val_loss": val_loss,
                  "final_sizes": final, "untruncated_test_acc": rec["test_acc"],
                  "sizes_over_steps": rec["sizes_over_steps"] + [[cfg.steps, final]],
                  "events": [{"step": cfg.steps, "sizes_before": rec["final_sizes"], "sizes_after": final,
                              "layers": layer_rows}],
                  "nuclear_weight": weight})
        r["time"].update({"reduction_s": rec["time"]["reduction_s"] + t_red, "eval_s": rec["time"]["eval_s"] + t_eval})
        r["time"]["total_s"] = r["time"]["train_s"] + r["time"]["reduction_s"] + r["time"]["eval_s"]
        r["checkpoints"] = rec["checkpoints"] + [{"step": cfg.steps, "truncated": True,
                                                  "hsv": [layer_spectrum(layer)[0] for _, layer in ssm_layers(m)]}]
        out.append(_base(r, "nuclear", tau))
    return out
