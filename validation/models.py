"""The published classifier, generic over the SSM layer class.

Block (as in the LRU / CompreSSM papers)::

    x -> BatchNorm -> SSM layer -> GELU -> dropout -> Linear(h, 2h) -> GLU -> dropout -> + x

Model: linear encoder (C -> h) -> blocks -> mean over time -> linear head (h -> classes).

``layer_cls(h, n)`` must map ``(batch, L, h) -> (batch, L, h)`` (real tensors); any class
with an ``lti_reduce_torch`` adapter can then be compressed in place.
"""

from torch import nn
import torch.nn.functional as F

from lti_reduce_torch.layers import LRU

__all__ = ["SSMBlock", "SSMClassifier", "default_layer_cls", "ssm_layers"]


def default_layer_cls():
    """The published LRU (``readout='post'``: ``y_k = Re(C x_k) + D u_k``) from ``lti_reduce_torch``."""
    return LRU


class SSMBlock(nn.Module):
    """BatchNorm -> SSM -> GELU -> dropout -> GLU -> dropout -> residual."""

    def __init__(self, h, n, layer_cls, dropout=0.0):
        super().__init__()
        self.norm = nn.BatchNorm1d(h)
        self.ssm = layer_cls(h, n)
        self.out = nn.Linear(h, 2 * h)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        z = self.norm(x.transpose(1, 2)).transpose(1, 2)
        z = self.ssm(z)
        z = self.drop(F.gelu(z))
        z = self.drop(F.glu(self.out(z), dim=-1))
        return x + z


class SSMClassifier(nn.Module):
    """Linear encoder -> ``len(ns)`` blocks -> mean pool over time -> linear head.

    Parameters
    ----------
    d_input, n_classes : int
    h : int
        Model width (SSM input/output channels).
    ns : int or sequence of int
        State size of each block's SSM layer (an int with ``blocks`` gives all the same size).
    blocks : int, optional
        Number of blocks when ``ns`` is an int.
    layer_cls : callable ``(h, n) -> nn.Module``, optional
        Default: ``lti_reduce_torch.layers.LRU``.
    dropout : float
    """

    def __init__(self, d_input, n_classes, h, ns, blocks=None, layer_cls=None, dropout=0.0):
        super().__init__()
        if isinstance(ns, int):
            ns = [ns] * (blocks or 1)
        elif blocks is not None and len(ns) != blocks:
            raise ValueError(f"got {len(ns)} state sizes for {blocks} blocks")
        layer_cls = layer_cls or default_layer_cls()
        self.encoder = nn.Linear(d_input, h)
        self.blocks = nn.ModuleList(SSMBlock(h, int(n), layer_cls, dropout) for n in ns)
        self.head = nn.Linear(h, n_classes)

    def forward(self, x):
        z = self.encoder(x)
        for block in self.blocks:
            z = block(z)
        return self.head(z.mean(dim=1))


def ssm_layers(model):
    """``[(qualified name, module)]`` of the blocks' SSM layers, in order."""
    return [(f"blocks.{i}.ssm", b.ssm) for i, b in enumerate(model.blocks)]
