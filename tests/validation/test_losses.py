import math

import numpy as np
import pytest
import torch

from validation.losses import (kd_loss, diagonal_hankel_nuclear_norm, differentiable_system,  # noqa: E402
                               hankel_nuclear_norm_regulariser, psd_sqrt, diagonal_gramians)
from validation.spectra import hankel_norm_of_change, layer_spectrum  # noqa: E402


def test_kd_loss_is_the_documented_formula():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (7,), generator=g)
    alpha, T = 0.3, 2.5
    # by hand: alpha*CE + (1-alpha)*T^2*KL(softmax(t/T) || softmax(s/T)), batch mean
    sn, tn = s.numpy(), t.numpy()
    logp_s = sn - np.log(np.exp(sn).sum(1, keepdims=True))
    ce = -np.mean(logp_s[np.arange(7), y.numpy()])
    soft = lambda z: np.exp(z / T) / np.exp(z / T).sum(1, keepdims=True)  # noqa: E731
    p, q = soft(tn), soft(sn)
    kl = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    expected = alpha * ce + (1 - alpha) * T * T * kl
    assert math.isclose(float(kd_loss(s, t, y, alpha=alpha, temperature=T)), expected, rel_tol=1e-12)
    # the teacher gets no gradient; alpha = 1 is plain cross-entropy
    ss, tt = s.clone().requires_grad_(), t.clone().requires_grad_()
    kd_loss(ss, tt, y, alpha=0.0, temperature=T).backward()
    assert tt.grad is None and ss.grad is not None
    assert math.isclose(float(kd_loss(s, t, y, alpha=1.0)), ce, rel_tol=1e-12)


def _lru(n=10, h=3, seed=0):
    from lti_reduce_torch.layers import LRU
    torch.manual_seed(seed)
    return LRU(h, n, readout="pre", dtype=torch.float64)


@pytest.mark.parametrize("kind", ["LRU", "S5", "S4D"])
def test_regulariser_is_the_sum_of_the_cores_hsvs(kind):
    """The differentiable route agrees with the core on the sum (not on each small HSV)."""
    import lti_reduce_torch.layers as layers
    torch.manual_seed(0)
    layer = getattr(layers, kind)(3, 8, dtype=torch.float64)
    hsv, energy, modulus = layer_spectrum(layer)
    assert len(hsv) == len(energy) == len(modulus) == (8 if kind != "S4D" else 24)
    assert all(a >= b for a, b in zip(hsv, hsv[1:]))
    value = float(hankel_nuclear_norm_regulariser([layer]).detach())
    assert value == pytest.approx(sum(hsv), rel=1e-9)


def test_regulariser_refuses_a_layer_without_discrete():
    from lti_reduce_torch.layers import DenseLTI
    from validation.errors import ConfigError
    with pytest.raises(ConfigError, match="DenseLTI"):
        hankel_nuclear_norm_regulariser([DenseLTI(2, 3)])


def test_nuclear_norm_gradient_matches_finite_differences():
    layer = _lru(n=8, h=3, seed=1)
    names = ["nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im"]
    loss = hankel_nuclear_norm_regulariser([layer])
    assert loss.dtype == torch.float64 and torch.isfinite(loss)
    loss.backward()
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name in names:
        p = getattr(layer, name)
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        for _ in range(3):
            idx = tuple(int(rng.integers(0, s)) for s in p.shape)
            with torch.no_grad():
                orig = p[idx].item()
                p[idx] = orig + eps
                up = float(hankel_nuclear_norm_regulariser([layer]).detach())
                p[idx] = orig - eps
                down = float(hankel_nuclear_norm_regulariser([layer]).detach())
                p[idx] = orig
            fd = (up - down) / (2 * eps)
            assert abs(fd - float(p.grad[idx])) <= 1e-6 * max(1.0, abs(fd)), (name, idx, fd, float(p.grad[idx]))


