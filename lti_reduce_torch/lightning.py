"""CompreSSM in Lightning: :class:`CompreSSMCallback` (needs the ``lightning`` package, extra ``[lightning]``).

The callback runs a :class:`~lti_reduce_torch.schedule.Compressor` by ``trainer.global_step``
on the LightningModule's registered SSM layers, after the optimizer step of that global
step. It rebinds ``trainer.optimizers`` in place (so LR schedulers, which hold the
optimizer and its ``param_groups``, stay valid), rebuilds the DDP wrapper of
``strategy="ddp"`` through :class:`~lti_reduce_torch.distributed.DistributedCompressor`
(every rank bit-identical, proven by a hash check), and logs, per layer and event,
``{prefix}/{layer}/state_size``, ``.../hsv_tail`` (largest over channels of the sum of the
discarded Hankel singular values) and ``.../error_bound`` through ``pl_module.log``.

Checkpoints: the callback's state (which events fired, history, RNG) is saved by
Lightning with every checkpoint; on ``trainer.fit(model, ckpt_path=...)`` into a freshly
built full-size module, the callback resizes the registered layers to the stored state
dimensions just before Lightning loads the state dict (it wraps the module's
``on_load_checkpoint`` for the duration of the fit), so resuming continues exactly.
"""

from __future__ import annotations

import numpy as np

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ModuleNotFoundError("lti_reduce_torch.lightning needs the 'lightning' package: pip install "
                              "'lti-reduce[lightning]'", name="lightning") from exc

from lti_reduce import InvalidParameterError
from .checkpoint import load_reduced_state_dict_
from .distributed import DistributedCompressor, UnsupportedWrapperError
from .optim import rebind_optimizer_
from .schedule import Compressor

__all__ = ["CompreSSMCallback"]


def _tail(hsv, n):
    """Largest (over channels) sum of the Hankel singular values beyond the first ``n``."""
    rows = np.asarray(hsv, dtype=np.float64)
    if rows.size == 0:
        return 0.0
    rows = rows.reshape(-1, rows.shape[-1])
    return float(rows[:, n:].sum(axis=1).max())


