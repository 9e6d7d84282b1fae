"""Fast checks of validation.stats (paired intervals, power) and validation.tasks (ground truth)."""

import numpy as np
import pytest
from scipy import stats as sps

from validation.stats import bootstrap_ci, pair_by_seed, paired_difference, seeds_needed
from validation.tasks import (LagCorrelationSpec, lag_correlation_oracle, make_lag_correlation,
                              needed_state_size)


# ----------------------------------------------------------------------------- stats
def test_paired_t_interval_matches_scipy_ttest():
    rng = np.random.default_rng(1)
    a = rng.normal(0.8, 0.01, 12)
    b = a - rng.normal(0.004, 0.003, 12)
    d = paired_difference(a, b)
    ref = sps.ttest_rel(a, b)
    assert d.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (d.t_low, d.t_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert d.mean == pytest.approx(np.mean(a - b))


def test_resolved_only_when_interval_excludes_zero():
    base = np.linspace(0.9, 0.95, 10)
    clear = paired_difference(base + 0.01 + np.linspace(-1e-3, 1e-3, 10), base)
    assert clear.resolved and clear.t_low > 0 and clear.boot_low > 0
    noisy = paired_difference(base + np.array([1, -1] * 5) * 0.01, base)
    assert not noisy.resolved and noisy.t_low < 0 < noisy.t_high


def test_pairing_beats_unpaired_variance():
    # a large seed effect shared by both methods cancels in the paired difference
    seed_effect = np.array([0.0, 0.05, -0.04, 0.03, -0.02, 0.01])
    a, b = 0.9 + seed_effect + 0.002, 0.9 + seed_effect
    d = paired_difference(a, b)
    assert d.sd == pytest.approx(0.0, abs=1e-12) and d.resolved


def test_bootstrap_deterministic_and_contains_mean():
    d = np.random.default_rng(3).normal(0.1, 1.0, 20)
    lo, hi = bootstrap_ci(d, seed=5)
    assert (lo, hi) == bootstrap_ci(d, seed=5)
    assert lo < d.mean() < hi


def test_seeds_needed_formula_and_monotone():
    # normal approximation: ((1.96 + 0.84) * 1 / 0.5)^2 = 31.4 -> t correction adds a couple
    n = seeds_needed(1.0, 0.5)
    assert 32 <= n <= 36
    assert seeds_needed(0.5, 0.5) < n < seeds_needed(2.0, 0.5)
    # the t-based power condition holds at the returned n
    t = sps.t.ppf(0.975, n - 1) + sps.t.ppf(0.8, n - 1)
    assert (t * 1.0 / 0.5) ** 2 <= n


def test_stats_reject_bad_input():
    with pytest.raises(ValueError, match="paired by seed"):
        paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1.0], [0.5])
    with pytest.raises(ValueError, match="effect"):
        seeds_needed(1.0, 0.0)


def test_pair_by_seed_keeps_common_seeds_in_order():
    runs = [{"method": "a", "seed": 2, "test_acc": 0.5}, {"method": "b", "seed": 2, "test_acc": 0.4},
            {"method": "a", "seed": 0, "test_acc": 0.7}, {"method": "b", "seed": 0, "test_acc": 0.6},
            {"method": "a", "seed": 1, "test_acc": 0.9}]
    seeds, a, b = pair_by_seed(runs, "a", "b")
    assert seeds == [0, 2] and a.tolist() == [0.7, 0.5] and b.tolist() == [0.6, 0.4]


# ----------------------------------------------------------------------------- tasks
SMALL = LagCorrelationSpec(seq_len=96, channels=2, lag=6, rho=0.4, n_train=300, n_val=50, n_test=400)


def test_lag_correlation_deterministic_and_seed_dependent():
    a, b = make_lag_correlation(SMALL, seed=3), make_lag_correlation(SMALL, seed=3)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], make_lag_correlation(SMALL, seed=4)[0])
    assert a[0].shape == (300, 96, 2) and a[1].dtype == np.int64 and set(np.unique(a[1])) <= {0, 1, 2, 3}


