"""The "Write an adapter" page (docs/write_an_adapter.md) runs as written, and the toolkit's guards."""

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import lti_reduce_torch as ltt  # noqa: E402
from lti_reduce import DiagonalStateSpace, StateSpace  # noqa: E402
from lti_reduce_torch import toolkit  # noqa: E402

PAGE = Path(__file__).resolve().parents[2] / "docs" / "write_an_adapter.md"
C128, F64 = torch.complex128, torch.float64


def page_code():
    return "\n\n".join(re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S))


def test_page_example_runs():
    namespace = {"__name__": "write_an_adapter_page"}
    try:
        exec(compile(page_code(), str(PAGE), "exec"), namespace)
        layer_type = namespace["DecayLayer"]
        assert isinstance(ltt.get_adapter(layer_type(2, 3)), namespace["DecayAdapter"])
    finally:
        if "DecayLayer" in namespace:
            ltt.unregister_adapter(namespace["DecayLayer"])


def test_toolkit_names_are_exported():
    for name in toolkit.__all__:
        assert getattr(ltt, name) is getattr(toolkit, name)
        assert getattr(toolkit, name).__doc__, name


def test_modal_form_reproduces_the_system_and_refuses():
    A = torch.tensor([[0.5, 1.0], [0.0, -0.25 + 0.1j]], dtype=C128)
    B = torch.tensor([[1.0], [2.0]], dtype=C128)
    C = torch.tensor([[1.0, -1.0]], dtype=C128)
    lam, Bm, Cm = toolkit.modal_form(A, B, C)
    z = torch.tensor(1.3 + 0.4j, dtype=C128)
    G = C @ torch.linalg.solve(z * torch.eye(2, dtype=C128) - A, B)
    Gm = (Cm / (z - lam)) @ Bm
    assert torch.allclose(G, Gm, rtol=1e-13, atol=0)
    with pytest.raises(ltt.ReductionRefusedError, match="not stable.*modulus >= 1"):
        toolkit.modal_form(A * 3, B, C, layer="X")
    jordan = torch.tensor([[0.5, 1.0], [0.0, 0.5]], dtype=C128)
    with pytest.raises(ltt.ReductionRefusedError, match="^X: .*not diagonalisable"):
        toolkit.modal_form(jordan, B, C, layer="X")


def test_check_same_response_sees_a_small_change():
    lam = torch.tensor([0.5 + 0.2j, -0.3j], dtype=C128)
    B = torch.ones(2, 2, dtype=C128)
    C = torch.ones(2, 2, dtype=C128)
    D = torch.zeros(2, 2, dtype=C128)
    ref = DiagonalStateSpace(lam, B, C, D, dt=True)
    toolkit.check_same_response(ref, DiagonalStateSpace(lam, B, C, D, dt=True))
    toolkit.check_same_response(ref, DiagonalStateSpace(lam, B, C, D + 1e-3j, dt=True))  # Re(.) unchanged
    with pytest.raises(ltt.ReductionRefusedError, match="mismatch"):
        toolkit.check_same_response(ref, DiagonalStateSpace(lam, B, C * (1 + 1e-5), D, dt=True))
    dense = StateSpace(torch.diag(lam), B, C, D, dt=True)
    toolkit.check_same_response(ref, dense)


def test_cast_parameters_refuses_overflow_and_unknown_names():
    module = torch.nn.Linear(2, 2).to(torch.float32)
    out = toolkit.cast_parameters(module, {"bias": torch.tensor([1.0, 2.0], dtype=F64)})
    assert out["bias"].dtype == torch.float32 and out["bias"].tolist() == [1.0, 2.0]
    with pytest.raises(ltt.ReductionRefusedError, match="'bias' is not finite in torch.float32"):
        toolkit.cast_parameters(module, {"bias": torch.tensor([1e300, 0.0], dtype=F64)}, layer="L")
    with pytest.raises(KeyError, match="'nope'"):
        toolkit.cast_parameters(module, {"nope": torch.zeros(2, dtype=F64)})


def test_replace_parameter_keeps_attributes():
    module = torch.nn.Linear(3, 2)
    module.weight.requires_grad_(False)
    module.weight._no_weight_decay = True
    new = toolkit.replace_parameter_(module, "weight", torch.zeros(5, 3))
    assert module.weight is new and new.shape == (5, 3)
    assert new.requires_grad is False and new._no_weight_decay is True
    with pytest.raises(TypeError, match="not a parameter"):
        toolkit.replace_parameter_(module, "training", torch.zeros(1))


def test_stack_reduced_checks():
    s = StateSpace(torch.eye(2, dtype=F64) / 2, torch.ones(2, 1, dtype=F64), torch.ones(1, 2, dtype=F64),
                   torch.zeros(1, 1, dtype=F64), dt=True)
    t = StateSpace(torch.eye(3, dtype=F64) / 2, torch.ones(3, 1, dtype=F64), torch.ones(1, 3, dtype=F64),
                   torch.zeros(1, 1, dtype=F64), dt=True)
    A, B, C, D = toolkit.stack_reduced((s, s), batch=2)
    assert A.shape == (2, 2, 2) and A.dtype == C128
    with pytest.raises(ValueError, match="same order"):
        toolkit.stack_reduced((s, t))
    with pytest.raises(ValueError, match="expected 3"):
        toolkit.stack_reduced((s, s), batch=3)
    with pytest.raises(ValueError, match="expected one"):
        toolkit.single_system((s, s))
