"""CompreSSMCallback: single device, ddp on 2 CPU processes, checkpoint resume into a full-size module."""

import os
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402

from lti_reduce import InvalidParameterError  # noqa: E402
from lti_reduce_torch import state_sizes  # noqa: E402
from lti_reduce_torch.lightning import CompreSSMCallback  # noqa: E402
from tests.torch.lightning_job import TinySSM, loader, trainer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Lightning's advice for real jobs (more dataloader workers, a logger, ...) does not apply here, and
# Lightning 2.6 uses a torch.utils._pytree API that torch 2.13 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning",
                                        "ignore:.*does not have many workers:UserWarning",
                                        "ignore:`isinstance.treespec, LeafSpec.` is deprecated:FutureWarning")


def schedule():
    return CompreSSMCallback(mode="fixed", fraction=0.25, events=[2, 6, 10])


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_single_device_reduces_rebinds_and_logs():
    cb = schedule()
    model = TinySSM()
    t = trainer([cb], max_epochs=3)
    t.fit(model, loader())
    assert [r.step for r in cb.reports] == [2, 6, 10]
    assert state_sizes(model) == {"lru": 5, "s5": 5}          # 12 -> 9 -> 7 -> 5
    opt = t.optimizers[0]
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in model.parameters()]
    assert t.lr_scheduler_configs[0].scheduler.optimizer is opt
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.7 ** 4)   # 12 steps, StepLR(3) kept stepping
    logged = t.logged_metrics
    assert float(logged["compressm/lru/state_size"]) == 5.0
    hsv = cb.reports[-1]["lru"].hsv
    assert float(logged["compressm/lru/hsv_tail"]) == pytest.approx(sum(hsv[5:]), rel=1e-6)
    assert float(logged["compressm/s5/error_bound"]) == pytest.approx(cb.reports[-1]["s5"].error_bound, rel=1e-6)
    assert sum(model.losses[-4:]) < sum(model.losses[:4])


def test_pragmatic_needs_monitor():
    with pytest.raises(InvalidParameterError, match="monitor"):
        CompreSSMCallback(mode="pragmatic", energy=0.1, events=[2])


def test_resume_from_reduced_checkpoint_is_bit_identical(tmp_path):
    full = TinySSM()
    trainer([schedule()], max_epochs=3).fit(full, loader())

    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    first = TinySSM()
    trainer([schedule(), ckpt], max_epochs=2, enable_checkpointing=True).fit(first, loader())
    assert state_sizes(first) == {"lru": 7, "s5": 7}          # events 2 and 6 fired before the checkpoint

    fresh = TinySSM()                                          # built at full size
    assert state_sizes(fresh) == {"lru": 12, "s5": 12}
    cb = schedule()
    again = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)   # same callback config
    t = trainer([cb, again], max_epochs=3, enable_checkpointing=True)
    t.fit(fresh, loader(), ckpt_path=str(tmp_path / "last.ckpt"))
    assert [r.step for r in cb.reports] == [10]                # 2 and 6 are known to have fired
    assert sorted(cb.compressor.fired) == [2, 6, 10]
    assert state_sizes(fresh) == state_sizes(full) == {"lru": 5, "s5": 5}
    a, b = params(full), params(fresh)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)             # bit for bit


def test_ddp_two_cpu_processes_identical(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    env.pop("MASTER_PORT", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "torch" / "lightning_job.py"), str(tmp_path)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert r0["world"] == r1["world"] == 2
    assert [s for s, _ in r0["events"]] == [2, 5]
    assert r0["events"] == r1["events"] and r0["final"] == r1["final"]
    assert r0["sizes"] == r1["sizes"] == {"lru": 7, "s5": 7}
    assert r0["wrapped"] == r1["wrapped"] == [True, True] and r0["bound"] and r1["bound"]
    assert r0["losses"] != r1["losses"]                        # different shards, same replica


def test_ddp_resume_from_reduced_checkpoint_is_bit_identical(tmp_path):
    """strategy='ddp' on 2 CPU processes: a run interrupted after two of three events and resumed
    with ckpt_path into a freshly built full-size module ends bit for bit where the uninterrupted
    run ends (parameters and optimizer state, on both ranks), re-wrapped by DDP at the last event."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    env.pop("MASTER_PORT", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "torch" / "lightning_job.py"), str(tmp_path),
                           "--resume"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"resume{r}.pt", weights_only=False) for r in range(2))
    for record in (r0, r1):
        assert record["world"] == 2
        built, at_checkpoint, uninterrupted, resumed = record["sizes"]
        assert built == {"lru": 12, "s5": 12} and at_checkpoint == {"lru": 7, "s5": 7}
        assert uninterrupted == resumed == {"lru": 5, "s5": 5}
        assert record["events"] == [10] and record["fired"] == [2, 5, 10]   # 2 and 5 restored as fired
        assert record["wrapped"] == [True] and record["bound"]
        assert record["resumed"] == record["uninterrupted"]
    assert r0["resumed"] == r1["resumed"]


class Watched(TinySSM):
    """Validation metric = the LRU's state size: any reduction is a 'drop' that must be rolled back."""

    def validation_step(self, batch, batch_idx):
        self.log("width", float(self.lru.nu_log.shape[0]))


def test_pragmatic_rollback_through_validation_metric():
    cb = CompreSSMCallback(mode="pragmatic", fraction=0.25, events=[5], monitor="width")
    model = Watched()
    t = trainer([cb], max_epochs=3, limit_val_batches=1, num_sanity_val_steps=0)
    t.fit(model, loader(), loader())
    assert [r.step for r in cb.reports] == [5]                       # validation at step 4 gave the metric
    assert [h["event"] for h in cb.compressor.history] == ["reduce", "rollback"]
    assert cb.compressor.stopped and state_sizes(model) == {"lru": 12, "s5": 12}
    opt = t.optimizers[0]
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in model.parameters()]
