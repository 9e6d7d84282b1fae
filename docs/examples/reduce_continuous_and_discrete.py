"""Worked example: balanced truncation of a continuous and a discrete system.

Run from the repository root::

    python docs/examples/reduce_continuous_and_discrete.py

Every number printed on the "Examples" page of the documentation is this script's
output. It needs numpy and scipy only (no torch).
"""

import warnings

import numpy as np
from scipy.signal import cont2discrete

import lti_reduce as lr
from lti_reduce.example_systems import slicot_ab09_system

np.set_printoptions(precision=4, suppress=False, linewidth=88)


def error_system(full, reduced):
    """The difference G - G_r as one state-space system (block-diagonal A)."""
    n, r = full.n, reduced.n
    A = np.zeros((n + r, n + r), dtype=np.result_type(full.A, reduced.A))
    A[:n, :n], A[n:, n:] = full.A, reduced.A
    B = np.vstack([full.B, reduced.B])
    C = np.hstack([full.C, -reduced.C])
    return lr.StateSpace(A, B, C, full.D - reduced.D, dt=full.dt)


def report(full, result, label):
    """Order, a-priori bound, measured H-infinity error and its lower bound s_{r+1}."""
    r = result.order
    error = error_system(full, result.system)
    err = lr.hinf_norm(error)
    # an error can peak at several frequencies with equal height (to the last digits), and
    # which of them hinf_norm returns then depends on rounding: show w = 0 when it is one
    at_zero = np.linalg.norm(error.evaluate([1.0 if full.is_discrete else 0.0])[0], 2)
    peak = 0.0 if at_zero >= err.norm * (1 - 1e-9) else err.peak_frequency
    hsv = np.asarray(result.hsv)
    lower = hsv[r] if r < hsv.size else 0.0
    print(f"{label}: order r = {r}")
    print(f"  lower bound s_(r+1)        = {lower:.6g}")
    print(f"  measured ||G - G_r||_inf   = {err.norm:.6g}  (peak at w = {peak:.6g})")
    print(f"  a-priori bound 2*sum tail  = {result.error_bound:.6g}")
    assert lower <= err.norm * (1 + 1e-9) and err.norm <= result.error_bound * (1 + 1e-9)


# ======================================================================================
# 1. continuous time: the 7-state, 2-input, 3-output SLICOT example (AB09AD / AB09BD)
# ======================================================================================
print("=" * 72)
print("1. Continuous time (dt = 0): SLICOT AB09AD/AB09BD example, n = 7, m = 2, p = 3")
print("=" * 72)
sys_c = slicot_ab09_system()             # SLICOT's A, B, C; D = 0, dt = 0 (continuous)
print(sys_c)
print("stable:", sys_c.is_stable())

hsv = lr.hankel_singular_values(sys_c)
print("HSVs:", hsv)                      # SLICOT prints 2.5139 2.0846 1.9178 0.7666 0.5473 0.0253 0.0246
print("Hankel norm s_1:", f"{lr.hankel_norm(sys_c):.6g}")

full = lr.hinf_norm(sys_c)
print(f"||G||_inf = {full.norm:.6g} at w = {full.peak_frequency:.6g} rad/s")

# error budget: smallest r with 2 * sum_{i>r} s_i <= tol
bt = lr.balanced_truncation(sys_c, tol=0.1)
report(sys_c, bt, "BT, tol=0.1")
print("  reduced poles:", np.sort_complex(bt.system.poles()))

# the same order from CompreSSM's energy criterion (sum of HSVs, not of squares)
print("energy=0.02 ->", lr.select_order(hsv, energy=0.02),
      "| energy=0.10 ->", lr.select_order(hsv, energy=0.10),
      "| energy=0.30 ->", lr.select_order(hsv, energy=0.30))

# balanced: the reduced system's Gramians are diag(s_1..s_r)
P = lr.gramian(bt.system, "c")
Q = lr.gramian(bt.system, "o")
print("max |P_r - diag(s)| < 1e-12:", np.abs(P - np.diag(hsv[:5])).max() < 1e-12,
      "| max |Q_r - diag(s)| < 1e-12:", np.abs(Q - np.diag(hsv[:5])).max() < 1e-12)

# singular perturbation approximation keeps G(0) exactly; truncation does not
spa = lr.balanced_truncation(sys_c, order=5, match="dc")
report(sys_c, spa, "SPA, order=5")
G0 = sys_c.dc_gain()
print("G(0) of the full system:")
print(G0.real)
print(f"  max |G(0) - G_r(0)|  BT : {np.abs(G0 - bt.system.dc_gain()).max():.3e}")
print("  max |G(0) - G_r(0)|  SPA < 1e-12:", np.abs(G0 - spa.system.dc_gain()).max() < 1e-12)

