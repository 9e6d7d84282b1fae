"""A small LightningModule with CompreSSM, and a script entry point for ``strategy='ddp'`` runs.

Run as a script (``python tests/torch/lightning_job.py OUT_DIR``) it trains on 2 CPU
processes with ``strategy='ddp'`` (Lightning relaunches this script for rank 1) and each
rank writes its state digest after every event and at the end to ``OUT_DIR/rank{r}.pt``.
"""

import os
import sys
import warnings

import torch
from torch import nn

import lightning as pl
from lti_reduce_torch import LRU, S5, state_sizes
from lti_reduce_torch.distributed import state_digest
from lti_reduce_torch.lightning import CompreSSMCallback

H, N, L = 4, 12, 8


class TinySSM(pl.LightningModule):
    """Linear -> LRU -> S5 -> mean -> Linear regression, Adam with a StepLR schedule."""

    def __init__(self, lr=1e-2):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(2, H)
        self.lru = LRU(H, N, readout="pre", mode="sequential")
        self.s5 = S5(H, N, mode="sequential")
        self.head = nn.Linear(H, 1)
        self.lr = lr
        self.losses = []

    def forward(self, u):
        x = self.encoder(u)
        x = x + self.lru(x)
        x = x + self.s5(x)
        return self.head(x.mean(1)).squeeze(-1)

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
    g = torch.Generator().manual_seed(7)
    u = torch.randn(size, L, 2, generator=g)
    return torch.utils.data.TensorDataset(u, u[..., 0].cumsum(1).mean(1) * 0.5)


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


if __name__ == "__main__":
    ddp_main(sys.argv[1])