class CompreSSMCallback(Callback):
    """Lightning callback running CompreSSM's schedule by global step.

    Parameters
    ----------
    monitor : str, optional
        Key of ``trainer.callback_metrics`` passed as the metric after every validation
        run (needed by ``mode='pragmatic'``, ignored otherwise).
    timeout : float
        Seconds each rank waits for the others at an event (distributed runs).
    log_prefix : str
        Prefix of the logged keys.
    **schedule
        :class:`~lti_reduce_torch.schedule.Compressor` arguments: ``mode``, ``energy``,
        ``fraction``, ``events`` (global steps), ``window``, ``interval``, ``count``,
        ``select``, ``min_ratio``, ``horizon``, ``layers``, ``seed``, ...

    Attributes
    ----------
    compressor : Compressor or DistributedCompressor or None
        Built at ``on_fit_start``.
    reports : list of ReductionReport
        The reports of the events of this fit.

    Notes
    -----
    Supported strategies: single device and ``"ddp"`` / ``"ddp_spawn"`` (other wrappers,
    FSDP and DeepSpeed, raise :class:`~lti_reduce_torch.distributed.UnsupportedWrapperError`).
    With gradient accumulation an event fires only after a real optimizer step. Events
    are global steps (optimizer steps), as ``Trainer(max_steps=...)`` counts them.

    Examples
    --------
    >>> trainer = Trainer(callbacks=[CompreSSMCallback(energy=0.1, events=[500, 1000])])  # doctest: +SKIP
    """

    def __init__(self, *, monitor=None, timeout=60.0, log_prefix="compressm", **schedule):
        super().__init__()
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor must be None or a key of trainer.callback_metrics (str), got {monitor!r}")
        if not isinstance(log_prefix, str):
            raise TypeError(f"log_prefix must be a str, got {type(log_prefix).__name__}")
        if schedule.get("mode") == "pragmatic" and monitor is None:
            raise InvalidParameterError("mode='pragmatic' needs monitor= (the validation metric's key)")
        if "log" in schedule:
            raise TypeError("log= is not a CompreSSMCallback argument: events are logged through pl_module.log "
                            "and kept in compressor.history")
        self.monitor, self.timeout, self.log_prefix = monitor, timeout, log_prefix
        self.schedule = dict(schedule)
        self.compressor = None
        self.reports = []
        self._state = None
        self._last_step = None
        self._patched = None

    # ------------------------------------------------------------------ checkpoint loading
    def setup(self, trainer, pl_module, stage):
        if stage != "fit":
            return
        original = pl_module.on_load_checkpoint

        def resize_then_load(checkpoint):
            # Lightning calls this hook just before strategy.load_model_state_dict: resize the
            # layers to the stored state dimensions (and load, which Lightning repeats)
            result = load_reduced_state_dict_(pl_module, checkpoint["state_dict"], strict=pl_module.strict_loading)
            for opt in trainer.optimizers:   # built already only by strategies that restore after setup
                rebind_optimizer_(opt, result.replacements)
            return original(checkpoint)

        pl_module.on_load_checkpoint = resize_then_load
        self._patched = pl_module

    def teardown(self, trainer, pl_module, stage):
        if self._patched is not None:
            vars(self._patched).pop("on_load_checkpoint", None)
            self._patched = None

    def state_dict(self):
        if self.compressor is not None:
            return self.compressor.state_dict()
        return dict(self._state) if self._state is not None else {}

    def load_state_dict(self, state_dict):
        if self.compressor is not None:
            self.compressor.load_state_dict(state_dict)
        else:
            self._state = state_dict   # applied at on_fit_start, once the optimizers exist

    # ------------------------------------------------------------------ schedule
    def on_fit_start(self, trainer, pl_module):
        optimizers = list(trainer.optimizers)
        if trainer.world_size > 1:
            strategy = trainer.strategy
            if not hasattr(strategy, "_setup_model") or not hasattr(strategy, "_register_ddp_hooks"):
                raise UnsupportedWrapperError(f"strategy {type(strategy).__name__} is not supported by "
                                              "CompreSSMCallback; use strategy='ddp' (or a single device)")

            def rewrap(module):
                strategy.model = strategy._setup_model(module)
                strategy._register_ddp_hooks()
                return strategy.model

            self.compressor = DistributedCompressor(pl_module, optimizers, rewrap=rewrap, timeout=self.timeout,
                                                    **self.schedule)
        else:
            self.compressor = Compressor(pl_module, optimizers, **self.schedule)
        if self._state:
            self.compressor.load_state_dict(self._state)
            self._state = None
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step == self._last_step:   # gradient accumulation: no optimizer step at this batch
            return
        self._last_step = step
        report = self.compressor.step(step)
        if report is not None:
            self.reports.append(report)
            self._log(pl_module, report)

    def on_validation_end(self, trainer, pl_module):
        if self.monitor is None or trainer.sanity_checking or self.compressor is None:
            return
        if self.monitor not in trainer.callback_metrics:
            raise InvalidParameterError(f"monitor={self.monitor!r} is not in trainer.callback_metrics "
                                        f"({sorted(trainer.callback_metrics)}); log it in validation_step")
        self.compressor.step(trainer.global_step, metric=float(trainer.callback_metrics[self.monitor]))

    def _log(self, pl_module, report):
        for layer in report.layers:
            key = f"{self.log_prefix}/{layer.name}"
            pl_module.log(f"{key}/state_size", float(layer.new_n), on_step=True, on_epoch=False)
            pl_module.log(f"{key}/hsv_tail", _tail(layer.hsv, layer.new_n), on_step=True, on_epoch=False)
            if layer.error_bound is not None:
                pl_module.log(f"{key}/error_bound", float(layer.error_bound), on_step=True, on_epoch=False)
