import math

import numpy as np
import pytest
import torch

from validation.losses import kd_loss, diagonal_hsv, lru_system, hankel_nuclear_norm, psd_sqrt, diagonal_gramians


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


def test_hsv_match_the_core():
    import lti_reduce
    from lti_reduce_torch import get_adapter
    layer = _lru()
    ours = diagonal_hsv(*lru_system(layer)).detach().numpy()
    core = lti_reduce.hankel_singular_values(get_adapter(layer).to_lti(layer))
    core = np.asarray(core.detach().cpu() if isinstance(core, torch.Tensor) else core, dtype=float)
    np.testing.assert_allclose(ours, np.sort(core)[::-1], rtol=1e-9, atol=1e-12 * ours[0])


def test_nuclear_norm_gradient_matches_finite_differences():
    layer = _lru(n=8, h=3, seed=1)
    names = ["nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im"]
    loss = hankel_nuclear_norm([layer])
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
                up = float(hankel_nuclear_norm([layer]))
                p[idx] = orig - eps
                down = float(hankel_nuclear_norm([layer]))
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
        return diagonal_hsv(lam, torch.complex(Br, Bi), torch.complex(Cr, Ci)).sum()

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


def test_hankel_norm_of_difference():
    import lti_reduce
    from validation.losses import hankel_norm_of_difference
    g = torch.Generator().manual_seed(7)
    n, m, p = 5, 2, 3
    lam = 0.9 * torch.exp(1j * torch.rand(n, generator=g, dtype=torch.float64) * 6).to(torch.complex128)
    B = torch.randn(n, m, generator=g, dtype=torch.complex128)
    C = torch.randn(p, n, generator=g, dtype=torch.complex128)
    assert float(hankel_norm_of_difference((lam, B, C), (lam, B, C))) < 1e-6 * float(diagonal_hsv(lam, B, C)[0])
    # change of B only: G1 - G0 is the system (lam, dB, C)
    dB = 1e-3 * torch.randn(n, m, generator=g, dtype=torch.complex128)
    expect = float(diagonal_hsv(lam, dB, C)[0])
    got = float(hankel_norm_of_difference((lam, B + dB, C), (lam, B, C)))
    assert got == pytest.approx(expect, rel=1e-6)
    # against the core on the dense realisation of the difference
    lam1 = lam * 0.99
    A = torch.diag(torch.cat([lam1, lam]))
    sys = lti_reduce.StateSpace(A.numpy(), torch.cat([B, B]).numpy(), torch.cat([C, -C], 1).numpy(), dt=True)
    core = np.max(np.asarray(lti_reduce.hankel_singular_values(sys)))
    assert float(hankel_norm_of_difference((lam1, B, C), (lam, B, C))) == pytest.approx(core, rel=1e-8)
