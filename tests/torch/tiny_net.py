"""The small regression model of the multi-process tests (DDP in test_distributed.py, Lightning in lightning_job.py).

Imports torch and the package only (no pytest, no Lightning): spawned workers and the
Lightning script import it too.
"""

import torch
from torch import nn

from lti_reduce_torch import LRU, S5

H, N, L = 4, 12, 8          # width, state size of each SSM layer, sequence length


class TinyNet(nn.Module):
    """Linear -> LRU -> S5 -> mean -> Linear (a regression head); parameters drawn with seed 0."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(2, H)
        self.lru = LRU(H, N, readout="pre", mode="sequential")
        self.s5 = S5(H, N, mode="sequential")
        self.head = nn.Linear(H, 1)

    def forward(self, u):
        x = self.encoder(u)
        x = x + self.lru(x)
        x = x + self.s5(x)
        return self.head(x.mean(1)).squeeze(-1)


def inputs_and_target(generator, size):
    """``size`` random input sequences (size, L, 2) and their target, a fixed smooth function of the input."""
    u = torch.randn(size, L, 2, generator=generator)
    return u, u[..., 0].cumsum(1).mean(1) * 0.5
