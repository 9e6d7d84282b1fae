"""rebind_optimizer_: reduced parameters take the old ones' places; state kept, mapped or dropped."""

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lti_reduce_torch.optim import rebind_optimizer_, RebindSummary  # noqa: E402
from lti_reduce_torch.reduce import reduce_, reducible_layers  # noqa: E402
from tests.torch.test_reduce import Net, train  # noqa: E402


def ssm_params(model):
    return [p for _, m in reducible_layers(model) for p in m.parameters()]


def build(kind, model):
    ssm = {id(p) for p in ssm_params(model)}
    rest = [p for p in model.parameters() if id(p) not in ssm]
    if kind == "sgd":
        return [torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)]
    if kind == "adam":
        return [torch.optim.Adam(model.parameters(), lr=1e-2)]
    if kind == "adamw-groups":   # published sCIFAR recipe: SSM lr x 0.25, no weight decay on SSM
        return [torch.optim.AdamW([{"params": ssm_params(model), "lr": 2.5e-3, "weight_decay": 0.0},
                                   {"params": rest, "lr": 1e-2, "weight_decay": 0.05}])]
    if kind == "two":
        return [torch.optim.Adam(ssm_params(model), lr=2.5e-3), torch.optim.SGD(rest, lr=1e-2, momentum=0.9)]
    raise ValueError(kind)


def live_ids(opts):
    return [id(p) for opt in opts for g in opt.param_groups for p in g["params"]]


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw-groups", "two"])
def test_rebind_after_reduction(kind):
    model = Net(("lru", "s4d", "dense"), n=12)
    opts = build(kind, model)
    scheds = [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5) for opt in opts]
    train(model, opts, 3)
    groups = [(opt, [g for g in opt.param_groups], [len(g["params"]) for g in opt.param_groups]) for opt in opts]
    before = {id(p): p for p in model.parameters()}
    kept_state = {id(p): {k: (v, v.clone()) for k, v in opt.state[p].items()}
                  for opt in opts for p in opt.state}

    report = reduce_(model, energy=0.2, optimizers=opts)
    assert report.changed
    now = list(model.parameters())
    replaced = [p for p in now if id(p) not in before]
    assert replaced
    # exactly the model's live trainable parameters, each once, in the same groups
    ids = live_ids(opts)
    assert sorted(ids) == sorted(id(p) for p in now if p.requires_grad)
    for opt, gs, counts in groups:
        assert all(a is b for a, b in zip(gs, opt.param_groups))
        assert [len(g["params"]) for g in opt.param_groups] == counts
    # untouched parameters: bit-identical state, the very same tensors
    for p in now:
        if id(p) in before:
            opt = next(o for o in opts if any(q is p for g in o.param_groups for q in g["params"]))
            for key, (obj, value) in kept_state[id(p)].items():
                assert opt.state[p][key] is obj and torch.equal(obj, value)
        else:
            assert all(p not in opt.state for opt in opts)   # balanced: state dropped

    values = {id(p): p.detach().clone() for p in replaced}
    train(model, opts, 1, seed=50)
    for p in replaced:
        opt = next(o for o in opts if any(q is p for g in o.param_groups for q in g["params"]))
        assert p.grad is not None and bool((p.grad != 0).any())
        state = opt.state[p]
        if isinstance(opt, torch.optim.SGD):
            # fresh momentum buffer: the first update is exactly lr * grad (it may round to
            # nothing in float32 for a large entry with a tiny gradient)
            assert torch.equal(state["momentum_buffer"], p.grad)
            assert torch.equal(p.detach(), values[id(p)].add(p.grad, alpha=-opt.param_groups[0]["lr"]))
        else:
            assert float(state["step"]) == 1.0           # restarted, not an old count
            assert not torch.equal(p.detach(), values[id(p)]), "a reduced parameter did not move"
    lrs = [[g["lr"] for g in opt.param_groups] for opt in opts]
    for s in scheds:
        s.step()
    assert [[g["lr"] for g in opt.param_groups] for opt in opts] == [[lr * 0.5 for lr in x] for x in lrs]


def _keep_from_values(old, new):
    """Indices i with new[j] == old[i] along the last axis (values distinct)."""
    return torch.stack([torch.nonzero(old == v)[0, 0] for v in new])


