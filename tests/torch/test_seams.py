"""One criterion rule (core, reduce_, Compressor), pluggable selection methods, no import cycle."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lti_reduce as lr  # noqa: E402
from lti_reduce import CriterionTypeError, InvalidParameterError  # noqa: E402
from lti_reduce_torch import Compressor, LRU, S4D, get_adapter, reduce_  # noqa: E402
from lti_reduce_torch.selection import (ModalSelection, SelectionMethod, as_selection, modal_energy,  # noqa: E402
                                        BALANCED, RANDOM, SMALLEST)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lti_reduce_torch"


def lru_model(n=8, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(LRU(3, n, readout="pre", dtype=torch.float64))


def system(n=8):
    rng = np.random.default_rng(0)
    lam = 0.9 * np.exp(1j * np.linspace(0.2, 3.0, n))
    return lr.DiagonalStateSpace(lam, rng.standard_normal((n, 2)), rng.standard_normal((3, n)),
                                 np.zeros((3, 2)), dt=True)


def error_of(call):
    """Type and message; the core knows n before it checks, reduce_ per layer: "[0, n=8]" -> "[0, n]"."""
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), re.sub(r"n=\d+\]", "n]", str(info.value))


# ------------------------------------------------------------------------------ one rule
@pytest.mark.parametrize("kw", [
    {"energy": 0.0}, {"energy": 1.0}, {"energy": True}, {"energy": "0.1"}, {"energy": float("nan")},
    {"tol": -1.0}, {"tol": float("inf")}, {"tol": True}, {"order": True}, {"order": 2.0}, {"order": -1},
    {"order": np.True_}, {}, {"order": 2, "energy": 0.1},
])
def test_core_and_reduce_raise_the_same_error(kw):
    core = error_of(lambda: lr.balanced_truncation(system(), **kw))
    torch_side = error_of(lambda: reduce_(lru_model(), **kw))
    direct = error_of(lambda: lr.check_criterion(**kw))
    assert core == torch_side == direct
    assert issubclass(core[0], InvalidParameterError)
    if "energy" in kw and len(kw) == 1:
        assert error_of(lambda: Compressor(lru_model(), (), energy=kw["energy"], events=[1])) == core


@pytest.mark.parametrize("bad", [True, 2.0, "3", None])
def test_type_errors_are_both_value_and_type_errors(bad):
    with pytest.raises(TypeError):
        lr.check_criterion(order=bad) if bad is not None else lr.check_criterion(order={"x": 3})
    with pytest.raises(ValueError):
        lr.check_criterion(energy=bad if bad is not None else [0.1])


def test_batched_orders_reject_bools_like_scalars():
    batched = lr.DiagonalStateSpace(np.full((2, 3), 0.5), np.ones((2, 3, 1)), np.ones((2, 1, 3)),
                                    np.zeros((2, 1, 1)), dt=True)
    for order in ([True, 3], np.array([True, False]), [1, 2.0]):
        with pytest.raises(CriterionTypeError, match=r"order\[\d\] must be an integer in \[0, n=3\]"):
            lr.balanced_truncation(batched, order=order)
    with pytest.raises(CriterionTypeError, match="order must be an integer"):
        lr.balanced_truncation(batched, order=True)
    assert [r.order for r in lr.balanced_truncation(batched, order=[1, 1])] == [1, 1]


def test_tol_zero_is_the_numerical_rank_everywhere():
    model = lru_model(n=6)
    with torch.no_grad():
        model[0].C_re[:, 2] = 0
        model[0].C_im[:, 2] = 0                       # mode 2 unobservable: rank 5
    hsv = get_adapter(model[0]).reduction_system(model[0])
    assert lr.select_order(lr.hankel_singular_values(hsv).numpy(), tol=0) == 5
    u = torch.randn(2, 20, 3, dtype=torch.float64)
    with torch.no_grad():
        before = model(u)
    report = reduce_(model, tol=0)
    assert report["0"].new_n == 5 and report["0"].error_bound == 0.0
    with torch.no_grad():
        assert torch.allclose(model(u), before, rtol=0, atol=1e-10)


def test_order_zero_leaves_the_feedthrough():
    model = lru_model(n=5)
    u = torch.randn(2, 10, 3, dtype=torch.float64)
    report = reduce_(model, order=0)
    assert report["0"].new_n == 0 and model[0].n == 0
    with torch.no_grad():
        assert torch.allclose(model(u), u * model[0].D, rtol=0, atol=1e-12)


def test_order_above_rank_is_clipped_by_the_core_note():
    model = lru_model(n=6)
    with torch.no_grad():
        model[0].B_re[1] = 0
        model[0].B_im[1] = 0                           # mode 1 unreachable: rank 5
    report = reduce_(model, order=6)
    assert report["0"].new_n == 5
    assert "exceeds the numerical rank 5" in report["0"].reason


# ------------------------------------------------------------------------------ selection methods
class SlowestModes(ModalSelection):
    """Keep the modes of largest |lambda|."""

    name = "slowest"

    def rank_modes(self, system, *, horizon=None, generator=None):
        return torch.argsort(-system.eigenvalues.abs(), dim=-1, stable=True)


class RefuseAll(SelectionMethod):
    name = "refuse-all"

    def reduce_group(self, layers, *, horizon=None, generator=None):
        for layer in layers:
            layer.status = "refused"
            layer.note("refused by the test's selection method")


def test_user_defined_modal_selection():
    model = nn.Sequential(LRU(3, 10, readout="pre", dtype=torch.float64), S4D(3, 6, dtype=torch.float64))
    lam = torch.exp(model[0].discrete()[0].detach())
    system = get_adapter(model[0]).reduction_system(model[0])
    energy = modal_energy(system)
    report = reduce_(model, order={"0": 4}, select=SlowestModes())
    assert report.select == "slowest" and model[0].n == 4
    new_lam = torch.exp(model[0].discrete()[0].detach())
    expected = torch.sort(lam.abs(), descending=True).values[:4]
    assert torch.allclose(torch.sort(new_lam.abs(), descending=True).values, expected, rtol=1e-12)
    kept = torch.argsort(-lam.abs(), stable=True)[:4]
    dropped = torch.ones(10, dtype=torch.bool)
    dropped[kept] = False
    assert report["0"].error_bound == pytest.approx(float(energy[dropped].sum()), rel=1e-12)
    assert model[1].n == 6                                    # not listed: untouched


def test_user_selection_that_refuses_changes_nothing():
    model = lru_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = reduce_(model, order=3, select=RefuseAll())
    assert report["0"].status == "refused" and "test's selection" in report["0"].reason
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_string_aliases_and_bad_selects():
    assert as_selection("balanced") is BALANCED and as_selection("smallest") is SMALLEST
    assert as_selection("random") is RANDOM and as_selection(BALANCED) is BALANCED
    for bad in ("largest", 3, SlowestModes):
        with pytest.raises(InvalidParameterError, match="select must be one of"):
            reduce_(lru_model(), order=3, select=bad)
    with pytest.raises(TypeError, match="generator"):
        reduce_(lru_model(), order=3, select=RANDOM)
    compressor = Compressor(lru_model(), (), energy=0.3, events=[0], select=SlowestModes(), min_ratio=None)
    assert compressor.step(0).select == "slowest"


# ------------------------------------------------------------------------------ imports
def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """(module-level imports, function-level imports) of intra-project modules."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top, nested = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = {target} | {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            targets = {a.name for a in node.names}
        else:
            continue
        targets = {t for t in targets if t.split(".")[0] in ("lti_reduce", "lti_reduce_torch")}
        (top if node.col_offset == 0 else nested).update(targets)
    return top, nested


