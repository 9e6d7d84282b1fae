"""Worked example: in-training compression of an LRU layer (CompreSSM) with PyTorch.

Run from the repository root::

    python docs/examples/compress_lru_torch.py

Every number printed in the PyTorch section of the "Examples" page is this script's
output (CPU, torch float32 parameters; the reduction itself runs in complex128).
"""

import torch
from torch import nn

from lti_reduce_torch.layers import LRU
from lti_reduce_torch.reduce import reduce_, state_sizes

torch.manual_seed(0)
torch.set_num_threads(1)


class Model(nn.Module):
    def __init__(self, h=8, n=64):
        super().__init__()
        self.encoder = nn.Linear(1, h)
        self.ssm = LRU(h, n)              # the published LRU (readout='post')
        self.head = nn.Linear(h, 1)

    def forward(self, u):                 # u: (batch, length, 1)
        return self.head(torch.nn.functional.gelu(self.ssm(self.encoder(u))))


model = Model()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
u = torch.randn(16, 128, 1)
target = torch.cumsum(u, dim=1) * 0.1     # a toy sequence task: leaky running sum


def train(steps):
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(u), target)
        loss.backward()
        optimizer.step()
    return loss.item()


print("state sizes before:", state_sizes(model))
print(f"loss after 20 steps: {train(20):.4f}")

# one CompreSSM event: tau = 0.1 on the current system, reduce only if r < 0.95 n;
# the optimizer is rebound in place (the reduced parameters take the old ones' places)
report = reduce_(model, energy=0.1, min_ratio=0.95, optimizers=optimizer)
print(report)
layer = report["ssm"]
print("largest HSVs:", [round(s, 4) for s in layer.hsv[:5]])
print("state sizes after:", state_sizes(model))
print(f"loss after 20 more steps: {train(20):.4f}")