def test_modal_selection_maps_moments_exactly():
    model = Net(("lru", "s4d"), n=12)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, opt, 3)
    lru, s4d = model.blocks[0].ssm, model.blocks[1].ssm
    old = {name: (p.detach().clone(), {k: v.clone() for k, v in opt.state[p].items()})
           for name, p in list(lru.named_parameters(prefix="lru")) + list(s4d.named_parameters(prefix="s4d"))}
    reduce_(model, order=5, select="random", generator=torch.Generator().manual_seed(3), optimizers=opt)
    keep = _keep_from_values(old["lru.theta_log"][0], lru.theta_log.detach())
    for name in ("nu_log", "theta_log", "gamma_log", "B_re", "B_im"):
        p = getattr(lru, name)
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(opt.state[p][key], old[f"lru.{name}"][1][key].index_select(0, keep)), name
        assert torch.equal(opt.state[p]["step"], old[f"lru.{name}"][1]["step"])
    for name in ("C_re", "C_im"):
        p = getattr(lru, name)
        assert torch.equal(opt.state[p]["exp_avg"], old[f"lru.{name}"][1]["exp_avg"][:, keep])
    for c in range(s4d.h):
        keep_c = _keep_from_values(old["s4d.A_im"][0][c], s4d.A_im.detach()[c])
        for name in ("A_im", "B_re", "C_im"):
            p = getattr(s4d, name)
            assert torch.equal(opt.state[p]["exp_avg_sq"][c], old[f"s4d.{name}"][1]["exp_avg_sq"][c, keep_c])
    # D and log_step were not touched: same parameter objects, same state
    assert torch.equal(opt.state[s4d.log_step]["exp_avg"], old["s4d.log_step"][1]["exp_avg"])
    train(model, opt, 1, seed=9)


def test_rebind_direct_map_drop_and_summary():
    a = nn.Parameter(torch.arange(6.0))
    b = nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([a, b], lr=0.1)
    (a.sum() + (b ** 2).sum()).backward()
    opt.step()
    b_state = dict(opt.state[b])
    a_state = {k: v.clone() for k, v in opt.state[a].items()}
    a2 = nn.Parameter(a.detach()[[0, 2, 5]].clone())
    summary = rebind_optimizer_(opt, {a: a2}, {a: lambda t: t[[0, 2, 5]]})
    assert summary == RebindSummary(replaced=1, mapped=1, dropped=0)
    assert opt.param_groups[0]["params"][0] is a2 and a not in opt.state
    assert torch.equal(opt.state[a2]["exp_avg"], a_state["exp_avg"][[0, 2, 5]])
    assert torch.equal(opt.state[a2]["step"], a_state["step"])
    assert all(opt.state[b][k] is v for k, v in b_state.items())
    # no map: the state goes, the next step restarts at 1
    b2 = nn.Parameter(torch.ones(2))
    assert rebind_optimizer_(opt, {b: b2}) == RebindSummary(1, 0, 1)
    assert b2 not in opt.state
    opt.zero_grad()
    (a2.sum() + b2.sum()).backward()
    opt.step()
    assert float(opt.state[b2]["step"]) == 1.0 and float(opt.state[a2]["step"]) == 2.0
    # a parameter the optimizer does not hold is ignored
    assert rebind_optimizer_(opt, {nn.Parameter(torch.ones(1)): nn.Parameter(torch.ones(1))}).replaced == 0


def test_rebind_drops_state_that_is_not_per_element():
    p = nn.Parameter(torch.ones(4))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    p.sum().backward()
    opt.step()
    opt.state[p]["factored_row"] = torch.zeros(2)           # not element-wise: no exact map
    q = nn.Parameter(torch.ones(2))
    assert rebind_optimizer_(opt, {p: q}, {p: lambda t: t[:2]}).dropped == 1
    assert q not in opt.state


def test_rebind_momentum_buffer_is_mapped():
    p = nn.Parameter(torch.arange(4.0))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    (p ** 2).sum().backward()
    opt.step()
    buf = opt.state[p]["momentum_buffer"].clone()
    q = nn.Parameter(p.detach()[2:].clone())
    rebind_optimizer_(opt, {p: q}, {p: lambda t: t[2:]})
    assert torch.equal(opt.state[q]["momentum_buffer"], buf[2:])


def test_rebind_errors_leave_optimizer_unchanged():
    a, b = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([a, b])
    (a.sum() + b.sum()).backward()
    opt.step()
    state = {p: dict(s) for p, s in opt.state.items()}
    with pytest.raises(TypeError, match="replacements"):
        rebind_optimizer_(opt, [(a, b)])
    with pytest.raises(TypeError, match="optimizer"):
        rebind_optimizer_("opt", {})
    with pytest.raises(ValueError, match="already in the optimizer"):
        rebind_optimizer_(opt, {a: b})
    with pytest.raises(ValueError, match="shape"):
        rebind_optimizer_(opt, {a: nn.Parameter(torch.ones(2))}, {a: lambda t: t})
    with pytest.raises(TypeError, match="callables"):
        rebind_optimizer_(opt, {a: nn.Parameter(torch.ones(2))}, {a: 3})
    assert opt.param_groups[0]["params"][0] is a and opt.param_groups[0]["params"][1] is b
    assert {p: dict(s) for p, s in opt.state.items()} == state
