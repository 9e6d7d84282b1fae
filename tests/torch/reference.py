"""Reference simulations and parameter snapshots shared by the adapter tests (built-in and third-party layers).

Imports torch: a test module imports this after ``pytest.importorskip("torch")``.
"""

import torch

from lti_reduce import DiagonalStateSpace

C128 = torch.complex128


def simulate(system, u, post=False):
    """Output of ``system`` for input ``u`` (batch, L, m) from zero state, in complex128, real part.

    Standard form (the core's): ``y[k] = Re(C x[k] + D u[k])``, then ``x[k+1] = A x[k] + B u[k]``.
    ``post=True``, the layers' convention: ``x_k = A x_{k-1} + B u_k`` first, then
    ``y_k = Re(C x_k + D u_k)``. A DiagonalStateSpace with a batch shape (S4D) is h SISO channels.
    """
    u = u.detach().to(C128)
    batch, L, m = u.shape
    if isinstance(system, DiagonalStateSpace) and system.batch_shape:
        lam, B, C, D = system.eigenvalues, system.B[..., 0], system.C[..., 0, :], system.D[..., 0, 0]
        x = torch.zeros((batch,) + tuple(lam.shape), dtype=C128)

        def update(x, uk):
            return lam * x + B * uk.unsqueeze(-1)

        def output(x, uk):
            return ((C * x).sum(-1) + D * uk).real
    else:
        A, B, C, D = (torch.as_tensor(getattr(system, k)).to(C128) for k in "ABCD")
        x = torch.zeros(batch, A.shape[0], dtype=C128)

        def update(x, uk):
            return x @ A.T + uk @ B.T

        def output(x, uk):
            return (x @ C.T + uk @ D.T).real
    ys = []
    for k in range(L):
        if post:
            x = update(x, u[:, k])
        ys.append(output(x, u[:, k]))
        if not post:
            x = update(x, u[:, k])
    return torch.stack(ys, 1)


def snapshot(module):
    """Clones of the module's parameters by name."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def assert_unchanged(module, before):
    """The module has the parameters of ``snapshot`` ``before``: same names, shapes and values (exactly)."""
    after = snapshot(module)
    assert after.keys() == before.keys()
    for k in before:
        assert after[k].shape == before[k].shape and torch.equal(after[k], before[k]), k