def test_no_import_cycle_and_layers_do_not_import_adapters():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        top, nested = _imports(path)
        assert not {t for t in nested if t.split(".")[0] == "lti_reduce_torch"}, \
            f"{name} imports project modules inside functions: {nested}"
        graph[name] = {t for t in top if t in modules and t != name}
    for name in graph:                     # a subpackage may not import its parents' __init__
        if name.startswith("lti_reduce_torch.layers"):
            outside = {t for t in graph[name] if not t.startswith("lti_reduce_torch.layers")}
            assert not outside, f"{name} imports {outside}"
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph[node]:
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue                   # package <-> its own submodule: Python's normal order
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join(stack + [nxt])}"
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_no_private_name_imported_across_modules():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                # a private *module* of the package (``from . import _scan``) is fine
                modules = {p.stem for p in path.parent.glob("_*.py")} if node.level and not node.module else set()
                private = [a.name for a in node.names if a.name.startswith("_") and a.name not in modules]
                assert not private, f"{path.relative_to(ROOT)} imports private names {private}"


def test_layers_alone_get_their_adapters_registered():
    code = ("import sys\nimport lti_reduce_torch.layers.lru as m\n"
            "from lti_reduce_torch import get_adapter\n"
            "print(type(get_adapter(m.LRU(2, 3))).__name__)\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "LRUAdapter"
