"""python-control compatible ``balred``, ``hsvd``, ``gram``: numbers and types against python-control.

The systems are python-control's documented examples (``ct.tf2ss([1], [1, 2])`` of
``hsvd``, ``ct.rss(4)`` of ``balred``/``gram``, seeded) and small hand-made ones
(unstable, MIMO). State signs of a balanced realisation are not unique, so reduced
systems are compared through their transfer functions, Gramians and ``|A|``.
"""

import numpy as np
import pytest
from scipy import signal

import lti_reduce as lr
from lti_reduce import InvalidParameterError, OrderAdjustedWarning, UnstableSystemError

ct = pytest.importorskip("control")


def needs_slycot():
    # python-control computes balred and gram with slycot (SLICOT, GPL)
    return pytest.importorskip("slycot", reason="python-control's balred/gram need slycot")


def response(sys, w):
    """Frequency response (k, p, m) of a python-control, scipy or lti_reduce system."""
    if isinstance(sys, ct.StateSpace):
        sys = lr.StateSpace.from_control(sys)
    elif isinstance(sys, signal.lti) or isinstance(sys, signal.dlti):
        sys = lr.StateSpace.from_scipy(sys)
    return sys.frequency_response(w)


def rss_example(seed, n=4, p=1, m=1):
    np.random.seed(seed)
    return ct.rss(n, p, m)


W = np.logspace(-2, 3, 60)


def test_hsvd_documented_example():
    G = ct.tf2ss([1], [1, 2])
    H = lr.hsvd(G)
    assert type(H) is np.ndarray and H.dtype == np.float64 and H.shape == (1,)
    assert H[0] == pytest.approx(0.25, rel=1e-14)
    np.testing.assert_allclose(H, ct.hsvd(G), rtol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hsvd_matches_control(seed):
    G = rss_example(seed, n=6, p=2, m=3)
    ours, theirs = lr.hsvd(G), ct.hsvd(G)
    assert type(ours) is type(theirs) and ours.dtype == theirs.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, rtol=1e-8 * theirs[0] / theirs[-1])


def test_hsvd_discrete_where_control_has_none():
    Gd = ct.ss([[0.5, 0.1], [0.0, -0.3]], [[1.0], [1.0]], [[1.0, 0.0]], 0, 0.1)
    with pytest.raises(NotImplementedError):
        ct.hsvd(Gd)
    # first order, x[k+1] = a x[k] + b u[k], y = c x: P = b^2 / (1 - a^2), Q = c^2 / (1 - a^2),
    # hsv = sqrt(P Q) = |b c| / (1 - a^2)
    g1 = lr.hsvd(ct.ss([[0.5]], [[1.0]], [[2.0]], 0, True))
    assert g1[0] == pytest.approx(2.0 / (1 - 0.25), rel=1e-14)
    assert lr.hsvd(Gd).shape == (2,)


@pytest.mark.parametrize("kind", ["c", "o", "cf", "of"])
@pytest.mark.parametrize("dt", [0, 0.1])
def test_gram_matches_control(kind, dt):
    needs_slycot()
    np.random.seed(3)
    G = ct.rss(4, 2, 3, dt=dt)
    ours, theirs = lr.gram(G, kind), ct.gram(G, kind)
    assert type(ours) is np.ndarray and ours.shape == theirs.shape == (4, 4) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11 * np.abs(theirs).max())
    if kind in ("cf", "of"):   # python-control: Wc = Rc' * Rc, Rc upper triangular
        assert np.array_equal(ours, np.triu(ours)) and np.all(np.diag(ours) >= 0)
        np.testing.assert_allclose(ours.T @ ours, ct.gram(G, kind[0]), rtol=1e-9,
                                   atol=1e-12 * np.abs(theirs).max() ** 2)


def test_gram_factor_of_a_singular_gramian():
    # an uncontrollable state: P is singular, a Cholesky factorisation of P would fail
    G = lr.StateSpace(np.diag([-1.0, -2.0, -3.0]), [[1.0], [1.0], [0.0]], [[1.0, 1.0, 1.0]])
    P, R = lr.gram(G, "c"), lr.gram(G, "cf")
    assert np.linalg.matrix_rank(P) == 2
    assert np.array_equal(R, np.triu(R)) and np.all(np.diag(R) >= 0)
    np.testing.assert_allclose(R.T @ R, P, atol=1e-15)


