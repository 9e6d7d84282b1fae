"""Generated tasks whose needed state size is known by construction.

``lag-correlation``: every channel ``c`` of an input ``u`` (length L, C channels) is a
stationary lag-T autoregression ``u_t = rho_c u_{t-T} + sqrt(1 - rho_c^2) e_t`` (``e`` white
standard normal, ``u_t = e_t`` for ``t < T``: unit variance throughout) with ``rho_c = +rho``
or ``-rho``; the label is the binary code of the C signs (``2^C`` classes, balanced).

Why it needs state: the sufficient statistic of a channel is its lag-T autocorrelation
``s_c = sum_t u_t u_{t-T}``, a product of the input with the input delayed by exactly T
steps. The ideal filter is the pure delay ``z^-T``, whose T Hankel singular values are all 1
(McMillan degree T, no gap: any reduction below T states keeps a Hankel-norm error of 1).
So a model reproducing the optimal detector needs ``C * T`` (complex: >= ``C * T / 2``)
states; fewer states can only estimate ``s_c`` from part of the spectrum (each resonant mode
sees a band of width ~pi/T of the periodogram), which costs accuracy gradually. The oracle
(``sign(s_c)`` per channel, :func:`lag_correlation_oracle`) gives the ceiling.

Everything is generated from a seed with ``numpy.random.default_rng``; nothing is downloaded.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["LagCorrelationSpec", "make_lag_correlation", "lag_correlation_oracle", "needed_state_size"]


class LagCorrelationSpec(NamedTuple):
    """Parameters of the lag-correlation task (defaults: the ``lagcorr`` preset's data)."""

    seq_len: int = 256
    channels: int = 2
    lag: int = 12
    rho: float = 0.3
    n_train: int = 4000
    n_val: int = 1000
    n_test: int = 2000


def _generate(spec, n, rng):
    L, C, T, rho = spec.seq_len, spec.channels, spec.lag, float(spec.rho)
    bits = rng.integers(0, 2, size=(n, C))
    r = np.where(bits == 1, rho, -rho)                       # (n, C)
    e = rng.standard_normal((n, L, C))
    u = np.empty_like(e)
    u[:, :T] = e[:, :T]
    scale = np.sqrt(1.0 - r ** 2)[:, None, :]
    for t0 in range(T, L, T):                                # vectorised over blocks of T steps
        t1 = min(t0 + T, L)
        u[:, t0:t1] = r[:, None, :] * u[:, t0 - T:t1 - T] + scale * e[:, t0:t1]
    labels = (bits * (1 << np.arange(C))).sum(axis=1)
    return u, labels


def make_lag_correlation(spec=LagCorrelationSpec(), seed=0):
    """``(x_train, y_train, x_val, y_val, x_test, y_test)``; x float64 (N, L, C), y int64.

    Deterministic in ``(spec, seed)``; the three splits are drawn from independent streams.

    Raises
    ------
    ValueError
        ``lag`` not in [1, seq_len), ``rho`` not in (0, 1), or a non-positive size.
    """
    if not 1 <= int(spec.lag) < int(spec.seq_len):
        raise ValueError(f"lag must lie in [1, seq_len={spec.seq_len}), got {spec.lag}")
    if not 0.0 < float(spec.rho) < 1.0:
        raise ValueError(f"rho must lie in (0, 1), got {spec.rho}")
    for f in ("channels", "n_train", "n_val", "n_test"):
        if int(getattr(spec, f)) < 1:
            raise ValueError(f"{f} must be a positive integer, got {getattr(spec, f)}")
    streams = np.random.SeedSequence([int(seed), 14]).spawn(3)
    out = []
    for n, ss in zip((spec.n_train, spec.n_val, spec.n_test), streams):
        x, y = _generate(spec, int(n), np.random.default_rng(ss))
        out += [x, y.astype(np.int64)]
    return tuple(out)


def lag_correlation_oracle(x, lag):
    """The detector ``sign(sum_t u_t[c] u_{t-lag}[c])`` per channel, coded as a label.

    Parameters
    ----------
    x : ndarray, shape (N, L, C)
    lag : int

    Returns
    -------
    ndarray of int64, shape (N,)
    """
    x = np.asarray(x, dtype=np.float64)
    s = np.einsum("nlc,nlc->nc", x[:, lag:], x[:, :-lag])
    return ((s > 0).astype(np.int64) * (1 << np.arange(x.shape[2]))).sum(axis=1)


def needed_state_size(spec):
    """``(real-state count C*T, complex-mode count ceil(C*T/2))`` of the ideal filter bank."""
    real = int(spec.channels) * int(spec.lag)
    return real, -(-real // 2)
