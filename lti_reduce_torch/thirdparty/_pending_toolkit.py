"""Stand-in for the public adapter toolkit (issue 10 item 1, being written in
``lti_reduce_torch.toolkit``): the same helpers under public names, so that switching to
the toolkit is a one-line import change. Delete once the toolkit is merged."""

from .. import adapters as _builtin


def stack_reduced(reduced, batch, layer, device):
    return _builtin._stack_reduced(reduced, batch, layer, device)


def modal_form(A, B, C, cond_max, layer):
    return _builtin._modal(A, B, C, cond_max, layer, lambda idx: "")


def check_same_response(reduced, rebuilt, rtol, layer):
    z = _builtin._check_points(rebuilt.B.device)
    _builtin._check_same(_builtin._evaluate_pair(reduced, z), _builtin._evaluate_pair(rebuilt, z), rtol, layer)


def cast_parameters(module, values, layer):
    return _builtin._cast_out(module, values, layer)


def replace_parameter(module, name, value):
    return _builtin._replace_parameter(module, name, value)