# unstable='keep': the part with Re(lambda) >= alpha is kept whole, its HSVs are inf
keep = lr.balanced_truncation(sys_c, tol=0.1, unstable="keep", alpha=-0.6)
print("alpha=-0.6, unstable='keep': HSVs", np.asarray(keep.hsv))
report(sys_c, keep, "  BT of the alpha-stable part, tol=0.1")

# ======================================================================================
# 2. discrete time: a random stable system, and the same system sampled
# ======================================================================================
print()
print("=" * 72)
print("2. Discrete time (dt > 0): zero-order hold of the system above, dt = 0.1")
print("=" * 72)
Ad, Bd, Cd, Dd, _ = cont2discrete((sys_c.A, sys_c.B, sys_c.C, sys_c.D), dt=0.1, method="zoh")
sys_d = lr.StateSpace(Ad, Bd, Cd, Dd, dt=0.1)
print(sys_d)
print("max |pole|:", f"{np.abs(sys_d.poles()).max():.6f}")
hsv_d = lr.hankel_singular_values(sys_d)
print("HSVs:", hsv_d)
full_d = lr.hinf_norm(sys_d)
print(f"||G||_inf = {full_d.norm:.6g} at w = {full_d.peak_frequency:.6g} rad/s "
      f"(Nyquist pi/dt = {np.pi / 0.1:.6g})")
bt_d = lr.balanced_truncation(sys_d, tol=0.1)
report(sys_d, bt_d, "BT, tol=0.1")
spa_d = lr.balanced_truncation(sys_d, order=bt_d.order, match="dc")
report(sys_d, spa_d, f"SPA, order={bt_d.order}")
G1 = sys_d.dc_gain()                     # G(z = 1)
print(f"  max |G(1) - G_r(1)|  BT : {np.abs(G1 - bt_d.system.dc_gain()).max():.3e}")
print("  max |G(1) - G_r(1)|  SPA < 1e-12:", np.abs(G1 - spa_d.system.dc_gain()).max() < 1e-12)

print()
print("=" * 72)
print("3. Discrete time, LRU-shaped complex diagonal system (n = 64, m = p = 4)")
print("=" * 72)
rng = np.random.default_rng(0)
n, h = 64, 4
modulus = np.sqrt(rng.uniform(0.9 ** 2, 0.999 ** 2, n))    # |lambda| on the ring [0.9, 0.999]
phase = rng.uniform(0, 6.28, n)
lam = modulus * np.exp(1j * phase)
gamma = np.sqrt(1 - modulus ** 2)
B_lru = (rng.normal(size=(n, h)) + 1j * rng.normal(size=(n, h))) / np.sqrt(2 * h) * gamma[:, None]
C_lru = (rng.normal(size=(h, n)) + 1j * rng.normal(size=(h, n))) / np.sqrt(n)
lru = lr.DiagonalStateSpace(lam, B_lru, C_lru, dt=True)     # dt=True: period 1, w in rad/sample
print(lru)
hsv_l = lr.hankel_singular_values(lru)
print("s_1, s_16, s_32, s_64:", hsv_l[[0, 15, 31, 63]])
full_l = lr.hinf_norm(lru)
print(f"||G||_inf = {full_l.norm:.4g} at w = {full_l.peak_frequency:.4g} rad/sample")
for tau in (0.05, 0.10, 0.20):
    res = lr.balanced_truncation(lru, energy=tau)
    err = lr.hinf_norm(error_system(lru.to_dense(), res.system))
    print(f"energy tau={tau:.2f}: r = {res.order:2d}, measured ||G - G_r||_inf = {err.norm:.4g}, "
          f"bound = {res.error_bound:.4g}")

# the dense path gives the same HSVs as the closed-form diagonal path
hsv_dense = lr.hankel_singular_values(lru.to_dense())
print("max |HSV diagonal - HSV dense| / s_1 < 1e-13:", np.abs(hsv_l - hsv_dense).max() / hsv_l[0] < 1e-13)

# an explicit order that splits a pair of equal HSVs warns (OrderAdjustedWarning)
pair = lr.StateSpace(np.diag([-1.0, -1.0]), np.eye(2), np.eye(2))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    lr.balanced_truncation(pair, order=1)
print("order=1 on equal HSVs:", type(caught[0].message).__name__)
print("tol=1.5 on equal HSVs -> order", lr.balanced_truncation(pair, tol=1.5).order)
