"""Adapters of the built-in layers: to_lti equals the layer, rebuild is exact or refused."""

import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from lti_reduce import StateSpace, DiagonalStateSpace  # noqa: E402
from lti_reduce_torch import get_adapter, ReductionRefusedError  # noqa: E402
from lti_reduce_torch.layers import LRU, S5, S4D, DenseLTI  # noqa: E402
from lti_reduce_torch.adapters import LRUAdapter, S5Adapter, S4DAdapter, DenseLTIAdapter  # noqa: E402
from tests.torch.reference import assert_unchanged, simulate, snapshot  # noqa: E402

C128, F64 = torch.complex128, torch.float64
LAYERS = ["LRU", "S5", "S5-bilinear", "S4D", "DenseLTI"]
DIAGONAL_MIMO = ["LRU", "S5", "S5-bilinear"]


def make(name, h, n, dtype=F64, **kw):
    cls = {"LRU": LRU, "S5": S5, "S5-bilinear": S5, "S4D": S4D, "DenseLTI": DenseLTI}[name]
    if name == "S5-bilinear":
        kw["discretization"] = "bilinear"
    return cls(h, n, dtype=dtype, **kw)


def apply(module, values):
    """What the surgery does: new Parameters carrying the old ones' attributes."""
    for name, value in values.items():
        old = getattr(module, name)
        assert not isinstance(value, nn.Parameter)
        assert value.dtype == old.dtype and value.device == old.device, name
        new = nn.Parameter(value.clone(), requires_grad=old.requires_grad)
        new.__dict__.update(old.__dict__)
        setattr(module, name, new)
    return module


POINTS = torch.tensor([1.3 + 0.2j, -1.1 + 0.7j, 0.2 - 1.6j, 2.0 + 0j, 0.9j - 0.8], dtype=C128)


def rel_tf_error(sys_a, sys_b):
    Ga, Gb = sys_a.evaluate(POINTS), sys_b.evaluate(POINTS)
    return float((Ga - Gb).abs().max() / Ga.abs().max())


