"""Public toolkit for writing adapters: the pieces every diagonal or dense adapter needs.

An adapter (:class:`~lti_reduce_torch.SSMAdapter`) maps a layer to an LTI system and a
reduced system back to parameters, *exactly or not at all*. The built-in adapters
(:mod:`lti_reduce_torch.adapters`) are written with these functions only; a third-party
adapter uses the same ones:

* :func:`float64_parameters` -- the layer's own parameters, detached, in float64;
* :func:`single_system`, :func:`stack_reduced` -- unpack what ``rebuild`` receives;
* :func:`modal_form` -- re-diagonalise a reduced ``A_r`` with the stability and
  eigenvector-conditioning guards (:func:`check_stable_eigenvalues` is the first one);
* :func:`layer_feedthrough`, :func:`check_nonzero_eigenvalues` -- the readout conventions
  and the guards of log/inverse parameterisations;
* :func:`check_same_response` -- the last line of defence: the rebuilt parameters'
  transfer function against the reduced system's (:func:`probe_points`,
  :func:`probed_response`);
* :func:`cast_parameters` -- float64 values to each parameter's dtype and device, once,
  refusing non-finite results;
* :func:`new_parameter_like`, :func:`replace_parameter_` -- swap a parameter for one of
  another shape, keeping ``requires_grad`` and its attributes (e.g. ``_no_weight_decay``);
* :class:`DiagonalAdapter` -- a base class giving ``select_states`` and ``resize_`` from a
  table of state axes.

Every guard raises :class:`~lti_reduce_torch.ReductionRefusedError` (a ``ValueError``)
with a message starting with the layer's name and saying why; nothing is modified before
the rebuild returns, so a refusal leaves the layer as it was.

Conventions: systems are discrete time, ``x[k+1] = A x[k] + B u[k]``,
``y[k] = C x[k] + D u[k]``; a diagonal layer's eigenvalues ``lambda`` (the diagonal of A)
are stable when ``|lambda| < 1``. Arithmetic is complex128/float64 throughout, cast back
to the parameters' dtype once by :func:`cast_parameters`.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
from typing import NamedTuple

import torch
from torch import nn

from lti_reduce import DiagonalStateSpace, StateSpace
from ._registry import ReductionRefusedError, SSMAdapter

__all__ = ["ModalForm", "LayerFeedthrough", "ReducedMatrices", "float64_parameters", "single_system",
           "stack_reduced", "check_stable_eigenvalues", "modal_form", "layer_feedthrough",
           "check_nonzero_eigenvalues", "probe_points", "probed_response", "check_same_response",
           "cast_parameters", "new_parameter_like", "replace_parameter_", "DiagonalAdapter"]

_C = torch.complex128
_R = torch.float64


def _nowhere(idx):
    return ""


def _fmt(z):
    z = complex(z)
    return f"{z.real:.6g}{z.imag:+.6g}j"


class ModalForm(NamedTuple):
    """A diagonalised system ``A = V diag(eigenvalues) V^{-1}`` (see :func:`modal_form`).

    Attributes
    ----------
    eigenvalues : torch.Tensor, shape (..., r), complex128
    B : torch.Tensor, shape (..., r, m)
        ``V^{-1} B`` (by a solve, not an inverse).
    C : torch.Tensor, shape (..., p, r)
        ``C V``.
    """

    eigenvalues: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor


class LayerFeedthrough(NamedTuple):
    """The layer's own output matrix and feedthrough (see :func:`layer_feedthrough`).

    Attributes
    ----------
    C : torch.Tensor, shape (..., p, r)
    D : torch.Tensor, shape (..., p, m)
    """

    C: torch.Tensor
    D: torch.Tensor


class ReducedMatrices(NamedTuple):
    """``(A, B, C, D)`` of one or more reduced systems, stacked along dim 0, complex128.

    Attributes
    ----------
    A : torch.Tensor, shape (k, r, r)
    B : torch.Tensor, shape (k, r, m)
    C : torch.Tensor, shape (k, p, r)
    D : torch.Tensor, shape (k, p, m)
    """

    A: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    D: torch.Tensor


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def float64_parameters(module):
    """The module's own parameters (not its children's), detached, in float64.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    dict of str to torch.Tensor
        ``{name: value}`` for ``module.named_parameters(recurse=False)``, on the
        parameters' device. A layer method taking ``params=`` (as
        :meth:`LRU.discrete <lti_reduce_torch.layers.LRU.discrete>` does) can then be
        evaluated in float64 whatever the layer's dtype.
    """
    return {k: v.detach().to(_R) for k, v in module.named_parameters(recurse=False)}


def single_system(reduced, *, layer="layer"):
    """The one reduced system ``rebuild`` received for an unbatched layer.

    Parameters
    ----------
    reduced : lti_reduce.StateSpace or sequence of one
        What :meth:`SSMAdapter.rebuild` received.
    layer : str
        Name used in error messages.

    Returns
    -------
    lti_reduce.StateSpace

    Raises
    ------
    ValueError
        A sequence of more or fewer than one system.
    TypeError
        Not an ``lti_reduce.StateSpace``.
    """
    if isinstance(reduced, (tuple, list)):
        if len(reduced) != 1:
            raise ValueError(f"{layer}: expected one reduced system, got {len(reduced)}")
        reduced = reduced[0]
    if not isinstance(reduced, StateSpace):
        raise TypeError(f"{layer}: rebuild expects an lti_reduce.StateSpace, got {type(reduced).__name__}")
    return reduced


def stack_reduced(reduced, *, batch=None, layer="layer", device=None):
    """Stack the matrices of one or more reduced systems of one order, in complex128.

    Parameters
    ----------
    reduced : lti_reduce.StateSpace or sequence of them
        What :meth:`SSMAdapter.rebuild` received (a tuple, one system per channel, for a
        layer whose ``reduction_system`` is a batched DiagonalStateSpace).
    batch : int, optional
        Expected number of systems (e.g. the layer's channel count).
    layer : str
        Name used in error messages.
    device : torch.device, optional
        Where the stacked tensors go (the layer's parameters' device).

    Returns
    -------
    ReducedMatrices
        ``(A, B, C, D)``, each of shape (k, ...) with k systems.

    Raises
    ------
    ValueError
        Not ``batch`` systems, or systems of different orders.
    TypeError
        An element that is not an ``lti_reduce.StateSpace``.
    """
    systems = tuple(reduced) if isinstance(reduced, (tuple, list)) else (reduced,)
    if batch is not None and len(systems) != batch:
        raise ValueError(f"{layer}: expected {batch} reduced systems (one per channel), got {len(systems)}")
    for s in systems:
        if not isinstance(s, StateSpace):
            raise TypeError(f"{layer}: rebuild expects lti_reduce.StateSpace systems, got {type(s).__name__}")
    orders = {s.n for s in systems}
    if len(orders) != 1:
        raise ValueError(f"{layer}: all reduced systems must have the same order, got orders {sorted(orders)}")
    if len(systems) == 1:      # a view, not a copy (D alone is h x h for an LRU layer)
        return ReducedMatrices(*(torch.as_tensor(getattr(systems[0], k)).to(device=device, dtype=_C).unsqueeze(0)
                                 for k in "ABCD"))
    return ReducedMatrices(*(torch.stack([torch.as_tensor(getattr(s, k)).to(device=device, dtype=_C)
                                          for s in systems]) for k in "ABCD"))


# --------------------------------------------------------------------------------------
# guards and the modal form
# --------------------------------------------------------------------------------------
def _stable_flag(eigenvalues):
    """0-d bool tensor: every eigenvalue finite with ``|lambda| < 1`` (no host read)."""
    return (eigenvalues.abs() < 1).all()      # NaN compares False; inf has modulus inf


def check_stable_eigenvalues(eigenvalues, *, layer="layer", where=None):
    """Refuse a discrete-time spectrum that is not finite or has ``|lambda| >= 1``.

    Parameters
    ----------
    eigenvalues : torch.Tensor, shape (..., r)
    layer : str
        Name used in error messages.
    where : callable, optional
        ``where(index_tuple) -> str`` appended to the message to locate an eigenvalue
        (e.g. ``" (channel 3)"``); default: nothing.

    Raises
    ------
    ReductionRefusedError
        With the count of offending eigenvalues, the largest modulus (17 digits) and an
        example.
    """
    where = where or _nowhere
    if bool(_stable_flag(eigenvalues)):     # one host read on the normal path
        return
    if not bool(torch.isfinite(eigenvalues).all()):
        raise ReductionRefusedError(f"{layer}: the reduced A has non-finite eigenvalues")
    mod = eigenvalues.abs()
    bad = mod >= 1
    if bool(bad.any()):
        idx = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ReductionRefusedError(
            f"{layer}: the reduced system is not stable: {int(bad.sum())} eigenvalue(s) with modulus >= 1 "
            f"(largest |lambda| = {float(mod.max()):.17g}, e.g. lambda = {_fmt(eigenvalues[idx])}{where(idx)}); "
            f"the layer keeps |lambda| < 1 by construction")


def modal_form(A, B, C, *, cond_max=1e8, layer="layer", where=None):
    """Diagonalise reduced systems: ``A = V diag(lambda) V^{-1}``, ``B_m = V^{-1} B``, ``C_m = C V``.

    Parameters
    ----------
    A : torch.Tensor, shape (..., r, r), complex
    B : torch.Tensor, shape (..., r, m)
    C : torch.Tensor, shape (..., p, r)
        Batched over the leading dimensions (complex128 recommended).
    cond_max : float
        Largest accepted 2-norm condition number of an eigenvector matrix ``V``: above
        it A is (close to) not diagonalisable and the modal form would amplify rounding.
    layer : str
        Name used in error messages.
    where : callable, optional
        As for :func:`check_stable_eigenvalues`.

    Returns
    -------
    ModalForm
        ``(eigenvalues (..., r), B_m (..., r, m), C_m (..., p, r))``; for ``r = 0`` empty
        eigenvalues and ``B``, ``C`` as given.

    Raises
    ------
    ReductionRefusedError
        Non-finite or unstable eigenvalues (:func:`check_stable_eigenvalues`), or an
        eigenvector matrix with condition number above ``cond_max`` (or NaN).

    Notes
    -----
    ``B_m`` is obtained by a solve with V (its LU factors), never by forming ``V^{-1}``.
    From r = 192 on the condition number is first estimated, O(r^2), as ``||V||_F`` times
    power steps for ``||V^-1||_2`` with those LU factors (below the true value only by a
    start-dependent factor, never in practice by 100); only an estimate within a factor 100
    of ``cond_max`` (or NaN) is decided by the exact 2-norm condition number (an SVD, used
    directly for smaller r).
    The eigenvalue
    order is ``torch.linalg.eig``'s; the transfer function does not depend on it.

    Examples
    --------
    >>> import torch
    >>> from lti_reduce_torch.toolkit import modal_form
    >>> A = torch.tensor([[0.5, 1.0], [0.0, -0.25]], dtype=torch.complex128)
    >>> B = torch.ones(2, 1, dtype=torch.complex128); C = torch.ones(1, 2, dtype=torch.complex128)
    >>> lam, Bm, Cm = modal_form(A, B, C)
    >>> sorted(round(float(x.real), 6) for x in lam)
    [-0.25, 0.5]
    """
    where = where or _nowhere
    if A.shape[-1] == 0:
        return ModalForm(A.new_zeros(A.shape[:-1]), B, C)
    lam, V = torch.linalg.eig(A)
    finite = torch.isfinite(V)
    # non-finite entries zeroed: the factorisations below would raise on them (the flag refuses)
    V = torch.where(finite, V, torch.zeros_like(V))
    lu, pivots, _ = torch.linalg.lu_factor_ex(V)          # also serves the solve for B_m
    if V.shape[-1] < _COND_SVD_BELOW:       # small: one SVD costs less than the estimate's 32 calls
        accept = torch.linalg.cond(V) <= cond_max
    else:
        # the estimate is a lower bound: it decides only far below cond_max; near it the SVD decides
        accept = _condition_estimate(V, lu, pivots) <= cond_max / _COND_MARGIN
    # every guard in one host read (each read is a synchronisation on a GPU); a NaN fails
    if bool(_stable_flag(lam) & finite.all() & accept.all()):
        return ModalForm(lam, torch.linalg.lu_solve(lu, pivots, B.to(V.dtype)), C @ V)
    check_stable_eigenvalues(lam, layer=layer, where=where)
    if not bool(finite.all()):
        raise ReductionRefusedError(f"{layer}: the eigenvectors of the reduced A are not finite; the modal "
                                    f"form would not reproduce the reduced system")
    cond = torch.linalg.cond(V).reshape(-1)
    worst = int(torch.argmax(torch.nan_to_num(cond, nan=math.inf)))
    cw = float(cond[worst])
    if not cw <= cond_max:
        raise ReductionRefusedError(
            f"{layer}: the reduced A is (close to) not diagonalisable: eigenvector matrix condition number "
            f"{cw:.3g} exceeds the threshold {cond_max:.3g}{where((worst, 0))}; the modal form would not "
            f"reproduce the reduced system")
    return ModalForm(lam, torch.linalg.solve(V, B), C @ V)


#: Power steps of :func:`_condition_estimate`, and how far below ``cond_max`` the estimate must
#: stay to accept without the SVD. The last power ratio is at least the geometric mean of all
#: of them, so after k steps from a unit start with component c along the dominant direction
#: of ``V^-1 V^-H`` the estimate of ``||V^-1||_2`` is >= ``||V^-1||_2 |c|^(1/(2k))``; with
#: ``||V||_F >= ||V||_2`` the estimate is >= cond_2(V) |c|^(1/16) after 8 steps: falling
#: short by the margin 100 would need |c| < 1e-32.
_COND_STEPS = 8
_COND_MARGIN = 100.0
#: Below this order the exact condition number (an SVD) is cheaper than the estimate's small
#: calls (measured on the CPU: 2 ms for the SVD at r = 130, 22 ms at r = 312; the estimate 4 ms)
_COND_SVD_BELOW = 192


def _condition_estimate(V, lu, pivots):
    """Estimate of the 2-norm condition number of each eigenvector matrix, shape (...,).

    ``||V||_F`` (at least ``||V||_2``, at most ``sqrt(r)`` times it) times a lower estimate of
    ``||V^-1||_2`` by power steps on ``V^-1 V^-H`` with the LU factors of V: O(r^2) per step
    instead of the O(r^3) SVD of :func:`torch.linalg.cond`. NaN or inf for a singular V."""
    r = V.shape[-1]
    k = torch.arange(r, dtype=_R, device=V.device)
    x = torch.complex(1.0 + 0.5 * torch.sin(k), 0.5 * torch.cos(1.7 * k)).to(V.dtype)
    x = x.expand(V.shape[:-1]).unsqueeze(-1)
    size = None
    for _ in range(_COND_STEPS):
        y = torch.linalg.lu_solve(lu, pivots, torch.linalg.lu_solve(lu, pivots, x, adjoint=True))
        size = torch.linalg.vector_norm(y, dim=(-2, -1))
        x = y / size.to(y.dtype)[..., None, None]
    # size = ||M x|| for a unit x: a lower bound of ||M||_2 = ||V^-1||_2^2
    return torch.linalg.vector_norm(V, dim=(-2, -1)) * torch.sqrt(size)


def layer_feedthrough(eigenvalues, B, C, D, readout):
    """The layer's ``C`` and own feedthrough ``D`` for a modal system and a readout.

    Parameters
    ----------
    eigenvalues : torch.Tensor, shape (..., r)
    B : torch.Tensor, shape (..., r, m)
    C : torch.Tensor, shape (..., p, r)
    D : torch.Tensor, shape (..., p, m)
        A modal system in the standard form (``s[k+1] = diag(lambda) s[k] + B u[k]``,
        ``y[k] = C s[k] + D u[k]``).
    readout : {'pre', 'post'}
        ``'pre'``: the layer reads ``y_k = C x_{k-1} + D u_k``, so its matrices are the
        system's. ``'post'``: it reads ``y_k = C_l x_k + D_l u_k`` (the state after the
        update), so ``C_l = C diag(lambda)^{-1}`` and ``D_l = D - C_l B`` (= ``G(0)``).

    Returns
    -------
    LayerFeedthrough
        ``(C_l, D_l)``. With ``'post'`` a zero eigenvalue gives infinities: check with
        :func:`check_nonzero_eigenvalues` first.
    """
    if readout == "pre":
        return LayerFeedthrough(C, D)
    if readout != "post":
        raise ValueError(f"readout must be 'pre' or 'post', got {readout!r}")
    Cl = C / eigenvalues.unsqueeze(-2)
    return LayerFeedthrough(Cl, D - Cl @ B)


def check_nonzero_eigenvalues(eigenvalues, *, layer="layer", why="the parameterisation cannot hold it",
                              where=None):
    """Refuse an eigenvalue exactly 0 (a layer storing ``log(lambda)`` or dividing by it).

    Parameters
    ----------
    eigenvalues : torch.Tensor, shape (..., r)
    layer : str
        Name used in error messages.
    why : str
        The end of the message: why the layer cannot hold 0.
    where : callable, optional
        As for :func:`check_stable_eigenvalues`.

    Raises
    ------
    ReductionRefusedError
    """
    where = where or _nowhere
    zero = eigenvalues == 0
    if bool(zero.any()):
        idx = tuple(int(i) for i in torch.nonzero(zero)[0])
        raise ReductionRefusedError(f"{layer}: the reduced system has an eigenvalue 0{where(idx)}; {why}")


# --------------------------------------------------------------------------------------
# the exactness check
# --------------------------------------------------------------------------------------
def probe_points(device=None):
    """Fixed points ``z`` of the complex plane where :func:`check_same_response` compares.

    Parameters
    ----------
    device : torch.device, optional

    Returns
    -------
    torch.Tensor, shape (9,), complex128
        Four points of modulus 1.05 and four of modulus 2 at unrelated angles, and
        ``-1.5``: outside the unit circle (where every stable system is analytic), away
        from the real axis where real and complex mismatches could cancel.
    """
    return _probe_points_on(str(torch.device("cpu") if device is None else torch.device(device))).clone()


@functools.lru_cache(maxsize=8)
def _probe_points_on(device):
    # made once per device: a tensor from Python numbers is a blocking host-to-device copy
    angles = torch.tensor([0.3, 1.1, 2.0, 2.9], dtype=_R, device=device)
    return torch.cat([1.05 * torch.exp(1j * angles), 2.0 * torch.exp(-1j * angles),
                      torch.tensor([-1.5 + 0j], dtype=_C, device=device)])


def probed_response(system, z, probe):
    """``G(z) @ probe`` of a (batched) system without forming the ``p x m`` matrices ``G(z)``.

    Parameters
    ----------
    system : lti_reduce.StateSpace or lti_reduce.DiagonalStateSpace
        With torch tensors; a DiagonalStateSpace may have batch dimensions.
    z : torch.Tensor, shape (k,), complex128
    probe : torch.Tensor, shape (m, q), real
        Input directions; a random probe sees any mismatch of G with probability one.

    Returns
    -------
    torch.Tensor, shape (..., k, p, q), complex128

    Notes
    -----
    Cost ``O(k n (m + p) q)`` for a diagonal system (``O(k n^3)`` dense), instead of the
    ``O(k n m p)`` of the full transfer matrices.
    """
    Bv = system.B @ probe.to(system.B.dtype)
    Dv = system.D @ probe.to(system.D.dtype)
    if isinstance(system, DiagonalStateSpace):
        resolvent = 1.0 / (z[:, None] - system.eigenvalues[..., None, :])          # (..., k, n)
        X = resolvent[..., :, :, None] * Bv[..., None, :, :]                      # (..., k, n, q)
    else:
        n = system.A.shape[-1]
        pencil = z[:, None, None] * torch.eye(n, dtype=_C, device=z.device) - system.A.to(_C)
        X = torch.linalg.solve(pencil, Bv.to(_C).expand(z.shape[0], n, Bv.shape[-1]))
    # C @ X as one product over the k points: a broadcast batched matmul would copy C k times
    k, n, q = X.shape[-3:]
    Xt = X.to(_C).transpose(-3, -2).reshape(X.shape[:-3] + (n, k * q))
    CX = (system.C.to(_C) @ Xt).reshape(Xt.shape[:-2] + (system.C.shape[-2], k, q)).transpose(-3, -2)
    return CX + Dv.to(_C)[..., None, :, :]


def _real_part_response(system, z, probe):
    # (G(z) + conj(G(conj z))) / 2: the transfer function of Re(output) for a real input; both
    # point sets in one call (one pass over B, C and D instead of two)
    k = z.shape[0]
    both = probed_response(system, torch.cat([z, z.conj()]), probe)
    return (both[..., :k, :, :] + both[..., k:, :, :].conj()) / 2


def check_same_response(reduced, rebuilt, *, rtol=1e-6, layer="layer", points=None):
    """Refuse unless ``rebuilt`` has the transfer function of ``reduced`` (real-part outputs).

    Parameters
    ----------
    reduced : lti_reduce.StateSpace or lti_reduce.DiagonalStateSpace
        The reduced system the adapter was asked to hold (torch tensors).
    rebuilt : lti_reduce.StateSpace or lti_reduce.DiagonalStateSpace
        The system the rebuilt parameters compute, evaluated in float64/complex128
        *before* the cast to the parameters' dtype (same batch shape, m and p).
    rtol : float
        Largest accepted ``max |R_reduced - R_rebuilt| / max |R_reduced|``.
    layer : str
        Name used in error messages.
    points : torch.Tensor, shape (k,), complex128, optional
        Where to compare (default :func:`probe_points` on ``reduced``'s device).

    Raises
    ------
    ReductionRefusedError
        With the measured relative mismatch.

    Notes
    -----
    What is compared is ``R(z) = (G(z) + conj G(conj z)) / 2``, the transfer function of
    the real part of the output for a real input (what a layer reading ``Re(.)``
    computes), applied to a fixed real random probe of two columns (seed 0, so the
    decision depends on the parameters only).
    """
    device = reduced.B.device
    z = probe_points(device) if points is None else points
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(reduced.B.shape[-1], 2, generator=generator, dtype=_R).to(device)
    expected = _real_part_response(reduced, z, probe)
    got = _real_part_response(rebuilt, z, probe)
    if expected.numel():
        scale, err = torch.stack([expected.abs().max(), (expected - got).abs().max()]).tolist()   # one read
    else:
        scale, err = 0.0, 0.0
    scale = scale + 1e-300
    if not err <= rtol * scale:
        raise ReductionRefusedError(
            f"{layer}: the rebuilt parameters do not reproduce the reduced system (relative transfer "
            f"function mismatch {err / scale:.3g} > {rtol:.3g}); refusing rather than changing the layer")


# --------------------------------------------------------------------------------------
# output: casting and swapping parameters
# --------------------------------------------------------------------------------------
def cast_parameters(module, values, *, layer="layer"):
    """Cast new float64/complex128 values to each parameter's dtype and device, once.

    Parameters
    ----------
    module : torch.nn.Module
    values : mapping of str to torch.Tensor
        New values of the module's own parameters (names as in
        ``module.named_parameters(recurse=False)``).
    layer : str
        Name used in error messages.

    Returns
    -------
    dict of str to torch.Tensor
        Detached, contiguous, in each parameter's dtype and on its device: what
        :meth:`SSMAdapter.rebuild` returns.

    Raises
    ------
    KeyError
        A name that is not a parameter of the module.
    ReductionRefusedError
        A value that is not finite after the cast (e.g. overflow to float32).
    """
    params = dict(module.named_parameters(recurse=False))
    out = {}
    for name, v in values.items():
        if name not in params:
            raise KeyError(f"{layer}: {name!r} is not a parameter of the module; parameters: {sorted(params)}")
        p = params[name]
        out[name] = v.detach().to(device=p.device, dtype=p.dtype).contiguous()
    if not out:
        return out
    finite = torch.stack([torch.isfinite(w).all().to(out[next(iter(out))].device) for w in out.values()])
    if bool(finite.all()):                   # one host read for all parameters
        return out
    name = list(out)[int(torch.nonzero(~finite.cpu())[0])]
    raise ReductionRefusedError(
        f"{layer}: the rebuilt parameter {name!r} is not finite in {params[name].dtype} "
        f"(largest magnitude in float64: {float(values[name].abs().max()):.3g})")


def new_parameter_like(old, value):
    """A new ``nn.Parameter`` holding ``value`` that keeps what ``old`` carried.

    Parameters
    ----------
    old : torch.nn.Parameter
    value : torch.Tensor
        Any shape; copied (contiguous, detached).

    Returns
    -------
    torch.nn.Parameter
        With ``old.requires_grad`` and a shallow copy of every attribute in
        ``old.__dict__`` (e.g. ``_no_weight_decay``, sharding hints); no ``.grad``.
    """
    new = nn.Parameter(value.detach().clone(memory_format=torch.contiguous_format),
                       requires_grad=old.requires_grad)
    for key, attr in old.__dict__.items():
        setattr(new, key, copy.copy(attr))
    return new


def replace_parameter_(module, name, value):
    """Replace ``module.<name>`` by :func:`new_parameter_like` ``(old, value)``, in place.

    Parameters
    ----------
    module : torch.nn.Module
    name : str
        One of the module's own parameters.
    value : torch.Tensor

    Returns
    -------
    torch.nn.Parameter
        The new parameter. Only this module's attribute changes: other modules holding
        the old object (tied weights) and optimizers are not updated (``reduce_`` does
        both; this is for ``SSMAdapter.resize_``, which runs on freshly built models).
    """
    old = getattr(module, name)
    if not isinstance(old, nn.Parameter):
        raise TypeError(f"{type(module).__name__}.{name} is not a parameter (got {type(old).__name__})")
    new = new_parameter_like(old, value)
    setattr(module, name, new)
    return new


# --------------------------------------------------------------------------------------
# a base class for diagonal adapters
# --------------------------------------------------------------------------------------
class DiagonalAdapter(SSMAdapter):
    """Base for adapters of diagonal layers: modal selection and resizing from ``state_axes``.

    Subclasses set :attr:`layer` (a name for messages) and :attr:`state_axes` and implement
    ``to_lti`` and ``rebuild`` (with :func:`modal_form`, :func:`check_same_response` and
    :func:`cast_parameters`). ``state_size`` reads the module's ``n`` attribute.

    Parameters
    ----------
    cond_max : float
        Largest accepted eigenvector condition number (:func:`modal_form`).
    d_tol : float
        Relative tolerance on a feedthrough the layer must hold exactly (e.g. an
        off-diagonal part of D for a layer whose D is diagonal).
    check_rtol : float
        Tolerance of :func:`check_same_response`.

    Attributes
    ----------
    layer : str
    state_axes : dict of str to int
        Parameter name -> the axis along which the state index runs. ``select_states``
        indexes these parameters along it; ``resize_`` gives them size n there.
    """

    layer = "layer"
    state_axes: dict = {}

    def __init__(self, cond_max=1e8, d_tol=1e-9, check_rtol=1e-6):
        self.cond_max = float(cond_max)
        self.d_tol = float(d_tol)
        self.check_rtol = float(check_rtol)

    def state_size(self, module):
        return int(module.n)

    def where(self, idx):
        """Locate an eigenvalue index tuple in messages (default: nothing; S4D: the channel)."""
        return ""

    @staticmethod
    def device(module):
        """The device of the module's parameters."""
        return next(module.parameters()).device

    def select_states(self, module, keep):
        """Keep the modes ``keep`` (indices into the state axis, in the given order).

        Parameters
        ----------
        module : torch.nn.Module
        keep : sequence of int or torch.Tensor, shape (r,)
            Distinct indices in ``[0, n)``.

        Returns
        -------
        dict of str to torch.Tensor
            The :attr:`state_axes` parameters indexed along their state axis; other
            parameters (e.g. D) keep their value. This is modal truncation of the layer.
        """
        keep = torch.as_tensor(keep, dtype=torch.long, device=self.device(module)).reshape(-1)
        n = self.state_size(module)
        if keep.numel() and (int(keep.min()) < 0 or int(keep.max()) >= n):
            raise IndexError(f"{self.layer}: state indices must lie in [0, {n}), got {keep.tolist()}")
        if torch.unique(keep).numel() != keep.numel():
            raise ValueError(f"{self.layer}: state indices must be distinct, got {keep.tolist()}")
        params = dict(module.named_parameters(recurse=False))
        return {name: params[name].detach().index_select(axis, keep).clone()
                for name, axis in self.state_axes.items()}

    def resize_(self, module, n):
        """Give every :attr:`state_axes` parameter state size ``n`` (zeros), in place."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"{self.layer}: state size must be an int >= 0, got {n!r}")
        n = int(n)
        params = dict(module.named_parameters(recurse=False))
        for name, axis in self.state_axes.items():
            p = params[name]
            shape = list(p.shape)
            shape[axis] = n
            replace_parameter_(module, name, torch.zeros(shape, dtype=p.dtype, device=p.device))
        return module
