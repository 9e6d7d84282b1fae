"""Powers of a mode that underflow keep gradients finite.

``exp(z)`` was built as ``torch.polar(exp(Re z), Im z)``, whose backward divides by the
modulus: where ``exp(Re z)`` is subnormal (complex64: Re z in about [-103, -88]) the
reciprocal overflows and a zero component of the result turns it into NaN. On UCR OSULeaf
four CompreSSM runs diverged two steps after a reduction event: the reduced layer had a
mode with |lambda| = 0.79, whose power a^420 in the FFT kernel (L = 427) landed there.
"""

import pytest
import torch

from lti_reduce_torch.layers import LRU, S4D, S5
from lti_reduce_torch.layers._scan import cexp


def test_cexp_values_and_gradients_match_torch_exp():
    torch.manual_seed(0)
    z = torch.randn(7, 5, dtype=torch.complex128, requires_grad=True)
    assert torch.equal(cexp(z).detach(), torch.polar(torch.exp(z.real), z.imag).detach())
    torch.testing.assert_close(cexp(z), torch.exp(z))
    g = torch.randn(7, 5, dtype=torch.complex128)
    (ours,) = torch.autograd.grad(cexp(z), z, g)
    (ref,) = torch.autograd.grad(torch.exp(z), z, g)
    torch.testing.assert_close(ours, ref)
    assert torch.autograd.gradcheck(cexp, (z,))
    assert torch.autograd.gradgradcheck(cexp, (z,))


@pytest.mark.parametrize("dtype, re", [(torch.complex64, -100.0803), (torch.complex128, -740.0)])
def test_cexp_gradient_finite_where_exp_underflows(dtype, re):
    # exp(re) is subnormal (complex64: 3.4e-44; complex128: 4e-322), or 0 further out:
    # polar's backward gave NaN there (1 / |exp(z)| overflows, times a zero component)
    z = torch.tensor([re + 1129.3103j, re - 10.0 + 3.0j, -1e4 + 0.3j, -0.5 + 2.0j], dtype=dtype,
                     requires_grad=True)
    out = cexp(z)
    (g,) = torch.autograd.grad(out.real.sum() + out.imag.sum(), z)
    assert torch.isfinite(torch.view_as_real(g)).all()
    # holomorphic: grad = grad_out * conj(exp(z)) with grad_out = 1 + 1j for Re + Im
    torch.testing.assert_close(g, (1 + 1j) * torch.exp(z).conj().detach())


def test_powers_gradient_finite_on_the_osuleaf_mode():
    # the FFT kernel's a^(q T) of the mode that made CompreSSM diverge (complex64, q T = 420)
    from lti_reduce_torch.layers._scan import powers
    log_a = torch.tensor([complex(-100.0803, 1129.3103) / 420], dtype=torch.complex64, requires_grad=True)
    P = powers(log_a, 21, 21)
    (g,) = torch.autograd.grad(P.real.sum() + P.imag.sum(), log_a)
    assert torch.isfinite(torch.view_as_real(g)).all()


def _near_zero_mode(layer):
    # one mode with |lambda| = exp(-925) (powers 0 from the first step on)
    with torch.no_grad():
        if isinstance(layer, LRU):
            layer.nu_log[0] = 6.83
        elif isinstance(layer, S5):
            layer.log_neg_Lambda_re[0] = 7.0      # Re(Lambda) = -1100: exp(Lambda step) ~ 0
            layer.log_step.fill_(0.0)
        else:
            layer.log_neg_A_re[:, 0] = 7.0
            layer.log_step.fill_(0.0)
    return layer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mode", ["sequential", "chunked", "assoc", "fft"])
@pytest.mark.parametrize("cls", [LRU, S5, S4D])
def test_layer_gradients_finite_with_a_mode_near_zero(cls, mode, dtype):
    if mode not in cls.modes:
        pytest.skip(f"{cls.__name__} has no mode {mode!r}")
    torch.manual_seed(0)
    layer = _near_zero_mode(cls(4, 8, mode=mode, dtype=dtype))
    u = torch.randn(2, 300, 4, dtype=dtype)
    y = layer(u)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    for name, p in layer.named_parameters():
        assert torch.isfinite(p.grad).all(), name
