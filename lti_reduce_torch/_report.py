"""What :func:`~lti_reduce_torch.reduce_` returns: :class:`ReductionReport` of :class:`LayerReduction`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

__all__ = ["LayerReduction", "ReductionReport"]


@dataclass(frozen=True)
class LayerReduction:
    """What happened to one layer.

    Attributes
    ----------
    name : str
        Qualified module name (as in ``model.named_modules()``).
    old_n, new_n : int
        State dimension before and after (equal unless ``status == 'reduced'``).
    hsv : list of float, or list of list of float
        Hankel singular values of the layer before the reduction, descending; one list
        per channel (row-major) for layers with independent channels (batched ``to_lti``).
    error_bound : float or None
        A-priori bound on the H-infinity norm of the change of the layer's LTI system:
        ``2 * sum of the truncated HSVs`` for balanced truncation (max over channels for
        channel-batched layers, whose transfer matrix is block diagonal); for the modal
        ablations the triangle-inequality bound ``sum ||b_i|| ||c_i|| / (1 - |lambda_i|)``
        over the dropped modes; 0 for unchanged layers; None for finite-horizon balanced
        truncation (no a-priori bound holds).
    seconds : float
        Wall-clock time spent on this layer (its share of the batched HSV and truncation
        computations of its group plus its own rebuild).
    status : {'reduced', 'unchanged', 'refused'}
    reason : str
        Why the layer is unchanged or refused, or notes on a reduction (empty otherwise).
    """

    name: str
    old_n: int
    new_n: int
    hsv: list
    error_bound: float | None
    seconds: float
    status: str
    reason: str = ""

    def to_dict(self):
        """Plain-dict form (JSON-ready)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ReductionReport:
    """Outcome of :func:`reduce_` (and of a :class:`~lti_reduce_torch.schedule.Compressor` event).

    Attributes
    ----------
    layers : tuple of LayerReduction
        One entry per considered layer, in model order.
    seconds : float
        Wall-clock time of the whole call (HSVs, truncation, rebuild, swap).
    criterion : str
        The order criterion, e.g. ``'energy=0.1'``.
    select : str
        Name of the selection method (``'balanced'``, ``'smallest'``, ``'random'`` or a
        :class:`~lti_reduce_torch.selection.SelectionMethod`'s ``name``).
    step : int or None
        Training step, when produced by a Compressor.
    """

    layers: tuple
    seconds: float
    criterion: str
    select: str = "balanced"
    step: int | None = None

    @property
    def changed(self):
        """True if at least one layer was reduced."""
        return any(layer.status == "reduced" for layer in self.layers)

    @property
    def sizes(self):
        """``{name: new_n}`` for every considered layer."""
        return {layer.name: layer.new_n for layer in self.layers}

    def __getitem__(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r} in this report; layers: {[x.name for x in self.layers]}")

    def to_dict(self):
        """Plain-dict form (JSON-ready)."""
        return {"step": self.step, "criterion": self.criterion, "select": self.select,
                "seconds": self.seconds, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self):
        """One JSON line (no newline inside; strict JSON, no NaN)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    def __str__(self):
        head = f"ReductionReport({self.criterion}, select={self.select}"
        head += f", step={self.step}" if self.step is not None else ""
        head += f", {self.seconds:.3f} s)"
        width = max([5] + [len(layer.name) for layer in self.layers])
        lines = [head, f"{'layer':<{width}}  {'n_old':>6}  {'n_new':>6}  {'status':<9}  {'bound':>9}  "
                        f"{'time[s]':>8}  reason"]
        for x in self.layers:
            bound = "-" if x.error_bound is None else f"{x.error_bound:.3g}"
            lines.append(f"{x.name or '<model>':<{width}}  {x.old_n:>6}  {x.new_n:>6}  {x.status:<9}  "
                         f"{bound:>9}  {x.seconds:>8.3f}  {x.reason}")
        return "\n".join(lines)
