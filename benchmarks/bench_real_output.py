"""Real-output vs complex reduction of LRU, S5 and S4D layers: complex states kept.

A diagonal layer outputs ``Re(C x + D u)`` for a real input. The published method reduces
the complex system ``(diag(lambda), B, C, D)`` (``lti_reduce.balanced_truncation``);
``lti_reduce.real_output_balanced_truncation`` reduces the real system of ``2n`` states
that the layer computes and maps it back to complex diagonal form (a conjugate pair of
reduced eigenvalues is one complex state, a real eigenvalue one state). Both error
bounds hold for the layer's real output. For each layer this script reports the complex
states kept

* at equal tau (``energy=tau``; tau is applied to each method's own HSVs), and
* at equal bound (``tol``: the same budget on ``||real output error||_inf``, taken as a
  fraction of the complex system's ``2 * sum(hsv)``),

and, for n = 64, the true H-infinity error of the layer's real output after both
reductions to the same number of complex states (``hinf_norm`` of the realified
difference).

Layers: ``lti_reduce_torch.layers`` LRU, S5 (ZOH), S4D at initialisation and after a brief
training (Adam, a fixed number of steps on a memory task: target ``y_t = u_{t-8} +
0.5 * EMA_0.95(u)_t`` per channel, random normal inputs). S4D's h SISO channels are
reduced one by one; the layer's count is the maximum over channels (as ``reduce_``
does); only the first ``--s4d-channels`` channels are measured to bound the run time.

Run (from the repository root; the OpenBLAS variables unset for this command only)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice python3 benchmarks/bench_real_output.py \\
        --out benchmarks/results_real_output.md
"""

import argparse
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))          # the checkout's packages, not an installed copy
from _report import finish  # noqa: E402

from lti_reduce import (DiagonalStateSpace, StateSpace, balanced_truncation, hankel_factors,  # noqa: E402
                        hankel_singular_values, hinf_norm, real_output_balanced_truncation,
                        real_output_system, select_order)
from lti_reduce_torch import LRU, S4D, S5, get_adapter  # noqa: E402

TAUS = (0.01, 0.05, 0.1)
BUDGETS = (1e-1, 1e-2, 1e-3)          # tol = fraction * 2 * sum(complex hsv)


def make_layer(kind, h, n, seed):
    torch.manual_seed(seed)
    if kind == "LRU":
        return LRU(h, n, dtype=torch.float64)
    if kind == "S5":
        return S5(h, n, dtype=torch.float64)
    return S4D(h, n, dtype=torch.float64)


def memory_task(h, length, batch, generator):
    u = torch.randn(batch, length, h, generator=generator, dtype=torch.float64)
    delayed = torch.nn.functional.pad(u, (0, 0, 8, 0))[:, :length]
    ema = torch.zeros_like(u)
    state = torch.zeros(batch, h, dtype=torch.float64)
    for t in range(length):
        state = 0.95 * state + 0.05 * u[:, t]
        ema[:, t] = state
    return u, delayed + 0.5 * ema