def random_similarity(r, complex_=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = torch.randn(r, r, dtype=F64, generator=g) + torch.eye(r, dtype=F64) * 2
    if complex_:
        T = T + 1j * torch.randn(r, r, dtype=F64, generator=g)
    return T


def transform(system, T):
    """The same transfer function in another basis: (T^-1 A T, T^-1 B, C T, D)."""
    A, B, C, D = (torch.as_tensor(getattr(system, k)) for k in "ABCD")
    dtype = C128 if (T.is_complex() or A.is_complex()) else F64
    A, B, C, D, T = (x.to(dtype) for x in (A, B, C, D, T))
    return StateSpace(torch.linalg.solve(T, A @ T), torch.linalg.solve(T, B), C @ T, D, dt=True)


# ---------------------------------------------------------------- registry
def test_adapters_are_registered():
    assert isinstance(get_adapter(LRU(2, 3)), LRUAdapter)
    assert isinstance(get_adapter(S5(2, 3)), S5Adapter)
    assert isinstance(get_adapter(S4D(2, 3)), S4DAdapter)
    assert isinstance(get_adapter(DenseLTI(2, 3)), DenseLTIAdapter)

    class MyLRU(LRU):
        pass

    assert isinstance(get_adapter(MyLRU(2, 3)), LRUAdapter)


# ---------------------------------------------------------------- to_lti
@pytest.mark.parametrize("readout", ["pre", "post"])
@pytest.mark.parametrize("name", LAYERS)
def test_to_lti_simulates_the_layer(name, readout):
    torch.manual_seed(0)
    layer = make(name, 3, 6, dtype=torch.float32, readout=readout)
    system = get_adapter(layer).to_lti(layer)
    u = torch.randn(2, 50, 3)
    y = layer(u).detach().double()
    y_sys = simulate(system, u)
    assert float((y - y_sys).abs().max()) <= 1e-5 * float(y_sys.abs().max())


@pytest.mark.parametrize("name", LAYERS)
def test_to_lti_types(name):
    layer = make(name, 3, 5, dtype=torch.float32)
    system = get_adapter(layer).to_lti(layer)
    assert system.dt is True
    if name == "DenseLTI":
        assert isinstance(system, StateSpace) and system.A.dtype == F64
    else:
        assert isinstance(system, DiagonalStateSpace) and system.B.dtype == C128
        assert system.eigenvalues.dtype == C128
        assert system.batch_shape == ((3,) if name == "S4D" else ())
        assert (system.m, system.p) == ((1, 1) if name == "S4D" else (3, 3))
    for k in ("B", "C", "D"):
        t = getattr(system, k)
        assert isinstance(t, torch.Tensor) and not t.requires_grad and t.device == layer.D.device
    assert system.is_stable()
    assert get_adapter(layer).state_size(layer) == 5


# ---------------------------------------------------------------- rebuild round trip
def reduced_in_class(name, h, r, readout, seed):
    """A random stable system the layer class can hold, in a random (dense) basis."""
    torch.manual_seed(seed)
    source = make(name, h, r, readout=readout)
    system = get_adapter(source).reduction_system(source)
    if name == "S4D":
        return system, tuple(transform(system[c].to_dense(), random_similarity(r, seed=seed + c))
                             for c in range(h))
    dense = system if isinstance(system, StateSpace) else system.to_dense()
    return system, transform(dense, random_similarity(r, complex_=name != "DenseLTI", seed=seed))


@pytest.mark.parametrize("readout", ["pre", "post"])
@pytest.mark.parametrize("name", LAYERS)
def test_rebuild_round_trip(name, readout):
    h, n, r = 3, 7, 4
    target_sys, reduced = reduced_in_class(name, h, r, readout, seed=1)
    torch.manual_seed(2)
    module = make(name, h, n, readout=readout)
    adapter = get_adapter(module)
    values = adapter.rebuild(module, reduced)
    apply(module, values)
    assert adapter.state_size(module) == r
    rebuilt = adapter.reduction_system(module)
    if name == "S4D":
        for c in range(h):
            assert rel_tf_error(reduced[c], rebuilt[c]) < 1e-10
    else:
        assert rel_tf_error(reduced, rebuilt) < 1e-10
    # and the rebuilt layer runs and equals the system it computes
    u = torch.randn(2, 20, h, dtype=F64)
    torch.testing.assert_close(module(u).detach(), simulate(adapter.to_lti(module), u), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", LAYERS)
def test_rebuild_float32_casts_once(name):
    h, r = 2, 3
    _, reduced = reduced_in_class(name, h, r, "pre", seed=3)
    module = make(name, h, 5, dtype=torch.float32)
    values = get_adapter(module).rebuild(module, reduced)
    assert all(v.dtype == torch.float32 for v in values.values())
    apply(module, values)
    rebuilt = get_adapter(module).reduction_system(module)
    pairs = zip(reduced, rebuilt) if name == "S4D" else [(reduced, rebuilt)]
    for a, b in pairs:
        assert rel_tf_error(a, b) < 1e-4


def test_rebuild_keeps_attributes_and_lru_gamma_reset():
    h, r = 3, 4
    _, reduced = reduced_in_class("LRU", h, r, "pre", seed=4)
    module = LRU(h, 8, dtype=F64)
    values = get_adapter(module).rebuild(module, reduced)
    apply(module, values)
    for p in (module.nu_log, module.theta_log, module.gamma_log):
        assert p._no_weight_decay is True
    mod = torch.exp(-torch.exp(module.nu_log.detach()))
    torch.testing.assert_close(module.gamma_log.detach(), torch.log(torch.sqrt(1 - mod ** 2)))
    angle = torch.exp(module.theta_log.detach())
    assert float(angle.min()) > 0 and float(angle.max()) < 2 * math.pi


def test_s5_new_step_is_geometric_mean():
    h, r = 2, 3
    _, reduced = reduced_in_class("S5", h, r, "pre", seed=5)
    module = S5(h, 6, dtype=F64)
    expected = float(module.log_step.detach().mean())
    values = get_adapter(module).rebuild(module, reduced)
    torch.testing.assert_close(values["log_step"], torch.full((r,), expected, dtype=F64))
    assert float(values["log_neg_Lambda_re"].exp().min()) > 0


def test_s4d_keeps_channel_steps():
    h, r = 3, 2
    _, reduced = reduced_in_class("S4D", h, r, "pre", seed=6)
    module = S4D(h, 5, dtype=F64)
    values = get_adapter(module).rebuild(module, reduced)
    assert "log_step" not in values
    with pytest.raises(ValueError, match="expected 3"):
        get_adapter(module).rebuild(module, reduced[:2])


def test_rebuild_lru_negative_real_eigenvalue_is_held():
    A = torch.diag(torch.tensor([-0.5, 0.3 + 0.4j], dtype=C128))
    B = torch.randn(2, 2, dtype=C128)
    C = torch.randn(2, 2, dtype=C128)
    reduced = StateSpace(A, B, C, torch.diag(torch.tensor([0.5, -1.0], dtype=C128)), dt=True)
    module = LRU(2, 4, dtype=F64)
    apply(module, get_adapter(module).rebuild(module, reduced))
    assert rel_tf_error(reduced, get_adapter(module).reduction_system(module)) < 1e-12


@pytest.mark.parametrize("readout", ["pre", "post"])
@pytest.mark.parametrize("name", LAYERS)
def test_rebuild_to_order_zero(name, readout):
    h = 2
    dtype = F64 if name == "DenseLTI" else C128
    D = torch.tensor([[0.5, 0.0], [0.0, -2.0]], dtype=dtype)
    if name == "DenseLTI":
        D[0, 1] = 0.25
    if name == "S4D":
        reduced = tuple(StateSpace(torch.zeros(0, 0, dtype=dtype), torch.zeros(0, 1, dtype=dtype),
                                   torch.zeros(1, 0, dtype=dtype), D[c:c + 1, c:c + 1], dt=True) for c in range(h))
    else:
        reduced = StateSpace(torch.zeros(0, 0, dtype=dtype), torch.zeros(0, h, dtype=dtype),
                             torch.zeros(h, 0, dtype=dtype), D, dt=True)
    module = make(name, h, 3, readout=readout)
    apply(module, get_adapter(module).rebuild(module, reduced))
    assert get_adapter(module).state_size(module) == 0
    u = torch.randn(2, 6, h, dtype=F64)
    for mode in [m for m in type(module).modes if m != "auto"]:
        module.mode = mode
        torch.testing.assert_close(module(u), u @ D.real.T)


# ---------------------------------------------------------------- guards
def _mimo_system(A, h=2, seed=0, D=None):
    g = torch.Generator().manual_seed(seed)
    r = A.shape[0]
    B = torch.complex(torch.randn(r, h, dtype=F64, generator=g), torch.randn(r, h, dtype=F64, generator=g))
    C = torch.complex(torch.randn(h, r, dtype=F64, generator=g), torch.randn(h, r, dtype=F64, generator=g))
    if D is None:
        D = torch.diag(torch.randn(h, dtype=F64, generator=g)).to(C128)
    return StateSpace(A.to(C128), B, C, D, dt=True)


def _for_layer(name, system, h):
    if name == "S4D":
        return tuple(StateSpace(system.A, system.B[:, :1], system.C[:1], system.D[:1, :1], dt=True)
                     for _ in range(h))
    if name == "DenseLTI":
        return StateSpace(system.A.real, system.B.real, system.C.real, system.D.real, dt=True)
    return system


def _refused(module, reduced, match):
    before = snapshot(module)
    with pytest.raises(ReductionRefusedError, match=match) as info:
        get_adapter(module).rebuild(module, reduced)
    assert_unchanged(module, before)
    return str(info.value)


@pytest.mark.parametrize("name", LAYERS)
def test_refuses_unstable_eigenvalue(name):
    A = torch.diag(torch.tensor([1.01, 0.5], dtype=C128))
    module = make(name, 2, 4)
    _refused(module, _for_layer(name, _mimo_system(A), 2), "not stable")
    A = torch.diag(torch.tensor([0.5, 1.0j], dtype=C128))                   # on the circle
    if name != "DenseLTI":
        _refused(module, _for_layer(name, _mimo_system(A), 2), "modulus >= 1")


def test_refuses_real_positive_eigenvalue_for_lru():
    A = torch.diag(torch.tensor([0.5, 0.3 + 0.2j], dtype=C128))
    module = LRU(2, 4, dtype=F64)
    msg = _refused(module, _mimo_system(A), "real positive")
    assert "theta_log" in msg
    # S5 / S4D hold it (Lambda_im = 0)
    for name in ("S5", "S4D"):
        m = make(name, 2, 4)
        apply(m, get_adapter(m).rebuild(m, _for_layer(name, _mimo_system(A), 2)))


@pytest.mark.parametrize("name", ["LRU", "S5", "S5-bilinear", "S4D"])
def test_refuses_ill_conditioned_eigenvectors(name):
    a = 0.5 + 0.1j
    A = torch.tensor([[a, 1e9], [0, a + 1e-12]], dtype=C128)
    module = make(name, 2, 4)
    msg = _refused(module, _for_layer(name, _mimo_system(A), 2), "condition number")
    number = float(msg.split("condition number ")[1].split()[0])
    assert number > 1e8


def test_condition_threshold_is_configurable():
    A = torch.tensor([[0.5 + 0.1j, 1.0], [0, 0.5 + 0.1j + 1e-3]], dtype=C128)
    module = LRU(2, 4, dtype=F64)
    reduced = _mimo_system(A)
    get_adapter(module).rebuild(module, reduced)                            # cond ~ 1e3: fine
    with pytest.raises(ReductionRefusedError, match="condition number"):
        LRUAdapter(cond_max=10.0).rebuild(module, reduced)


@pytest.mark.parametrize("name", ["LRU", "S5", "S4D"])
def test_refuses_zero_eigenvalue(name):
    A = torch.diag(torch.tensor([0.0, 0.3 + 0.2j], dtype=C128))
    _refused(make(name, 2, 4), _for_layer(name, _mimo_system(A), 2), "eigenvalue 0")


@pytest.mark.parametrize("name", DIAGONAL_MIMO)
def test_refuses_non_diagonal_feedthrough(name):
    A = torch.diag(torch.tensor([0.5 + 0.2j, 0.3 - 0.1j], dtype=C128))
    D = torch.tensor([[1.0, 0.2], [0.0, -1.0]], dtype=C128)
    _refused(make(name, 2, 4), _mimo_system(A, D=D), "not diagonal")
    # an imaginary feedthrough does not change a Re(.) layer's output: accepted and dropped
    module = make(name, 2, 4)
    D = torch.tensor([[1.0, 0.3j], [0.1j, -1.0 + 2j]], dtype=C128)
    values = get_adapter(module).rebuild(module, _mimo_system(A, D=D))
    torch.testing.assert_close(values["D"], torch.tensor([1.0, -1.0], dtype=F64))


@pytest.mark.parametrize("name", DIAGONAL_MIMO)
def test_post_readout_reduces_through_h(name):
    # a 'post' layer computes z (H(z) - D) + D with H = (Lambda, B, C, D); it is rebuilt from a
    # reduced H exactly, although that H_r's G(0) is not diagonal (the published LRU/S5 case)
    A = torch.diag(torch.tensor([0.5 + 0.2j, 0.3 - 0.1j], dtype=C128))
    system = _mimo_system(A, D=torch.eye(2, dtype=C128))
    module = make(name, 2, 4, readout="post")
    adapter = get_adapter(module)
    apply(module, adapter.rebuild(module, system))
    assert rel_tf_error(system, adapter.reduction_system(module)) < 1e-12
    # the layer's own system is the one-step advance of H: same modulus on |z| = 1
    z = torch.exp(1j * torch.linspace(0.1, 3.0, 7, dtype=torch.float64))
    Gh = system.evaluate(z) - system.D
    Gl = adapter.to_lti(module).evaluate(z) - system.D
    torch.testing.assert_close(Gl, z[:, None, None] * Gh, rtol=1e-10, atol=1e-12)


def test_dense_guards():
    module = DenseLTI(2, 4, dtype=F64)
    A = torch.tensor([[0.5, 0.1], [0.0, 0.2]], dtype=F64)
    B = torch.randn(2, 2, dtype=F64)
    C = torch.randn(2, 2, dtype=F64)
    complex_sys = StateSpace(A.to(C128) * (1 + 0.1j), B.to(C128), C.to(C128), dt=True)
    _refused(module, complex_sys, "complex")
    _refused(module, StateSpace(torch.tensor([[0.0, 2.0], [-2.0, 0.0]], dtype=F64), B, C, dt=True), "not stable")
    post = DenseLTI(2, 4, dtype=F64, readout="post")
    _refused(post, StateSpace(torch.tensor([[0.0, 0.5], [0.0, 0.0]], dtype=F64), B, C, dt=True), "condition number")
    # a real system stored as complex with zero imaginary part is fine
    apply(module, get_adapter(module).rebuild(module, StateSpace(A.to(C128), B.to(C128), C.to(C128), dt=True)))
    assert get_adapter(module).state_size(module) == 2


def test_refuses_values_that_overflow_float32():
    # |lambda| so close to 1 that B / gamma overflows float32 (fine in float64)
    A = torch.diag(torch.tensor([0.9999999999999999 * complex(math.cos(1), math.sin(1))], dtype=C128))
    B = torch.full((1, 2), 1e35, dtype=C128)
    system = StateSpace(A, B, torch.ones(2, 1, dtype=C128), torch.zeros(2, 2, dtype=C128), dt=True)
    _refused(LRU(2, 3, dtype=torch.float32), system, "not finite")
    get_adapter(LRU(2, 3, dtype=F64)).rebuild(LRU(2, 3, dtype=F64), system)


# ---------------------------------------------------------------- select_states / resize_
@pytest.mark.parametrize("readout", ["pre", "post"])
@pytest.mark.parametrize("name", ["LRU", "S5", "S5-bilinear", "S4D"])
def test_select_states_is_modal_truncation(name, readout):
    torch.manual_seed(7)
    module = make(name, 2, 6, readout=readout)
    adapter = get_adapter(module)
    full = adapter.to_lti(module)
    keep = torch.tensor([4, 0, 2])
    values = adapter.select_states(module, keep)
    for k, v in values.items():
        assert not isinstance(v, nn.Parameter) and v.dtype == F64
    apply(module, values)
    assert adapter.state_size(module) == 3
    sub = adapter.to_lti(module)
    torch.testing.assert_close(sub.eigenvalues, full.eigenvalues[..., keep])
    torch.testing.assert_close(sub.B, full.B[..., keep, :])
    torch.testing.assert_close(sub.C, full.C[..., :, keep])


def test_s4d_select_states_per_channel():
    torch.manual_seed(8)
    module = S4D(2, 5, dtype=F64)
    adapter = get_adapter(module)
    full = adapter.to_lti(module)
    keep = torch.tensor([[0, 3], [4, 1]])
    apply(module, adapter.select_states(module, keep))
    sub = adapter.to_lti(module)
    for c in range(2):
        torch.testing.assert_close(sub.eigenvalues[c], full.eigenvalues[c, keep[c]])
    with pytest.raises(IndexError):
        adapter.select_states(module, torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="distinct"):
        adapter.select_states(module, torch.tensor([1, 1]))


def test_dense_select_states_not_supported():
    module = DenseLTI(2, 3)
    with pytest.raises(NotImplementedError):
        get_adapter(module).select_states(module, torch.tensor([0]))


@pytest.mark.parametrize("name", LAYERS)
def test_resize_then_load_state_dict(name):
    torch.manual_seed(9)
    small = make(name, 3, 2, dtype=torch.float32)
    big = make(name, 3, 6, dtype=torch.float32)
    attrs = {k: dict(v.__dict__) for k, v in big.named_parameters()}
    adapter = get_adapter(big)
    assert adapter.resize_(big, 2) is big
    assert adapter.state_size(big) == 2
    for k, v in big.named_parameters():
        assert dict(v.__dict__) == attrs[k], k
    big.load_state_dict(small.state_dict())
    u = torch.randn(1, 10, 3)
    torch.testing.assert_close(big(u), small(u))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", LAYERS)
def test_cuda_round_trip(name):
    h, r = 2, 3
    _, reduced = reduced_in_class(name, h, r, "pre", seed=10)
    module = make(name, h, 5).cuda()
    system = get_adapter(module).to_lti(module)
    assert (system.B if name != "DenseLTI" else system.A).device.type == "cuda"
    move = (lambda s: StateSpace(*(torch.as_tensor(getattr(s, k)).cuda() for k in "ABCD"), dt=True))
    reduced = tuple(move(s) for s in reduced) if name == "S4D" else move(reduced)
    values = get_adapter(module).rebuild(module, reduced)
    assert all(v.device.type == "cuda" for v in values.values())
