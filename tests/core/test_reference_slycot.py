"""slycot (SLICOT, GPL) as the optional oracle: HSVs and balanced-truncation errors.

Only ``ab09ad`` with ``job='B'`` is used: with ``job='N'`` it undersizes its integer
workspace and corrupts the heap after many calls. Random real stable systems, continuous
and discrete, n up to 30 (stable by construction, well-conditioned eigenvectors).
"""

import warnings

import numpy as np
import pytest

from lti_reduce import StateSpace, balanced_truncation, hankel_singular_values
from lti_reduce._norms import hinf_norm

from .strategies import build_system, error_system

pytestmark = pytest.mark.reference
slycot = pytest.importorskip("slycot", reason="slycot (GPL, optional oracle) is not installed: "
                                              "pip install slycot to run the reference tests")

EPS = np.finfo(float).eps
CASES = [
    # (discrete, n, m, p, jordan, seed)
    (False, 5, 1, 1, False, 1), (False, 8, 2, 3, True, 2), (False, 12, 1, 2, False, 3),
    (False, 16, 3, 1, True, 4), (False, 20, 2, 2, False, 5), (False, 25, 4, 5, True, 6),
    (False, 30, 1, 1, False, 7), (False, 30, 6, 4, True, 8), (False, 10, 12, 12, False, 9),
    (True, 5, 1, 1, False, 11), (True, 8, 2, 3, True, 12), (True, 12, 1, 2, False, 13),
    (True, 16, 3, 1, True, 14), (True, 20, 2, 2, False, 15), (True, 25, 4, 5, True, 16),
    (True, 30, 1, 1, False, 17), (True, 30, 6, 4, True, 18), (True, 10, 12, 12, False, 19),
]
IDS = [f"{'d' if d else 'c'}-n{n}-m{m}-p{p}{'-jordan' if j else ''}-{seed}" for d, n, m, p, j, seed in CASES]


def random_system(discrete, n, m, p, jordan, seed):
    spec = dict(discrete=discrete, complex=False, diagonal=False, n=n, m=m, p=p, b_structure="full",
                c_structure="full", n_pairs=(seed % 3) * n // 6, jordan=jordan, feedthrough=bool(seed % 2),
                dt=1.0 if discrete else 0.0, seed=seed)
    system = build_system(spec)
    assert system.is_stable()
    return system


def slycot_bt(system, nr):
    """slycot.ab09ad(dico, job='B', equil='N', ...) with an explicit order nr."""
    A, B, C = (np.array(x, dtype=float, order="F") for x in (system.A, system.B, system.C))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # an order adjusted by slycot must not pass silently
        nr_out, Ar, Br, Cr, hsv = slycot.ab09ad("D" if system.is_discrete else "C", "B", "N",
                                                system.n, system.m, system.p, A, B, C, nr=nr)
    assert nr_out == nr
    return StateSpace(Ar[:nr, :nr], Br[:nr], Cr[:, :nr], np.asarray(system.D), dt=system.dt), hsv


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hsv_agree_with_ab09ad(case):
    system = random_system(*case)
    s = np.asarray(hankel_singular_values(system))
    _, hsv = slycot_bt(system, 1)
    significant = hsv >= 1e-6 * hsv[0]
    np.testing.assert_allclose(s[significant], hsv[significant], rtol=1e-10, atol=0)
    # the rest are tiny in both (to within rounding relative to s_1)
    np.testing.assert_allclose(s[~significant], hsv[~significant], rtol=0, atol=1e-10 * hsv[0])


def _orders(hsv, n_orders=3):
    """Orders with a clear gap (s_r > 1.05 s_{r+1}) and s_r >= 1e-6 s_1."""
    orders = [r for r in range(1, hsv.size) if hsv[r - 1] > 1.05 * hsv[r] and hsv[r - 1] >= 1e-6 * hsv[0]]
    if len(orders) <= n_orders:
        return orders
    return [orders[k] for k in np.linspace(0, len(orders) - 1, n_orders).round().astype(int)]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bt_error_equals_ab09ad(case):
    """||G - G_r||_inf of ours equals that of slycot's reduced system (same explicit order)."""
    system = random_system(*case)
    _, hsv = slycot_bt(system, 1)
    orders = _orders(hsv)
    assert orders
    norm = hinf_norm(system).norm
    # G - G_r is evaluated with an absolute rounding error of a few eps * ||G||: the floor
    atol = 1e-12 * norm
    for nr in orders:
        theirs, _ = slycot_bt(system, nr)
        ours = balanced_truncation(system, nr)
        assert ours.order == nr
        error_ours = hinf_norm(error_system(system, ours.system)).norm
        error_theirs = hinf_norm(error_system(system, theirs)).norm
        # the reduced system itself is determined only to about eps s_1 / s_r relative (the
        # condition of the balancing transformation): on c-n30-m1-p1-7 at r = 12
        # (s_1 / s_12 = 1e5) slycot's own error moves by up to 4.9e-12 when the data are
        # perturbed by 2e-16 relative, ours (either factor route) by up to 4.9e-12 too
        agree = max(atol, EPS * hsv[0] / hsv[nr - 1] * norm)
        assert error_ours == pytest.approx(error_theirs, rel=1e-8, abs=agree), (nr, hsv[nr - 1:nr + 1])
        assert hsv[nr] * (1 - 1e-9) - atol <= error_ours <= 2 * hsv[nr:].sum() * (1 + 1e-9) + atol
        # and the reduced transfer functions themselves agree
        points = np.exp(1j * np.linspace(0.1, 3.0, 4)) if system.is_discrete else 1j * np.array([0.0, 0.5, 2.0, 7.0])
        G, G_ref = ours.system.evaluate(points), theirs.evaluate(points)
        np.testing.assert_allclose(G, G_ref, rtol=0, atol=1e-9 * norm)
