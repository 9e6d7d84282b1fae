"""Layers of lti_reduce_torch.layers: every mode against a naive reference recurrence."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.func import functional_call  # noqa: E402

from lti_reduce_torch.layers import LRU, S5, S4D, DenseLTI, auto_method  # noqa: E402
from lti_reduce_torch.layers import _scan  # noqa: E402

LAYERS = {"LRU": LRU, "S5": S5, "S5-bilinear": S5, "S4D": S4D, "DenseLTI": DenseLTI}


def make(name, h, n, dtype=torch.float64, **kw):
    if name == "S5-bilinear":
        kw["discretization"] = "bilinear"
    return LAYERS[name](h, n, dtype=dtype, **kw)


def modes_of(name):
    return [m for m in LAYERS[name].modes if m != "auto"]


# ---------------------------------------------------------------- naive reference (numpy, float64)
def reference_system(layer):
    """(lam or A, B, C, D) of the post-update recurrence, from the published formulas, numpy."""
    P = {k: v.detach().double().numpy() for k, v in layer.named_parameters()}
    if isinstance(layer, LRU):
        lam = np.exp(-np.exp(P["nu_log"]) + 1j * np.exp(P["theta_log"]))
        B = (P["B_re"] + 1j * P["B_im"]) * np.exp(P["gamma_log"])[:, None]
        return lam, B, P["C_re"] + 1j * P["C_im"], P["D"]
    if isinstance(layer, S5):
        Lam = -np.exp(P["log_neg_Lambda_re"]) + 1j * P["Lambda_im"]
        step = np.exp(P["log_step"])
        B = P["B_re"] + 1j * P["B_im"]
        if layer.discretization == "zoh":
            lam = np.exp(Lam * step)
            Bd = ((lam - 1) / Lam)[:, None] * B
        else:
            lam = (1 + Lam * step / 2) / (1 - Lam * step / 2)
            Bd = (step / (1 - Lam * step / 2))[:, None] * B
        return lam, Bd, P["C_re"] + 1j * P["C_im"], P["D"]
    if isinstance(layer, S4D):
        A = -np.exp(P["log_neg_A_re"]) + 1j * P["A_im"]
        step = np.exp(P["log_step"])[:, None]
        lam = np.exp(A * step)
        Bd = (lam - 1) / A * (P["B_re"] + 1j * P["B_im"])
        return lam, Bd, P["C_re"] + 1j * P["C_im"], P["D"]
    return P["A"], P["B"], P["C"], P["D"]


def reference_output(layer, u):
    """Python loop: x_k = A x_{k-1} + B u_k; y_k = Re(C s_k) + D u_k, s_k = x_k ('post') or x_{k-1} ('pre')."""
    lam, B, C, D = reference_system(layer)
    u = u.detach().double().numpy()
    batch, L, h = u.shape
    y = np.zeros((batch, L, h))
    for b in range(batch):
        if isinstance(layer, S4D):
            x = np.zeros(lam.shape, dtype=complex)                       # (h, n)
        else:
            x = np.zeros(lam.shape[0], dtype=complex)
        for k in range(L):
            prev = x
            if isinstance(layer, S4D):
                x = lam * x + B * u[b, k][:, None]
            elif isinstance(layer, DenseLTI):
                x = lam @ x + B @ u[b, k]
            else:
                x = lam * x + B @ u[b, k]
            s = x if layer.readout == "post" else prev
            if isinstance(layer, S4D):
                y[b, k] = (C * s).sum(-1).real + D * u[b, k]
            elif isinstance(layer, DenseLTI):
                y[b, k] = C @ s.real + D @ u[b, k]
            else:
                y[b, k] = (C @ s).real + D * u[b, k]
    return y


# ---------------------------------------------------------------- forward vs reference
@pytest.mark.parametrize("readout", ["pre", "post"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_every_mode_matches_reference_float64(name, readout):
    torch.manual_seed(0)
    layer = make(name, 3, 5, readout=readout)
    u = torch.randn(2, 23, 3, dtype=torch.float64)
    ref = reference_output(layer, u)
    for mode in modes_of(name):
        layer.mode = mode
        y = layer(u)
        assert y.shape == u.shape and y.dtype == torch.float64
        np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-10, atol=1e-10, err_msg=mode)


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_mode_matches_reference_float32(name):
    torch.manual_seed(1)
    layer = make(name, 4, 6, dtype=torch.float32, readout="post")
    u = torch.randn(3, 40, 4)
    ref = reference_output(layer, u)
    scale = np.abs(ref).max()
    for mode in modes_of(name):
        layer.mode = mode
        y = layer(u)
        assert y.dtype == torch.float32
        np.testing.assert_allclose(y.detach().double().numpy(), ref, rtol=0, atol=2e-5 * scale, err_msg=mode)


@pytest.mark.parametrize("L", [1, 2, 7, 16, 33])
@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
def test_chunked_lengths(L, chunk):
    torch.manual_seed(2)
    layer = LRU(2, 3, dtype=torch.float64, mode="chunked", chunk=chunk)
    u = torch.randn(2, L, 2, dtype=torch.float64)
    np.testing.assert_allclose(layer(u).detach().numpy(), reference_output(layer, u), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("L", [1, 2, 5, 17])
@pytest.mark.parametrize("name", list(LAYERS))
def test_short_sequences_all_modes(name, L):
    torch.manual_seed(3)
    layer = make(name, 2, 3, readout="pre")
    u = torch.randn(1, L, 2, dtype=torch.float64)
    ref = reference_output(layer, u)
    for mode in modes_of(name):
        layer.mode = mode
        np.testing.assert_allclose(layer(u).detach().numpy(), ref, rtol=1e-10, atol=1e-12, err_msg=mode)


def test_readouts_differ_by_one_step():
    torch.manual_seed(4)
    post = LRU(3, 4, dtype=torch.float64, readout="post")
    pre = LRU(3, 4, dtype=torch.float64, readout="pre")
    pre.load_state_dict(post.state_dict())
    u = torch.randn(2, 9, 3, dtype=torch.float64)
    a = post(u) - u * post.D
    b = pre(u) - u * pre.D
    torch.testing.assert_close(b[:, 1:], a[:, :-1])
    torch.testing.assert_close(b[:, 0], torch.zeros_like(b[:, 0]))


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("readout", ["pre", "post"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_gradcheck(name, readout):
    torch.manual_seed(5)
    for mode in modes_of(name):
        layer = make(name, 2, 3, readout=readout, mode=mode)
        if hasattr(layer, "chunk"):
            layer.chunk = 3
        names = [k for k, _ in layer.named_parameters()]
        params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
        u = torch.randn(2, 7, 2, dtype=torch.float64, requires_grad=True)

        def f(u, *ps):
            return functional_call(layer, dict(zip(names, ps)), (u,))

        assert torch.autograd.gradcheck(f, (u,) + params), mode


@pytest.mark.parametrize("name", list(LAYERS))
def test_float32_gradients_agree_across_modes(name):
    torch.manual_seed(6)
    layer = make(name, 3, 4, dtype=torch.float32)
    u = torch.randn(2, 30, 3)
    grads = {}
    for mode in modes_of(name):
        layer.mode = mode
        layer.zero_grad()
        layer(u).square().mean().backward()
        grads[mode] = {k: p.grad.clone() for k, p in layer.named_parameters()}
    first = grads[modes_of(name)[0]]
    for mode, g in grads.items():
        for k in g:
            torch.testing.assert_close(g[k], first[k], rtol=2e-3, atol=2e-4, msg=f"{mode} {k}")


# ---------------------------------------------------------------- initialisation / API
def test_lru_initialisation_as_published():
    torch.manual_seed(7)
    layer = LRU(16, 400, r_min=0.5, r_max=0.8, max_phase=3.0).requires_grad_(False)
    lam_mod = torch.exp(-torch.exp(layer.nu_log.double()))
    assert float(lam_mod.min()) >= 0.5 - 1e-6 and float(lam_mod.max()) <= 0.8 + 1e-6
    # |lambda|^2 uniform on [r_min^2, r_max^2]: its mean is the midpoint
    assert abs(float((lam_mod ** 2).mean()) - (0.25 + 0.64) / 2) < 0.03
    phase = torch.exp(layer.theta_log.double())
    assert float(phase.min()) >= 0 and float(phase.max()) <= 3.0 + 1e-6
    torch.testing.assert_close(layer.gamma_log.double(), torch.log(torch.sqrt(1 - lam_mod ** 2)),
                               rtol=1e-5, atol=1e-6)
    assert abs(float(layer.B_re.std()) - 1 / math.sqrt(32)) < 0.02
    assert abs(float(layer.C_re.std()) - 1 / math.sqrt(400)) < 0.005
    for p in (layer.nu_log, layer.theta_log, layer.gamma_log):
        assert getattr(p, "_no_weight_decay", False) is True
    assert not hasattr(layer.B_re, "_no_weight_decay")
    assert {k: tuple(v.shape) for k, v in layer.named_parameters()} == {
        "nu_log": (400,), "theta_log": (400,), "gamma_log": (400,), "B_re": (400, 16), "B_im": (400, 16),
        "C_re": (16, 400), "C_im": (16, 400), "D": (16,)}


def test_stability_by_construction():
    torch.manual_seed(8)
    for layer in (S5(4, 8), S5(4, 8, discretization="bilinear"), S4D(4, 8), DenseLTI(4, 8)):
        lam, *_ = reference_system(layer)
        modulus = np.abs(lam) if lam.ndim == 1 or isinstance(layer, S4D) else np.abs(np.linalg.eigvals(lam))
        assert modulus.max() < 1


@pytest.mark.parametrize("name", list(LAYERS))
def test_dtype_device_and_shape_checks(name):
    layer = make(name, 3, 4, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    assert layer.n == 4
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(2, 5, 4))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.randn(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="mode"):
        LAYERS[name](3, 4, mode="nope")
    with pytest.raises(ValueError, match="readout"):
        LAYERS[name](3, 4, readout="middle")
    layer.double()
    assert layer(torch.randn(1, 3, 3, dtype=torch.float64)).dtype == torch.float64


def test_auto_method_choices():
    cpu = torch.device("cpu")
    for kind in ("mimo", "channel", "dense"):
        for h, n in ((8, 256), (256, 32), (256, 256)):
            m = auto_method(kind, h, n, 784, 16, cpu)
            assert m in {"mimo": LRU.modes, "channel": S4D.modes, "dense": DenseLTI.modes}[kind]
            assert m != "auto"
    layer = LRU(8, 16)
    assert layer.method(784, 16) == auto_method("mimo", 8, 16, 784, 16, cpu)
    layer.mode = "assoc"
    assert layer.method(784, 16) == "assoc"


def test_zero_length_and_state_size_zero():
    layer = LRU(2, 0, dtype=torch.float64)
    u = torch.randn(2, 5, 2, dtype=torch.float64)
    for mode in modes_of("LRU"):
        layer.mode = mode
        torch.testing.assert_close(layer(u), u * layer.D)
    layer = LRU(2, 3, dtype=torch.float64)
    for mode in modes_of("LRU"):
        layer.mode = mode
        assert layer(torch.zeros(2, 0, 2, dtype=torch.float64)).shape == (2, 0, 2)


def test_scan_kernels_agree_on_a_batched_state():
    torch.manual_seed(9)
    log_a = torch.complex(-torch.rand(3, 4, dtype=torch.float64), 3 * torch.rand(3, 4, dtype=torch.float64))
    b = torch.randn(2, 50, 3, 4, dtype=torch.complex128)
    ref = _scan.diag_scan(log_a, b, "sequential")
    for method in ("chunked", "assoc"):
        torch.testing.assert_close(_scan.diag_scan(log_a, b, method, chunk=7), ref)
    A = 0.3 * torch.randn(4, 4, dtype=torch.float64)
    bd = torch.randn(2, 50, 4, dtype=torch.float64)
    torch.testing.assert_close(_scan.dense_scan(A, bd, "assoc"), _scan.dense_scan(A, bd, "sequential"))