def train(layer, steps, seed, length=128, batch=8):
    """A brief Adam run; returns (first loss, last loss)."""
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(layer.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        u, y = memory_task(layer.h, length, batch, generator)
        loss = torch.mean((layer(u) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses[0], losses[-1]


def elements(system, channels):
    """Unbatched numpy DiagonalStateSpace systems (S4D: the first ``channels`` channels)."""
    def host(a):
        return a.detach().numpy()
    if system.batch_shape:
        return [DiagonalStateSpace(host(system.eigenvalues[c]), host(system.B[c]), host(system.C[c]),
                                   host(system.D[c]), dt=system.dt) for c in range(channels)]
    return [DiagonalStateSpace(*(host(getattr(system, a)) for a in ("eigenvalues", "B", "C", "D")), dt=system.dt)]


def modal(system):
    """Complex reduced StateSpace -> DiagonalStateSpace (same transfer function)."""
    A, B, C, D = (np.asarray(getattr(system, a)) for a in "ABCD")
    lam, X = np.linalg.eig(A)
    return DiagonalStateSpace(lam, np.linalg.solve(X, B), C @ X, D, dt=system.dt)


def real_error(full, reduced_layer):
    """||Re-output of full - Re-output of reduced||_inf."""
    G, H = real_output_system(full), real_output_system(reduced_layer)
    n, r = G.n, H.n
    A = np.block([[G.A, np.zeros((n, r))], [np.zeros((r, n)), H.A]])
    diff = StateSpace(A, np.vstack([G.B, H.B]), np.hstack([G.C, -H.C]), G.D - H.D, dt=G.dt)
    return hinf_norm(diff, rtol=1e-6).norm


def measure(system, errors, avoid):
    """Per element: counts at each tau and budget (complex, real-output, and real-output
    avoiding real positive eigenvalues when ``avoid``), and errors at equal size."""
    hsv_c = np.asarray(hankel_singular_values(system))
    real = real_output_system(system)
    factors = hankel_factors(real)
    out = {"tau": [], "tol": [], "err": None}

    def counts(criterion):
        k_c = select_order(hsv_c, **criterion)
        k_r = real_output_balanced_truncation(system, **criterion, factors=factors).order
        k_a = real_output_balanced_truncation(system, **criterion, factors=factors,
                                              avoid_positive_real=True).order if avoid else None
        return k_c, k_r, k_a

    out["tau"] = [counts({"energy": tau}) for tau in TAUS]
    out["tol"] = [counts({"tol": frac * 2 * hsv_c.sum()}) for frac in BUDGETS]
    if errors:
        k = select_order(hsv_c, energy=0.05)
        cplx = balanced_truncation(system, order=k)
        realr = real_output_balanced_truncation(system, order=k, factors=factors, avoid_positive_real=avoid)
        out["err"] = (k, realr.order, realr.real_order, real_error(system, modal(cplx.system)), cplx.error_bound,
                      real_error(system, realr.system), realr.error_bound)
    return out


def cell(parts, key, i):
    """'k_c/k_r' (or 'k_c/k_r/k_r,LRU'), each the maximum over the measured elements."""
    values = [max(p[key][i][j] for p in parts) for j in range(3) if parts[0][key][i][j] is not None]
    return "/".join(str(v) for v in values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--hs", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--layers", nargs="+", default=["LRU", "S5", "S4D"])
    parser.add_argument("--steps", type=int, default=60, help="Adam steps of the brief training")
    parser.add_argument("--s4d-channels", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}" for i in threadpool_info()]
    lines = ["# Real-output vs complex reduction: complex states kept", "",
             f"command: `{' '.join(['python3', 'benchmarks/bench_real_output.py'] + (argv or sys.argv[1:]))}`",
             f"BLAS: {'; '.join(blas)}; torch {torch.__version__}, 1 thread", "",
             "k_c: complex reduction (published), k_r: real-output reduction; complex layer states. "
             "LRU: a third number, k_r with avoid_positive_real=True (what an LRU can hold: no angle 0). "
             f"S4D: max over the first {args.s4d_channels} channels.", "",
             "| layer | n | h | state | loss first->last | " +
             " | ".join(f"tau={t} k_c/k_r" for t in TAUS) + " | " +
             " | ".join(f"tol={b:g}*2sum k_c/k_r" for b in BUDGETS) + " | s |",
             "|" + "---|" * (6 + len(TAUS) + len(BUDGETS))]
    err_lines = ["", "H-infinity error of the layer's real output, both reduced to (at most) the same number of "
                 "complex states k = complex order at tau=0.05, n = 64 (LRU: real-output with "
                 "avoid_positive_real=True):", "",
                 "| layer | h | state | k (complex) | k (real-output) | real order r | complex: error / bound | "
                 "real-output: error / bound |",
                 "|---|---|---|---|---|---|---|---|"]
    with threadpool_limits(1):
        for kind in args.layers:
            for n in args.ns:
                for h in args.hs:
                    layer = make_layer(kind, h, n, args.seed)
                    for state in ("init", "trained"):
                        loss = "-"
                        if state == "trained":
                            first, last = train(layer, args.steps, args.seed)
                            loss = f"{first:.3g}->{last:.3g}"
                        start = time.perf_counter()
                        system = get_adapter(layer).reduction_system(layer)
                        parts = [measure(s, errors=(n == 64), avoid=(kind == "LRU"))
                                 for s in elements(system, args.s4d_channels)]
                        cells = [cell(parts, "tau", i) for i in range(len(TAUS))]
                        cells += [cell(parts, "tol", i) for i in range(len(BUDGETS))]
                        seconds = time.perf_counter() - start
                        lines.append(f"| {kind} | {n} | {h} | {state} | {loss} | " + " | ".join(cells)
                                     + f" | {seconds:.1f} |")
                        print(lines[-1], flush=True)
                        if parts[0]["err"] is not None:
                            k, k_r, r, ec, bc, er, br = parts[0]["err"]
                            err_lines.append(f"| {kind} | {h} | {state} | {k} | {k_r} | {r} | {ec:.3g} / {bc:.3g} | "
                                             f"{er:.3g} / {br:.3g} |")
                            print(err_lines[-1], flush=True)
    return finish(lines + err_lines, args.out, missed=False)


if __name__ == "__main__":
    sys.exit(main())
