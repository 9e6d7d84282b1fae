"""What the analyses measure on a layer, computed by the core through the layer's adapter.

Nothing here assumes a layer class: the system is the adapter's
``reduction_system(layer)`` (what :func:`lti_reduce_torch.reduce_` reduces), its HSVs are
:func:`lti_reduce.hankel_singular_values` (square-root method), modal energies are
:func:`lti_reduce_torch.selection.modal_energy` (the one formula, also the score of
``select='smallest'``).
"""

import numpy as np
import torch

from lti_reduce import DiagonalStateSpace, StateSpace, hankel_singular_values
from lti_reduce_torch import get_adapter, state_sizes
from lti_reduce_torch.selection import modal_energy

__all__ = ["reduction_system", "layer_spectrum", "hankel_norm_of_change", "state_size", "system_difference"]


def reduction_system(layer):
    """The system the layer's adapter reduces (detached, float64/complex128)."""
    return get_adapter(layer).reduction_system(layer)


def state_size(layer):
    """The layer's state size, as ``lti_reduce_torch.state_sizes`` reports it."""
    return next(iter(state_sizes(layer).values()))


def _host(x):
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)


def layer_spectrum(layer):
    """``(hsv, modal_energy, abs_lambda)`` of a layer, float64 lists, no gradient.

    ``hsv`` descending; for a channel-batched layer the HSVs of all channels (those of the
    block-diagonal system), modal energies and ``|lambda|`` row-major over (channel, mode).
    ``modal_energy`` and ``abs_lambda`` are None for a layer whose system is not diagonal.
    """
    system = reduction_system(layer)
    hsv = np.sort(_host(hankel_singular_values(system)).astype(np.float64).ravel())[::-1]
    if not isinstance(system, DiagonalStateSpace):
        return hsv.tolist(), None, None
    energy = _host(modal_energy(system)).astype(np.float64).ravel()
    return hsv.tolist(), energy.tolist(), np.abs(_host(system.eigenvalues)).astype(np.float64).ravel().tolist()


def _difference(new, old):
    """A realisation of ``G_new - G_old`` (same batch shape, m and p)."""
    if isinstance(new, DiagonalStateSpace) and isinstance(old, DiagonalStateSpace):
        return DiagonalStateSpace(torch.cat([new.eigenvalues, old.eigenvalues], -1), torch.cat([new.B, old.B], -2),
                                  torch.cat([new.C, -old.C], -1), new.D - old.D, dt=new.dt)
    A1, A0 = (torch.as_tensor(s.A) for s in (new, old))
    dtype = torch.promote_types(A1.dtype, A0.dtype)
    A = torch.block_diag(A1.to(dtype), A0.to(dtype))
    B = torch.cat([torch.as_tensor(new.B).to(dtype), torch.as_tensor(old.B).to(dtype)], 0)
    C = torch.cat([torch.as_tensor(new.C).to(dtype), -torch.as_tensor(old.C).to(dtype)], 1)
    return StateSpace(A, B, C, torch.as_tensor(new.D).to(dtype) - torch.as_tensor(old.D).to(dtype), dt=new.dt)


#: public name of the difference realisation (used by :mod:`validation.slack`)
system_difference = _difference


def hankel_norm_of_change(new, old):
    """``sigma_1(G_new - G_old)`` (max over channels), by the core on a realisation of the difference.

    By Weyl's inequality for the Hankel operators, ``|sigma_i(G_new) - sigma_i(G_old)|`` is
    at most this number.
    """
    return float(_host(hankel_singular_values(_difference(new, old))).max())
