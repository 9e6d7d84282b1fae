"""Balanced truncation of a 2-D heat equation with a finite-element mass matrix.

``M x' = -K x + b u``, ``y = c x``: bilinear finite elements on an N x N interior grid of
the unit square (n = N^2), heat source on the left half, output the mean temperature of the
right half. Low-rank Gramian factors by LR-ADI, then square-root balanced truncation.

Run from the repository root::

    python docs/examples/large_sparse_heat.py                    # N = 50, n = 2500
    python docs/examples/large_sparse_heat.py --N 100 --figures docs/figures/large_sparse
"""

import argparse
import os
import sys

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import lti_reduce as lr  # noqa: E402


def heat_fe(N):
    """(K, M, b, c) of the 2-D heat equation, Q1 elements, Dirichlet boundary."""
    h = 1.0 / (N + 1)
    ones = np.ones(N)
    M1 = sp.diags([ones[1:], 4 * ones, ones[1:]], [-1, 0, 1]) * (h / 6)      # 1-D mass
    K1 = sp.diags([-ones[1:], 2 * ones, -ones[1:]], [-1, 0, 1]) / h          # 1-D stiffness
    M = sp.csc_array(sp.kron(M1, M1))
    K = sp.csc_array(sp.kron(K1, M1) + sp.kron(M1, K1))
    x = np.repeat(np.arange(1, N + 1) * h, N)        # x coordinate of each node
    left = (x < 0.5).astype(float)
    b = M @ left[:, None]                            # load vector of a source on the left half
    c = ((x >= 0.5) / np.count_nonzero(x >= 0.5))[None, :]   # mean over the right half
    return K, M, b, c


def main(N=50, order=8, figures=None):
    K, M, b, c = heat_fe(N)
    system = lr.SparseStateSpace(-K, b, c, E=M)       # E x' = A x + B u with E = M, A = -K
    res = lr.lowrank_balanced_truncation(system, order=order, residual_tol=1e-10)
    gc, go = res.controllability, res.observability
    print(system)
    print(f"ADI steps (c, o): {gc.iterations}, {go.iterations}; factor columns: {gc.Z.shape[1]}, {go.Z.shape[1]}")
    print(f"relative residuals reached: {gc.residual:.2e}, {go.residual:.2e}")
    print("leading HSVs:", np.array2string(res.hsv[:order + 2], precision=3))
    print(f"order {res.order}: a-priori bound 2*sum(tail) = {res.error_bound:.3e}, "
          f"sampled max|G - G_r| = {res.error_estimate:.3e} over {len(res.error_frequencies)} frequencies")
    if figures:
        save_figures(res, figures)
    return res


def save_figures(res, folder):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(folder, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for g, label in ((res.controllability, "controllability"), (res.observability, "observability")):
        ax.semilogy(np.arange(len(g.residual_history)), g.residual_history, marker=".", label=label)
    ax.axhline(1e-10, color="gray", linestyle=":", label="residual_tol")
    ax.set_xlabel("ADI step")
    ax.set_ylabel("relative Lyapunov residual")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "residual_history.png"), dpi=120)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.semilogy(np.arange(1, len(res.hsv) + 1), res.hsv / res.hsv[0], marker=".")
    ax.axvline(res.order + 0.5, color="gray", linestyle=":", label=f"r = {res.order}")
    ax.set_xlabel("i")
    ax.set_ylabel("s_i / s_1 (approximate HSVs)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "hsv_decay.png"), dpi=120)
    plt.close("all")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=50, help="interior grid points per direction (n = N^2)")
    ap.add_argument("--order", type=int, default=8)
    ap.add_argument("--figures", help="folder for residual_history.png and hsv_decay.png")
    args = ap.parse_args()
    main(args.N, args.order, args.figures)