def test_lag_correlation_ground_truth():
    x, y = make_lag_correlation(SMALL, seed=0)[4:]
    # each channel is a unit-variance AR at lag T with coefficient +-rho given by the label's bit
    sign = np.where((y[:, None] >> np.arange(2)) & 1, 1.0, -1.0)            # (N, C)
    lagged = np.mean(x[:, SMALL.lag:] * x[:, :-SMALL.lag], axis=1)          # (N, C)
    assert np.mean(lagged * sign) == pytest.approx(SMALL.rho, abs=0.02)
    assert np.var(x) == pytest.approx(1.0, abs=0.03)
    # other lags carry no correlation: the information sits at exactly lag T
    other = np.mean(x[:, SMALL.lag + 1:] * x[:, :-(SMALL.lag + 1)], axis=1)
    assert abs(np.mean(other * sign)) < 0.02
    # the oracle (sign of the lag-T autocorrelation) reaches its theoretical accuracy:
    # per channel P(correct) = Phi(rho sqrt(L - T)) (asymptotically), both channels independent
    p = sps.norm.cdf(SMALL.rho * np.sqrt(SMALL.seq_len - SMALL.lag)) ** 2
    acc = np.mean(lag_correlation_oracle(x, SMALL.lag) == y)
    assert acc == pytest.approx(p, abs=0.04)
    assert needed_state_size(SMALL) == (12, 6)


def test_lag_correlation_rejects_bad_spec():
    with pytest.raises(ValueError, match="lag"):
        make_lag_correlation(SMALL._replace(lag=96))
    with pytest.raises(ValueError, match="rho"):
        make_lag_correlation(SMALL._replace(rho=1.0))


def test_issue14_datasets_load_offline(no_network):
    from validation.data import load_dataset
    d = load_dataset("lagcorr")
    assert (d.seq_len, d.channels, d.n_classes) == (256, 2, 4)
    assert d.info["needed_state_size"] == (24, 12)
    assert np.mean(lag_correlation_oracle(d.x_test, d.info["spec"]["lag"]) == d.y_test) > 0.99
    pytest.importorskip("aeon")
    for name, length, classes in (("ucr-osuleaf", 427, 6), ("ucr-arrowhead", 251, 3)):
        d = load_dataset(name)      # no FutureWarning (filterwarnings=error): read from the bundled file
        assert (d.seq_len, d.n_classes) == (length, classes)
        assert abs(float(d.x_train.mean())) < 0.2 and np.isfinite(d.x_test).all()


def test_wilcoxon_matches_scipy_and_handles_ties():
    from validation.stats import wilcoxon_p
    a = np.array([0.91, 0.93, 0.95, 0.90, 0.97, 0.92, 0.99])
    b = a - np.array([0.01, 0.02, -0.005, 0.03, 0.015, 0.004, 0.02])
    assert wilcoxon_p(a, b) == pytest.approx(sps.wilcoxon(a - b).pvalue)
    assert wilcoxon_p(a, a) == 1.0


def test_holm_adjusted_step_down():
    import pytest
    from validation.stats import holm_adjusted
    # sorted p = 0.01, 0.02, 0.04 with m = 3: 0.03, max(0.03, 0.04), max(0.04, 0.04)
    np.testing.assert_allclose(holm_adjusted([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm_adjusted([0.5, 0.9]), [1.0, 1.0])       # capped at 1
    assert holm_adjusted([0.003]).tolist() == [0.003]                      # one test: unchanged
    adj = holm_adjusted(np.random.default_rng(0).uniform(size=20))
    assert np.all(adj >= np.sort(adj)[0]) and np.all(adj <= 1)
    with pytest.raises(ValueError, match="p_values must be"):
        holm_adjusted([0.1, 1.2])
