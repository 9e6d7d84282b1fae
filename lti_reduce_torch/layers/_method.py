"""Which evaluation method ``mode='auto'`` picks: :func:`auto_method`."""

__all__ = ["auto_method"]


def auto_method(kind, h, n, length, batch, device):
    """The evaluation method ``mode='auto'`` picks.

    Parameters
    ----------
    kind : {'mimo', 'channel', 'dense'}
        MIMO diagonal (LRU, S5), per-channel diagonal (S4D), or dense (DenseLTI).
    h, n, length, batch : int
    device : torch.device

    Notes
    -----
    CPU rules, from forward+backward measurements at length 784, batch 16, one thread
    (``benchmarks/bench_layers.py``, ``benchmarks/results_layers.txt``):

    * ``'fft'`` for MIMO diagonal layers when ``h <= 16`` or ``h**2 <= 4 n``: its cost is
      O(L n h^2) for the kernel plus O(batch h^2 L log L) for the convolution, against
      O(batch L n h) for the projections of a scan; at h = 8 it is 10-30x faster than any
      scan, but almost flat in n (the FFTs, not the kernel, dominate).
    * otherwise ``'assoc'`` when ``batch * n <= 1024`` (few, large operations beat L small
      ones when the state is small) and ``'sequential'`` above (the doubling's log2(L)
      times more elementwise work then dominates).
    * S4D: always ``'fft'`` (the scans materialise batch x L x h x n states).
    * DenseLTI: ``'fft'`` when ``h <= 16``, else ``'sequential'`` (``'assoc'`` costs
      log2(L) times the O(L n^2) work of the loop).

    Non-CPU devices (not measured here): ``'fft'`` when ``h <= 64`` or for S4D, else
    ``'assoc'`` (log-depth, no per-step launches). Pass ``mode=`` to override.
    """
    dev = getattr(device, "type", str(device))
    if kind == "channel":
        return "fft"
    if dev != "cpu":
        return "fft" if h <= 64 else "assoc"
    if kind == "dense":
        return "fft" if h <= 16 else "sequential"
    if h <= 16 or h * h <= 4 * n:
        return "fft"
    return "assoc" if batch * n <= 1024 else "sequential"
