"""A small LightningModule with CompreSSM, and a script entry point for ``strategy='ddp'`` runs.

Run as a script (``python tests/torch/lightning_job.py OUT_DIR``) it trains on 2 CPU
processes with ``strategy='ddp'`` (Lightning relaunches this script for rank 1) and each
rank writes its state digest after every event and at the end to ``OUT_DIR/rank{r}.pt``.
With ``--resume`` it trains three times on 2 processes instead: uninterrupted, then to a
checkpoint after two of three events, then from that checkpoint into a freshly built
full-size module; each rank writes both final digests to ``OUT_DIR/resume{r}.pt``.
"""

import os
import sys
import warnings

import torch
from torch import nn

import lightning as pl

if not __package__:   # run as a script (Lightning relaunches it for rank 1): the checkout's ``tests``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from lti_reduce_torch import state_sizes  # noqa: E402
from lti_reduce_torch.distributed import state_digest  # noqa: E402
from lti_reduce_torch.lightning import CompreSSMCallback  # noqa: E402
from tests.torch.tiny_net import TinyNet, inputs_and_target  # noqa: E402


class TinySSM(TinyNet, pl.LightningModule):
    """TinyNet as a LightningModule: MSE regression, Adam with a StepLR schedule."""

    def __init__(self, lr=1e-2):
        super().__init__()
        self.lr = lr
        self.losses = []

    def training_step(self, batch, batch_idx):
        u, y = batch
        loss = nn.functional.mse_loss(self(u), y)
        self.losses.append(float(loss.detach()))
        return loss

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.7)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def dataset(size=32):
    return torch.utils.data.TensorDataset(*inputs_and_target(torch.Generator().manual_seed(7), size))


def loader(batch_size=8):
    return torch.utils.data.DataLoader(dataset(), batch_size=batch_size, shuffle=False)


def trainer(callbacks, max_epochs, **kw):
    options = dict(accelerator="cpu", devices=1, max_epochs=max_epochs, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, enable_checkpointing=False, callbacks=callbacks)
    options.update(kw)
    return pl.Trainer(**options)


class Digests(pl.Callback):
    """Records the state digest of the module and optimizers after every event of a CompreSSMCallback."""

    def __init__(self, compressm):
        self.compressm, self.events, self.wrapped = compressm, [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if len(self.compressm.reports) > len(self.events):
            self.events.append((trainer.global_step, state_digest(pl_module, trainer.optimizers)))
            wrapper = trainer.strategy.model
            self.wrapped.append(type(wrapper).__name__ == "DistributedDataParallel" and wrapper.module is pl_module)


def ddp_main(out):
    warnings.filterwarnings("ignore")
    compressm = CompreSSMCallback(mode="fixed", fraction=0.25, events=[2, 5], timeout=30)
    digests = Digests(compressm)
    model = TinySSM()
    t = trainer([compressm, digests], max_epochs=3, strategy="ddp", devices=2)
    t.fit(model, loader(batch_size=4))
    record = {"events": digests.events, "final": state_digest(model, t.optimizers), "sizes": state_sizes(model),
              "losses": model.losses, "wrapped": digests.wrapped,
              "bound": {id(p) for g in t.optimizers[0].param_groups for p in g["params"]}
              == {id(p) for p in model.parameters()}, "world": t.world_size}
    torch.save(record, os.path.join(out, f"rank{t.global_rank}.pt"))


def ddp_resume_main(out):
    from lightning.pytorch.callbacks import ModelCheckpoint
    warnings.filterwarnings("ignore")

    def schedule():
        return CompreSSMCallback(mode="fixed", fraction=0.25, events=[2, 5, 10], timeout=30)

    def ddp(callbacks, max_epochs):
        return trainer(callbacks, max_epochs=max_epochs, strategy="ddp", devices=2,
                       enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks))

    folder = os.path.join(out, "checkpoints")
    reference = TinySSM()
    t = ddp([schedule()], max_epochs=3)                 # 4 steps an epoch on each rank: events 2, 5, 10
    t.fit(reference, loader(batch_size=4))
    uninterrupted = state_digest(reference, t.optimizers)
    first = TinySSM()
    t = ddp([schedule(), ModelCheckpoint(dirpath=folder, save_last=True, save_top_k=0)], max_epochs=2)
    t.fit(first, loader(batch_size=4))                  # stops after step 8: events 2 and 5 fired
    at_checkpoint = state_sizes(first)
    fresh = TinySSM()                                   # built at full size
    built = state_sizes(fresh)
    compressm = schedule()
    digests = Digests(compressm)
    t = ddp([compressm, digests, ModelCheckpoint(dirpath=folder, save_last=True, save_top_k=0)], max_epochs=3)
    t.fit(fresh, loader(batch_size=4), ckpt_path=os.path.join(folder, "last.ckpt"))
    record = {"uninterrupted": uninterrupted, "resumed": state_digest(fresh, t.optimizers),
              "sizes": (built, at_checkpoint, state_sizes(reference), state_sizes(fresh)),
              "fired": sorted(compressm.compressor.compressor.fired), "events": [r.step for r in compressm.reports],
              "wrapped": digests.wrapped, "bound": {id(p) for g in t.optimizers[0].param_groups for p in g["params"]}
              == {id(p) for p in fresh.parameters()}, "world": t.world_size}
    torch.save(record, os.path.join(out, f"resume{t.global_rank}.pt"))


if __name__ == "__main__":
    if "--resume" in sys.argv[2:]:
        ddp_resume_main(sys.argv[1])
    else:
        ddp_main(sys.argv[1])
