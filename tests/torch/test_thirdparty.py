"""Adapters of the PyPI layers lru-pytorch (LRU_pytorch.LRU) and s5-pytorch (s5.S5SSM).

Their forward passes are Python loops (LRU) or vmapped scans: sequences are short.
"""

import os
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
LRU_pytorch = pytest.importorskip("LRU_pytorch")
s5 = pytest.importorskip("s5")

from torch import nn  # noqa: E402

from lti_reduce import StateSpace, balanced_truncation  # noqa: E402
from lti_reduce_torch import (get_adapter, reduce_, ReductionRefusedError, load_reduced_state_dict_,  # noqa: E402
                              state_sizes)
from lti_reduce_torch.thirdparty import registered_packages  # noqa: E402
from lti_reduce_torch.thirdparty.lru_pytorch import LRUPytorchAdapter  # noqa: E402
from lti_reduce_torch.thirdparty.s5_pytorch import S5SSMAdapter  # noqa: E402
from tests.torch.reference import assert_unchanged, simulate, snapshot  # noqa: E402

C128 = torch.complex128
ROOT = pathlib.Path(__file__).resolve().parents[2]
KINDS = ["lru", "s5-zoh", "s5-bilinear"]


def make(kind, seed=0, n=10):
    """(model, reducible layer, input width): a packaged layer inside a small model."""
    torch.manual_seed(seed)
    if kind == "lru":
        layer = LRU_pytorch.LRU(3, 2, n, rmin=0.4, rmax=0.95)     # in=3 != out=2: D is (2, 3)
        return nn.Sequential(layer), layer, 3
    model = s5.S5(3, n)
    if kind == "s5-bilinear":
        model.seq.discretize = s5.discretize_bilinear
    return model, model.seq, 3


def test_both_packages_are_registered():
    pk = registered_packages()
    assert pk["LRU_pytorch"] is LRU_pytorch.LRU and pk["s5"] is s5.S5SSM
    assert isinstance(get_adapter(LRU_pytorch.LRU(2, 2, 3)), LRUPytorchAdapter)
    assert isinstance(get_adapter(s5.S5(2, 4).seq), S5SSMAdapter)


@pytest.mark.parametrize("kind", KINDS)
def test_to_lti_simulates_the_layer(kind):
    model, layer, m = make(kind)
    u = torch.randn(2, 9, m)
    with torch.no_grad():
        y = model(u)
    y_sys = simulate(get_adapter(layer).to_lti(layer), u)
    assert y.shape == y_sys.shape
    assert float((y - y_sys).abs().max()) <= 2e-5 * float(y_sys.abs().max())


@pytest.mark.parametrize("kind", KINDS)
def test_reduced_layer_output_is_the_reduced_system_and_within_the_bound(kind):
    model, layer, m = make(kind)
    adapter = get_adapter(layer)
    H = adapter.reduction_system(layer)
    u = torch.randn(2, 12, m)
    with torch.no_grad():
        y_full = model(u).double()
    report = reduce_(model, order=4)
    entry = report.layers[0]
    assert entry.status == "reduced" and entry.new_n == 4 and adapter.state_size(layer) == 4
    reduced = balanced_truncation(H, 4).system           # the same reduction, done by the core directly
    with torch.no_grad():
        y_red = model(u).double()
    y_ref = simulate(reduced, u, post=True)
    assert float((y_red - y_ref).abs().max()) <= 5e-5 * float(y_ref.abs().max())
    # l2 gain: ||y - y_r||_2 <= ||H - H_r||_inf ||u||_2 <= bound ||u||_2, per sequence
    for b in range(u.shape[0]):
        err = float(torch.linalg.vector_norm(y_full[b] - y_red[b]))
        assert err <= entry.error_bound * float(torch.linalg.vector_norm(u[b].double())) * (1 + 1e-4) + 1e-5
    assert entry.error_bound == pytest.approx(2 * sum(entry.hsv[4:]), rel=1e-12)


