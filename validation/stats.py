"""Paired statistics for seed-matched comparisons (numpy/scipy only).

A comparison of methods A and B pairs runs by seed (same initialisation, same data order), so
the unit of analysis is the per-seed difference ``d_s = acc_A(s) - acc_B(s)``. We report its
mean with a 95 % confidence interval from Student's t and from a percentile bootstrap, call the
difference *resolved* only when the interval excludes 0, and estimate from a pilot's standard
deviation how many seeds would resolve a given effect (normal-approximation power formula).
"""

from typing import NamedTuple

import math

import numpy as np
from scipy import stats as _sps

__all__ = ["PairedDifference", "paired_difference", "bootstrap_ci", "seeds_needed", "pair_by_seed",
           "wilcoxon_p", "holm_adjusted"]


class PairedDifference(NamedTuple):
    """Mean paired difference with its 95 % intervals (units of the inputs)."""

    n: int
    mean: float
    sd: float
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float
    p_value: float          # two-sided paired t-test
    resolved: bool          # the t interval AND the bootstrap interval exclude 0

    def text(self, scale=1.0, unit=""):
        """``'+0.42 [t: -0.10, +0.94; boot: ...] n=10, not resolved'`` (values times ``scale``)."""
        f = lambda v: f"{scale * v:+.2f}"  # noqa: E731
        return (f"{f(self.mean)}{unit} (t 95% CI {f(self.t_low)}, {f(self.t_high)}; bootstrap {f(self.boot_low)}, "
                f"{f(self.boot_high)}; n={self.n}, p={self.p_value:.3g}) "
                f"{'resolved' if self.resolved else 'not resolved'}")


def bootstrap_ci(d, *, level=0.95, resamples=10_000, seed=0):
    """Percentile-bootstrap interval of the mean of ``d`` (deterministic in ``seed``).

    Parameters
    ----------
    d : array_like, shape (n,)
    level : float
    resamples : int
    seed : int

    Returns
    -------
    (float, float)
    """
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"d must be a 1-D array of at least 2 values, got shape {d.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(int(resamples), d.size))
    means = d[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


def paired_difference(a, b, *, level=0.95, resamples=10_000, seed=0):
    """Statistics of ``a - b`` for seed-paired samples.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Per-seed results of the two methods, in the same seed order (n >= 2).

    Returns
    -------
    PairedDifference

    Raises
    ------
    ValueError
        Shapes differ, fewer than 2 pairs, or a non-finite value.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length (paired by seed), got shapes {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError(f"need at least 2 seed pairs, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite")
    d = a - b
    n, mean = d.size, float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        lo = hi = mean
        p = 1.0 if mean == 0.0 else 0.0
    else:
        half = float(_sps.t.ppf(0.5 + level / 2.0, n - 1)) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
        p = float(2.0 * _sps.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    blo, bhi = bootstrap_ci(d, level=level, resamples=resamples, seed=seed)
    resolved = bool((lo > 0 or hi < 0) and (blo > 0 or bhi < 0))
    return PairedDifference(n, mean, sd, lo, hi, blo, bhi, p, resolved)


def wilcoxon_p(a, b):
    """Two-sided Wilcoxon signed-rank p-value of ``a - b`` (robust to the occasional seed whose
    training fails, which makes the t interval wide); 1.0 when every difference is 0."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    return float(_sps.wilcoxon(d, zero_method="wilcox").pvalue)


def holm_adjusted(p_values):
    """Holm's step-down adjusted p-values (family-wise error control over many comparisons).

    With ``m`` p-values sorted ascending ``p_(1) <= ... <= p_(m)``, the adjusted value of
    ``p_(k)`` is ``max_{j <= k} min(1, (m - j + 1) p_(j))``; returned in the input's order.
    A comparison survives at level alpha when its adjusted value is <= alpha.

    Raises
    ------
    ValueError
        A p-value outside [0, 1] or not finite.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p_values must be a 1-D sequence of numbers in [0, 1], got {p_values!r}")
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(stepped)
    return out


def seeds_needed(sd, effect, *, level=0.95, power=0.8):
    """Seeds for a paired two-sided test at ``level`` to detect ``effect`` with ``power``.

    Normal approximation ``n = ((z_{1-alpha/2} + z_power) sd / effect)^2`` rounded up, then
    raised until the t-based version holds (t quantiles with n - 1 degrees of freedom), at
    least 2. ``sd`` is the pilot's standard deviation of the paired differences.

    Raises
    ------
    ValueError
        ``effect`` is not positive or ``sd`` is negative / not finite.
    """
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be a finite number >= 0, got {sd}")
    if not effect > 0:
        raise ValueError(f"effect must be positive, got {effect}")
    if sd == 0:
        return 2
    zb = _sps.norm.ppf(power)
    n = max(2, math.ceil(((_sps.norm.ppf(0.5 + level / 2) + zb) * sd / effect) ** 2))
    while ((_sps.t.ppf(0.5 + level / 2, n - 1) + _sps.t.ppf(power, n - 1)) * sd / effect) ** 2 > n:
        n += 1
    return n


def pair_by_seed(runs, method_a, method_b, *, key="test_acc", tau=None):
    """``(seeds, a, b)`` of the seeds present for both methods (records of ``results.json``).

    ``tau`` filters records that carry one (None: any)."""
    def pick(method):
        return {r["seed"]: r[key] for r in runs
                if r["method"] == method and (tau is None or r.get("tau") in (None, tau))}
    pa, pb = pick(method_a), pick(method_b)
    seeds = sorted(set(pa) & set(pb))
    return seeds, np.array([pa[s] for s in seeds]), np.array([pb[s] for s in seeds])