def test_gram_complex_factor():
    G = lr.StateSpace(np.diag([-1 + 2j, -2.0 - 1j]), [[1.0], [1j]], [[1.0, 1.0]])
    R = lr.gram(G, "of")
    assert np.iscomplexobj(R)
    np.testing.assert_allclose(np.diag(R).imag, 0, atol=1e-15)
    np.testing.assert_allclose(R.conj().T @ R, lr.gram(G, "o"), atol=1e-14)


def test_gram_rejects_other_types():
    G = rss_example(0)
    with pytest.raises(InvalidParameterError, match="'c', 'o'.*'cf', 'of'.*got 'x'"):
        lr.gram(G, "x")
    with pytest.raises(ValueError):   # python-control raises ValueError too
        ct.gram(G, "x")


@pytest.mark.parametrize("method", ["truncate", "matchdc"])
def test_balred_documented_example(method):
    needs_slycot()
    G = rss_example(0)
    ours, theirs = lr.balred(G, orders=2, method=method), ct.balred(G, orders=2, method=method)
    assert type(ours) is type(theirs) is ct.StateSpace
    assert ours.nstates == theirs.nstates == 2 and ours.dt == theirs.dt == 0
    np.testing.assert_allclose(response(ours, W), response(theirs, W), rtol=1e-9, atol=1e-12)
    # the same balanced coordinates up to state signs
    np.testing.assert_allclose(np.abs(ours.A), np.abs(theirs.A), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.abs(ours.D), np.abs(theirs.D), rtol=1e-10, atol=1e-14)
    if method == "truncate":   # balanced: both Gramians diag(hsv[:2])
        np.testing.assert_allclose(ct.gram(ours, "c"), np.diag(ct.hsvd(G)[:2]), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(ct.gram(ours, "o"), np.diag(ct.hsvd(G)[:2]), rtol=1e-8, atol=1e-12)
    else:
        np.testing.assert_allclose(ct.dcgain(ours), ct.dcgain(G), rtol=1e-10)


def test_balred_list_of_orders_gives_a_list():
    needs_slycot()
    G = rss_example(1, n=6, p=2, m=2)
    ours, theirs = lr.balred(G, [1, 3, 5]), ct.balred(G, [1, 3, 5])
    assert type(ours) is type(theirs) is list
    assert [g.nstates for g in ours] == [g.nstates for g in theirs] == [1, 3, 5]
    for a, b in zip(ours, theirs):
        assert type(a) is ct.StateSpace
        np.testing.assert_allclose(response(a, W), response(b, W), rtol=1e-8, atol=1e-11)
    # python-control returns a single system for a list of length one; so do we
    assert type(lr.balred(G, [2])) is type(ct.balred(G, [2])) is ct.StateSpace


@pytest.mark.parametrize("method", ["truncate", "matchdc"])
def test_balred_unstable_part_kept_as_control_does(method):
    needs_slycot()
    Gu = ct.ss(np.diag([1.0, -1.0, -2.0, -3.0, -10.0]), np.ones((5, 1)), np.ones((1, 5)), 0)
    ours, theirs = lr.balred(Gu, 3, method=method), ct.balred(Gu, 3, method=method)
    np.testing.assert_allclose(np.sort(ours.poles().real), np.sort(theirs.poles().real), rtol=1e-9)
    np.testing.assert_allclose(response(ours, W), response(theirs, W), rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError):   # fewer states than unstable modes: both refuse
        lr.balred(Gu, 0, method=method)


def test_balred_alpha_moves_the_boundary():
    G = lr.StateSpace(np.diag([-0.1, -1.0, -2.0, -30.0]), np.ones((4, 1)), np.ones((1, 4)))
    Gr = lr.balred(G, 2, alpha=-0.5)
    assert isinstance(Gr, lr.StateSpace) and Gr.n == 2
    assert np.any(np.isclose(Gr.poles(), -0.1, rtol=1e-12))   # kept whole, not reduced


def test_balred_discrete_stays_discrete_against_slicot():
    slycot = needs_slycot()
    A = np.array([[0.5, 0.2, 0.0], [0.0, -0.4, 0.1], [0.0, 0.0, 0.8]])
    B = np.array([[1.0], [0.5], [1.0]])
    C = np.array([[1.0, -1.0, 0.3]])
    Gd = ct.ss(A, B, C, 0, 0.25)
    ours = lr.balred(Gd, 2)
    assert type(ours) is ct.StateSpace and ours.dt == 0.25 and ours.nstates == 2
    _, Ar, Br, Cr, hsv = slycot.ab09ad("D", "B", "N", 3, 1, 1, A.copy(), B.copy(), C.copy(), nr=2, tol=0.0)
    slicot = lr.StateSpace(Ar, Br, Cr, dt=0.25)
    np.testing.assert_allclose(lr.hsvd(Gd), hsv, rtol=1e-10)
    np.testing.assert_allclose(response(ours, W[:30]), slicot.frequency_response(W[:30]), rtol=1e-9, atol=1e-12)


def test_balred_types_follow_the_input_or_return_type():
    A, B, C = np.diag([-1.0, -2.0, -5.0]), np.ones((3, 1)), np.array([[1.0, 2.0, 3.0]])
    ours = lr.StateSpace(A, B, C)
    assert type(lr.balred(ours, 2)) is lr.StateSpace
    scipy_ct = signal.StateSpace(A, B, C, 0)
    assert isinstance(lr.balred(scipy_ct, 2), signal.StateSpace)
    scipy_dt = signal.dlti(np.diag([0.5, -0.2, 0.1]), B, C, 0, dt=0.1).to_ss()
    reduced = lr.balred(scipy_dt, 2)
    assert isinstance(reduced, signal.dlti) and reduced.dt == 0.1 and reduced.A.shape == (2, 2)
    assert type(lr.balred(scipy_ct, 2, return_type="control")) is ct.StateSpace
    assert type(lr.balred(ct.ss(A, B, C, 0), 2, return_type="lti_reduce")) is lr.StateSpace
    assert isinstance(lr.balred(ours, 2, return_type="scipy"), signal.StateSpace)
    # the same reduced transfer function whatever the container
    np.testing.assert_allclose(response(lr.balred(scipy_ct, 2), W), lr.balred(ours, 2).frequency_response(W),
                               rtol=1e-12, atol=1e-15)
    with pytest.raises(InvalidParameterError, match="return_type"):
        lr.balred(ours, 2, return_type="matlab")


def test_balred_rejects_our_method_names_with_a_pointer():
    G = lr.StateSpace(np.diag([-1.0, -2.0]), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(InvalidParameterError, match="'truncate' or 'matchdc'.*balanced_truncation"):
        lr.balred(G, 1, method="sr")
    with pytest.raises(InvalidParameterError, match="orders"):
        lr.balred(G, 1.5)
    with pytest.raises(InvalidParameterError, match="orders"):
        lr.balred(G, [])


def test_balred_order_above_rank_warns():
    G = lr.StateSpace(np.diag([-1.0, -2.0, -3.0]), [[1.0], [1.0], [0.0]], [[1.0, 1.0, 1.0]])
    with pytest.warns(OrderAdjustedWarning, match="numerical rank 2"):
        assert lr.balred(G, 3).n == 2


def test_hsvd_and_gram_refuse_unstable():
    G = lr.StateSpace(np.diag([1.0, -1.0]), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(UnstableSystemError):
        lr.hsvd(G)
    with pytest.raises(UnstableSystemError):
        lr.gram(G, "cf")


def test_rich_interface_is_unchanged():
    G = lr.StateSpace(np.diag([-1.0, -2.0, -5.0]), np.ones((3, 1)), np.array([[1.0, 2.0, 3.0]]))
    result = lr.balanced_truncation(G, order=2)
    assert isinstance(result, lr.BalancedTruncationResult)
    np.testing.assert_array_equal(lr.hsvd(G), lr.hankel_singular_values(G))
    np.testing.assert_allclose(lr.balred(G, 2).frequency_response(W), result.system.frequency_response(W),
                               rtol=1e-13, atol=1e-16)
    np.testing.assert_array_equal(lr.gram(G, "c"), lr.gramian(G, "c"))