def test_lru_running_state_follows_the_state_size():
    model, layer, m = make("lru")
    reduce_(model, order=5)
    with torch.no_grad():
        model(torch.randn(1, 3, m))
    assert layer.state.shape == (5,) and not bool(layer.state.abs().any())
    with torch.no_grad():
        y2 = layer(torch.randn(4, 3))               # (L, in) input form of the package
    assert y2.shape == (4, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_training_continues_with_the_optimizer_rebound(kind):
    model, layer, m = make(kind)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    u, target = torch.randn(2, 6, m), torch.randn(2, 6, 2 if kind == "lru" else 3)

    def step():
        opt.zero_grad()
        loss = ((model(u) - target) ** 2).mean()
        loss.backward()
        opt.step()
        return float(loss.detach())

    step()
    reduce_(model, order=4, optimizers=opt)
    opt_params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert opt_params == {id(p) for p in model.parameters()}
    losses = [step() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
    assert get_adapter(layer).state_size(layer) == 4


@pytest.mark.parametrize("kind", KINDS)
def test_reduced_state_dict_reloads_into_a_fresh_full_size_model(kind):
    model, layer, m = make(kind)
    reduce_(model, order=3)
    fresh, fresh_layer, _ = make(kind, seed=7)
    result = load_reduced_state_dict_(fresh, model.state_dict())
    assert list(result.resized.values()) == [(10, 3)]
    assert state_sizes(fresh) == state_sizes(model)
    u = torch.randn(2, 7, m)
    with torch.no_grad():
        assert torch.equal(fresh(u), model(u))
    if kind == "lru":
        assert fresh_layer.state.shape == (3,)


def test_modal_ablation_keeps_modes_and_maps_optimizer_state():
    model, layer, m = make("s5-zoh")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(1, 4, m)).sum().backward()
    opt.step()
    Lambda = layer.Lambda.detach().clone()
    exp_avg = opt.state[layer.Lambda]["exp_avg"].clone()
    g = torch.Generator().manual_seed(3)
    reduce_(model, order=4, select="random", generator=g, optimizers=opt)
    kept = [int(torch.nonzero(Lambda == v)[0]) for v in layer.Lambda.detach()]
    assert len(set(kept)) == 4
    assert torch.equal(opt.state[layer.Lambda]["exp_avg"], exp_avg[kept])


@pytest.mark.parametrize("kwargs, match", [({"bidir": True}, "bidir"), ({"liquid": True}, "liquid"),
                                           ({"degree": 2}, "degree")])
def test_s5_variants_that_are_not_lti_are_refused_and_nothing_changes(kwargs, match):
    torch.manual_seed(0)
    model = s5.S5(4, 4, **kwargs)
    opt = torch.optim.Adam(model.parameters())
    before = snapshot(model)
    groups = [list(g["params"]) for g in opt.param_groups]
    with pytest.raises(ReductionRefusedError, match=match):
        reduce_(model, order=2, optimizers=opt)
    assert_unchanged(model, before)
    assert [list(g["params"]) for g in opt.param_groups] == groups


def test_s5_unknown_discretization_is_refused():
    model, layer, _ = make("s5-zoh")
    layer.discretize = lambda Lambda, B, step: (Lambda, B)
    with pytest.raises(ReductionRefusedError, match="discretize"):
        reduce_(model, order=2)


def test_lru_rebuild_holds_a_real_positive_eigenvalue_and_refuses_zero():
    _, layer, _ = make("lru", n=2)
    adapter = get_adapter(layer)
    A = torch.diag(torch.tensor([0.5, 0.3 + 0.4j], dtype=C128))
    B = torch.randn(2, 3, dtype=C128)
    C = torch.randn(2, 2, dtype=C128)
    D = layer.D.detach().to(C128)
    values = adapter.rebuild(layer, StateSpace(A, B, C, D, dt=True))
    lam = torch.polar(torch.exp(-torch.exp(values["nu_log"].double())), torch.exp(values["theta_log"].double()))
    assert torch.allclose(torch.sort(lam.real).values, torch.tensor([0.3, 0.5], dtype=torch.float64), atol=1e-6)
    A0 = torch.diag(torch.tensor([0.0, 0.3 + 0.4j], dtype=C128))
    with pytest.raises(ReductionRefusedError, match="eigenvalue 0"):
        adapter.rebuild(layer, StateSpace(A0, B, C, D, dt=True))


def test_rebuild_refuses_an_unstable_reduced_system():
    _, layer, _ = make("s5-zoh", n=2)
    adapter = get_adapter(layer)
    A = torch.diag(torch.tensor([1.2, 0.3 + 0.4j], dtype=C128))
    before = snapshot(layer)
    with pytest.raises(ReductionRefusedError, match="not stable"):
        adapter.rebuild(layer, StateSpace(A, torch.randn(2, 3, dtype=C128), torch.randn(3, 2, dtype=C128),
                                          torch.diag(layer.D.detach().to(C128)), dt=True))
    assert_unchanged(layer, before)


def test_import_without_the_packages_registers_only_the_builtin_layers():
    code = ("import sys; sys.modules['LRU_pytorch'] = None; sys.modules['s5'] = None\n"
            "import lti_reduce_torch as ltr\n"
            "print(sorted(c.__name__ for c in ltr.registered_layer_types()), ltr.thirdparty.registered_packages())")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['DenseLTI', 'LRU', 'S4D', 'S5'] {}"


def test_import_registers_the_packages_without_warnings():
    code = ("import lti_reduce_torch as ltr\n"
            "print(sorted(ltr.thirdparty.registered_packages()))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['LRU_pytorch', 's5']"
