"""Where the slack of the a-priori bound goes: one reduction, five numbers.

For a layer reduced by balanced truncation (energy rule ``tau``) the runs compare the measured
layer-output change on real inputs with the bound ``2 * sum of discarded HSVs``. Between the
two sit four steps, each an upper bound of the next::

    bound  >=  ||E||_Hinf (complex output)  >=  ||Re E||_Hinf (the real output the layer emits)
           >=  ||Re E||_(L steps) (inputs of the training length)  >=  measured (the data's inputs)

``E = G - G_r`` is the error system (the core's realisation of the difference); ``Re E`` its
realification (state ``[Re x; Im x]``, output ``Re(C x) + Re(D) u``), which is what a
``readout='post'`` layer computes for real inputs; the L-step norm is the largest singular
value of the block-Toeplitz map from ``L`` steps of input to ``L`` steps of output, found by
Lanczos on FFT convolutions; measured is ``max_b ||dy_b|| / ||u_b||`` over a probe batch.
The ratio of consecutive numbers says how much slack each step accounts for.

Run: ``python -m validation.slack --preset lagcorr --seed 0 --out runs/slack.json``.
"""

import argparse
import copy
import json
import sys

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, svds

from lti_reduce import StateSpace, hinf_norm
from lti_reduce_torch import reduce_

from .data import load_dataset
from .methods import RunSettings, build_model, train
from .models import ssm_layers
from .presets import get_preset, event_steps
from .spectra import reduction_system, system_difference

__all__ = ["realify", "horizon_gain", "slack_of_reduction", "slack_table", "main"]


def _np(x):
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)


def _dense(system):
    """``(A, B, C, D)`` numpy arrays of a (diagonal or dense) state space."""
    if hasattr(system, "eigenvalues"):
        return np.diag(_np(system.eigenvalues)), _np(system.B), _np(system.C), _np(system.D)
    return _np(system.A), _np(system.B), _np(system.C), _np(system.D)


def realify(system):
    """The real system mapping a real input ``u`` to ``Re(C x) + Re(D) u`` (discrete time)."""
    A, B, C, D = _dense(system)
    Ar = np.block([[A.real, -A.imag], [A.imag, A.real]])
    Br = np.vstack([B.real, B.imag])
    Cr = np.hstack([C.real, -C.imag])
    return StateSpace(Ar, Br, Cr, np.real(D).copy(), dt=True)


def _markov(system, steps):
    A, B, C, D = _dense(system)
    out = np.empty((steps,) + D.shape, dtype=np.float64)
    out[0] = D.real
    x = B
    for k in range(1, steps):
        out[k] = (C @ x).real
        x = A @ x
    return out                                   # (L, p, m)


def horizon_gain(system, steps):
    """Largest singular value of the L-step input-to-output map of a real system."""
    h = _markov(system, steps)
    L, p, m = h.shape
    nfft = 2 * L
    H = np.fft.rfft(h, n=nfft, axis=0)           # (F, p, m)

    def mv(v):
        u = v.reshape(L, m)
        y = np.fft.irfft(np.einsum("fpm,fm->fp", H, np.fft.rfft(u, n=nfft, axis=0)), n=nfft, axis=0)[:L]
        return y.ravel()

    def rmv(w):                                  # adjoint: anti-causal correlation
        y = w.reshape(L, p)[::-1]
        u = np.fft.irfft(np.einsum("fpm,fp->fm", H, np.fft.rfft(y, n=nfft, axis=0)), n=nfft, axis=0)[:L][::-1]
        return u.ravel()

    op = LinearOperator((L * p, L * m), matvec=mv, rmatvec=rmv, dtype=np.float64)
    return float(svds(op, k=1, return_singular_vectors=False, random_state=0)[0])


def slack_of_reduction(layer, inputs, tau):
    """The five numbers of the module docstring for one layer at energy ``tau``."""
    reduced = copy.deepcopy(layer)
    report = reduce_(reduced, energy=float(tau))
    entry = report.layers[0]
    full_sys, red_sys = reduction_system(layer), reduction_system(reduced)
    err = system_difference(red_sys, full_sys)
    real_err = realify(err)
    with torch.no_grad():
        dy = (layer(inputs) - reduced(inputs)).flatten(1).norm(dim=1)
        measured = float((dy / inputs.flatten(1).norm(dim=1)).max())
    return {"old_n": entry.old_n, "new_n": entry.new_n, "bound": float(entry.error_bound),
            "hinf_complex": float(hinf_norm(err).norm), "hinf_real": float(hinf_norm(real_err).norm),
            "horizon_L": horizon_gain(real_err, inputs.shape[1]), "measured": measured}


def slack_table(rows):
    """Markdown table of :func:`slack_of_reduction` rows with the ratio of each step."""
    out = ["| step | n -> r | bound | Hinf complex | Hinf real | L-step | measured | bound / Hinf | complex / real "
           "| Hinf / L-step | L-step / measured | bound / measured |", "|" + "---|" * 12]
    for r in rows:
        out.append(f"| {r['step']} | {r['old_n']} -> {r['new_n']} | {r['bound']:.2f} | {r['hinf_complex']:.2f} | "
                   f"{r['hinf_real']:.2f} | {r['horizon_L']:.2f} | {r['measured']:.3f} | "
                   f"{r['bound'] / r['hinf_complex']:.2f} | {r['hinf_complex'] / r['hinf_real']:.2f} | "
                   f"{r['hinf_real'] / r['horizon_L']:.2f} | {r['horizon_L'] / r['measured']:.2f} | "
                   f"{r['bound'] / r['measured']:.1f} |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m validation.slack", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="lagcorr")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tau", type=float, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--table", default=None, help="only print the table of a JSON file written by --out")
    args = p.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(slack_table(json.load(f)["rows"]))
        return 0
    torch.set_num_threads(1)
    cfg = get_preset(args.preset)
    events = event_steps(cfg)
    tau = args.tau or cfg.taus[0]
    cfg = cfg.replace(analysis=False)
    data = load_dataset(cfg.dataset)
    rs = RunSettings(cfg, data, progress=False)
    model = build_model(rs, [cfg.n] * cfg.blocks, args.seed)
    rows = []

    class Measure:            # a "compressor" that measures the rule's reduction and reduces nothing
        def step(self, step):
            if step not in events and step != cfg.steps - 1:
                return None
            was = model.training
            model.eval()
            for name, layer in ssm_layers(model):
                captured = {}
                hd = layer.register_forward_pre_hook(lambda mod, a: captured.__setitem__("u", a[0].detach()))
                with torch.no_grad():
                    model(rs.probe)
                hd.remove()
                row = {"step": step, "layer": name, **slack_of_reduction(layer, captured["u"], tau)}
                rows.append(row)
                print(json.dumps(row), flush=True)
            model.train(was)
            return None

    train(rs, model, seed=args.seed, label="slack", compressor_factory=lambda m, opt: Measure())
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": "python -m validation.slack " + " ".join(argv or sys.argv[1:]), "tau": tau,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