def test_nuclear_norm_gradcheck_and_repeated_modes_stay_finite():
    g = torch.Generator().manual_seed(3)
    n, m, p = 6, 2, 2
    nu = (torch.randn(n, generator=g, dtype=torch.float64) * 0.3 - 2).requires_grad_()
    th = torch.randn(n, generator=g, dtype=torch.float64).requires_grad_()
    Br, Bi = torch.randn(n, m, generator=g, dtype=torch.float64), torch.randn(n, m, generator=g, dtype=torch.float64)
    Cr, Ci = torch.randn(p, n, generator=g, dtype=torch.float64), torch.randn(p, n, generator=g, dtype=torch.float64)
    args = [nu, th, Br.requires_grad_(), Bi.requires_grad_(), Cr.requires_grad_(), Ci.requires_grad_()]

    def f(nu, th, Br, Bi, Cr, Ci):
        lam = torch.exp(torch.complex(-torch.exp(nu), torch.exp(th)))
        return diagonal_hankel_nuclear_norm(lam, torch.complex(Br, Bi), torch.complex(Cr, Ci))

    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-6, rtol=1e-5)
    # two identical modes: the Gramians have a repeated / zero eigenvalue; gradients stay finite
    with torch.no_grad():
        for t in (nu, th):
            t[1] = t[0]
        Br[1], Bi[1], Cr[:, 1], Ci[:, 1] = Br[0], Bi[0], Cr[:, 0], Ci[:, 0]
    out = f(*args)
    grads = torch.autograd.grad(out, args)
    assert all(torch.isfinite(gr).all() for gr in grads)


def test_psd_sqrt_backward_is_the_sylvester_solution():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(5, 5, generator=g, dtype=torch.complex128)
    P = (X @ X.mH + 0.1 * torch.eye(5, dtype=torch.complex128)).requires_grad_()
    assert torch.autograd.gradcheck(lambda P: psd_sqrt(P).real.sum() + psd_sqrt(P).imag.pow(2).sum(),
                                    [P], eps=1e-7, atol=1e-6, rtol=1e-5)
    S = psd_sqrt(P.detach())
    torch.testing.assert_close(S @ S, P.detach(), rtol=1e-10, atol=1e-10)
    lam = torch.tensor([0.5 + 0.1j, -0.3j], dtype=torch.complex128)
    B = torch.tensor([[1.0], [2.0]], dtype=torch.complex128)
    C = torch.tensor([[1.0, 1.0]], dtype=torch.complex128)
    Pg, Qg = diagonal_gramians(lam, B, C)
    A = torch.diag(lam)
    torch.testing.assert_close(A @ Pg @ A.mH + B @ B.mH, Pg)     # discrete Lyapunov equations
    torch.testing.assert_close(A.mH @ Qg @ A + C.mH @ C, Qg)


def test_hankel_norm_of_change():
    import lti_reduce
    from lti_reduce import DiagonalStateSpace
    g = torch.Generator().manual_seed(7)
    n, m, p = 5, 2, 3
    lam = 0.9 * torch.exp(1j * torch.rand(n, generator=g, dtype=torch.float64) * 6).to(torch.complex128)
    B = torch.randn(n, m, generator=g, dtype=torch.complex128)
    C = torch.randn(p, n, generator=g, dtype=torch.complex128)
    D = torch.zeros(p, m, dtype=torch.complex128)

    def sys(lam, B, C):
        return DiagonalStateSpace(lam, B, C, D, dt=True)

    sigma1 = float(lti_reduce.hankel_singular_values(sys(lam, B, C))[0])
    assert hankel_norm_of_change(sys(lam, B, C), sys(lam, B, C)) < 1e-6 * sigma1
    # change of B only: G1 - G0 is the system (lam, dB, C)
    dB = 1e-3 * torch.randn(n, m, generator=g, dtype=torch.complex128)
    expect = float(lti_reduce.hankel_singular_values(sys(lam, dB, C))[0])
    assert hankel_norm_of_change(sys(lam, B + dB, C), sys(lam, B, C)) == pytest.approx(expect, rel=1e-6)
    # the dense realisation of the difference gives the same number
    lam1 = lam * 0.99
    dense = lti_reduce.StateSpace(torch.diag(lam1), B, C, D, dt=True)
    old = lti_reduce.StateSpace(torch.diag(lam), B, C, D, dt=True)
    assert hankel_norm_of_change(dense, old) == pytest.approx(hankel_norm_of_change(sys(lam1, B, C), sys(lam, B, C)),
                                                              rel=1e-8)
