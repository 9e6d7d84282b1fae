"""The eigenvector-conditioning guard of ``modal_form`` at the sizes where it estimates (issue 13).

From r = 192 on the guard first estimates cond_2(V) from below by power steps with the LU
factors of the eigenvector matrix and computes the exact condition number (an SVD) only when
the estimate comes within a factor 100 of ``cond_max``: the decision must be the exact one
on both sides of the threshold.
"""

import pytest

torch = pytest.importorskip("torch")
from lti_reduce_torch import ReductionRefusedError  # noqa: E402
from lti_reduce_torch.toolkit import modal_form  # noqa: E402

R = 200          # above the size where the estimate is used


def _system(kappa, seed=0):
    """A = X diag(lam) X^-1 with cond(X) = kappa, distinct stable eigenvalues, and B, C."""
    g = torch.Generator().manual_seed(seed)
    q1, _ = torch.linalg.qr(torch.randn(R, R, dtype=torch.complex128, generator=g))
    q2, _ = torch.linalg.qr(torch.randn(R, R, dtype=torch.complex128, generator=g))
    sigma = torch.logspace(0, torch.log10(torch.tensor(kappa)).item(), R, dtype=torch.float64)
    X = (q1 * sigma.to(torch.complex128)) @ q2
    lam = 0.9 * torch.linspace(0.1, 1, R, dtype=torch.float64) * torch.exp(1j * torch.linspace(0.1, 6, R,
                                                                                              dtype=torch.float64))
    A = torch.linalg.solve(X.mT, (X * lam).mT).mT          # X diag(lam) X^-1 without an inverse
    B = torch.randn(R, 3, dtype=torch.complex128, generator=g)
    C = torch.randn(2, R, dtype=torch.complex128, generator=g)
    return A, B, C


@pytest.mark.parametrize("kappa", [10.0, 1e5])
def test_guard_decides_exactly_on_both_sides_of_the_threshold(kappa):
    A, B, C = _system(kappa)
    exact = float(torch.linalg.cond(torch.linalg.eig(A)[1]))
    assert exact > 2.0
    for cond_max in (1000 * exact, 2 * exact):              # far below (estimate), near (SVD decides)
        lam, Bm, Cm = modal_form(A, B, C, cond_max=cond_max)
        # the modal form reproduces the system: C (zI - A)^-1 B at a point outside the disc
        z = 1.3 + 0.4j
        eye = torch.eye(R, dtype=torch.complex128)
        G = C @ torch.linalg.solve(z * eye - A, B)
        Gm = (Cm / (z - lam)) @ Bm
        assert torch.allclose(G, Gm, rtol=1e-9 * exact, atol=0)
    with pytest.raises(ReductionRefusedError, match="condition number"):
        modal_form(A, B, C, cond_max=exact / 2)             # just above the threshold: refused


def test_guard_refuses_a_nearly_defective_matrix_at_estimate_size():
    # Q J Q^H with a 3 x 3 Jordan block in J: rounding splits its eigenvalue by ~eps^(1/3) and
    # the computed eigenvectors are nearly parallel (cond(V) ~ eps^(-2/3)); the norm of A is
    # about 1 and every eigenvalue stays well inside the disc
    g = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(R, R, dtype=torch.complex128, generator=g))
    lam = 0.8 * torch.exp(1j * torch.linspace(0.1, 6, R, dtype=torch.float64))
    lam[1] = lam[2] = lam[0]
    T = torch.diag(lam)
    T[0, 1] = T[1, 2] = 1.0
    A = Q @ T @ Q.mH
    B = torch.randn(R, 3, dtype=torch.complex128, generator=g)
    C = torch.randn(2, R, dtype=torch.complex128, generator=g)
    exact = float(torch.linalg.cond(torch.linalg.eig(A)[1]))
    assert exact > 1e9                   # well above the default cond_max = 1e8
    with pytest.raises(ReductionRefusedError, match="not diagonalisable"):
        modal_form(A, B, C)


def test_a_non_finite_layer_system_is_refused_by_name_and_nothing_changes():
    from lti_reduce import NonFiniteError
    from lti_reduce_torch import reduce_
    from lti_reduce_torch.layers import LRU
    torch.manual_seed(0)
    model = torch.nn.Sequential(LRU(4, 16))
    with torch.no_grad():
        model[0].B_re[0, 0] = float("nan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteError, match="^LRU: B of the layer's system contains NaN"):
        reduce_(model, energy=0.1)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:                    # the same values, NaN where it was
        assert torch.equal(before[k].isnan(), after[k].isnan())
        assert torch.equal(before[k].nan_to_num(), after[k].nan_to_num())
