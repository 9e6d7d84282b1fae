"""Scan and convolution kernels shared by the layers of :mod:`lti_reduce_torch.layers`.

Every kernel computes the *post-update* states of a linear recurrence along dim 1
(time) from a zero initial state::

    x[k] = a * x[k-1] + b[k],   x[-1] = 0          (diagonal: a elementwise)
    x[k] = A @ x[k-1] + b[k]                        (dense)

so ``x[k]`` already contains ``b[k]``. A layer that reads out the state *before* the
update shifts the read-out by one step (see :func:`shift_right`).

Methods (all exact in exact arithmetic; they differ in cost and in parallelism):

``sequential``
    A Python loop over time (``unbind``); O(L) steps of O(state) work each. Cheapest
    in flops, but pays the per-step framework overhead L times (forward and backward).
``chunked``
    Chunks of length T: inside a chunk the states are a (T, T) lower-triangular
    Toeplitz product per mode, ``x[t] = sum_{s<=t} a^(t-s) b[s]`` (powers in closed
    form, ``a^j = exp(j log a)``, never divided by); the state is carried across the
    L/T chunk boundaries by a short sequential scan with ``a^T``. O(L T) work per mode,
    O(L/T) sequential steps.
``assoc``
    Hillis-Steele doubling (an associative scan specialised to a time-invariant ``a``):
    ``x[t] += a^d x[t-d]`` for d = 1, 2, 4, ...; O(L log L) work, log2(L) steps.
``fft`` (see :func:`causal_conv_fft`)
    For LTI layers only: the impulse response is formed in closed form and convolved
    with the input by real FFTs of length 2L.
"""

import math

import torch

__all__ = ["powers", "shift_right", "diag_scan", "dense_scan", "causal_conv_fft",
           "mimo_diag_kernel", "channel_diag_kernel", "dense_kernel", "DIAG_SCANS", "DENSE_SCANS"]

DIAG_SCANS = ("sequential", "chunked", "assoc")
DENSE_SCANS = ("sequential", "assoc")


def _real_dtype(dtype):
    return torch.empty((), dtype=dtype).real.dtype if dtype.is_complex else dtype


class _PolarExp(torch.autograd.Function):
    """``exp(z) = polar(exp(Re z), Im z)`` with the holomorphic derivative as its backward,
    ``grad_z = grad * conj(exp(z))``: polar's own backward divides by ``|exp(z)|``, which is
    0/0 = NaN wherever ``exp(Re z)`` underflows (a mode with ``|a|`` near 0 raised to a high
    power, e.g. an eigenvalue a reduction placed near the origin)."""

    @staticmethod
    def forward(ctx, z):
        out = torch.polar(torch.exp(z.real), z.imag)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out.conj()


def cexp(z):
    """``exp(z)`` for complex ``z`` as ``polar(exp(Re z), Im z)``: same values, about 3x faster than
    ``torch.exp`` on complex CPU tensors (which is not vectorised); differentiable, with a
    finite gradient where ``exp(Re z)`` underflows to 0."""
    if not z.is_complex():
        return torch.exp(z)
    return _PolarExp.apply(z)


def powers(log_a, count, stride=1):
    """``a**(stride * j)`` for ``j < count``, shape ``(count, *a.shape)``, as ``exp(e log a)``.

    The exponents are made on ``log_a``'s device (``arange``): a tensor built from a Python
    list would be a blocking host-to-device copy on every call."""
    e = torch.arange(count, dtype=_real_dtype(log_a.dtype), device=log_a.device) * stride
    return cexp(e.reshape((-1,) + (1,) * log_a.ndim) * log_a)


def shift_right(y, steps=1):
    """Delay a (batch, L, ...) sequence by ``steps`` samples (zeros enter at the start)."""
    if steps == 0:
        return y
    L = y.shape[1]
    zeros = y.new_zeros((y.shape[0], min(steps, L)) + tuple(y.shape[2:]))
    return torch.cat([zeros, y[:, :max(L - steps, 0)]], dim=1)


# --------------------------------------------------------------------------- diagonal
# The scans run without autograd inside custom autograd Functions: the backward pass is
# the adjoint recurrence (a reverse scan with conj(a), resp. A^T) evaluated by the same
# method, so no per-step autograd graph is recorded (L nodes for ``sequential``).

def _flip(x):
    return torch.flip(x, dims=(1,))


def _sequential(b, step, reverse=False):
    """``x[t] = step(x[t-1], b[t])`` along dim 1 (from the end if ``reverse``), ``x[first] = b[first]``;
    ``step(prev, b_t, out)`` writes into ``out`` (no per-step allocation)."""
    L = b.shape[1]
    out = torch.empty_like(b)
    steps = range(L - 1, -1, -1) if reverse else range(L)
    prev = None
    for t in steps:
        if prev is None:
            out[:, t] = b[:, t]
        else:
            step(out[:, prev], b[:, t], out[:, t])
        prev = t
    return out


def _diag_sequential(a, b, reverse=False):
    return _sequential(b, lambda prev, b_t, out: torch.addcmul(b_t, a, prev, out=out), reverse)


def _diag_assoc(log_a, b):
    x = b.clone()
    L = b.shape[1]
    d = 1
    while d < L:
        x[:, d:] += cexp(d * log_a) * x[:, :-d]
        d *= 2
    return x


def _diag_chunked(log_a, b, chunk):
    batch, L = b.shape[:2]
    state = tuple(b.shape[2:])
    T = max(1, min(int(chunk), L))
    nc = -(-L // T)
    pad = nc * T - L
    if pad:
        b = torch.cat([b, b.new_zeros((batch, pad) + state)], dim=1)
    b = b.reshape((batch, nc, T) + state)
    P = powers(log_a, T + 1)                               # (T+1, *state): a^0 .. a^T
    t = torch.arange(T, device=b.device)
    lag = t[:, None] - t[None, :]
    mask = (lag >= 0).reshape((T, T) + (1,) * len(state))
    W = P[lag.clamp(min=0)] * mask                         # (T, T, *state): a^(t-s), t >= s
    x = torch.einsum("ts...,bcs...->bct...", W, b)
    if nc > 1:
        ends = _diag_sequential(P[T], x[:, :, -1])         # true states at the end of each chunk
        x[:, 1:] += P[1:].unsqueeze(0) * ends[:, :-1].unsqueeze(2)
    x = x.reshape((batch, nc * T) + state)
    return x[:, :L] if pad else x


def _diag_impl(log_a, b, method, chunk, reverse=False):
    if method == "sequential":
        return _diag_sequential(cexp(log_a), b, reverse)
    if reverse:
        return _flip(_diag_impl(log_a, _flip(b), method, chunk))
    if method == "chunked":
        return _diag_chunked(log_a, b, chunk)
    if method == "assoc":
        return _diag_assoc(log_a, b)
    raise ValueError(f"unknown scan method {method!r}; expected one of {DIAG_SCANS}")


class _DiagScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_a, b, method, chunk):
        x = _diag_impl(log_a, b.contiguous(), method, chunk)
        ctx.method, ctx.chunk = method, chunk
        ctx.save_for_backward(log_a, x)
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        log_a, x = ctx.saved_tensors
        # adjoint: delta[t] = g[t] + conj(a) delta[t+1]; dL/db = delta (conjugate-Wirtinger convention)
        delta = _diag_impl(log_a.conj(), g.contiguous(), ctx.method, ctx.chunk, reverse=True)
        grad_log_a = None
        if ctx.needs_input_grad[0]:
            s = (delta[:, 1:] * x[:, :-1].conj()).sum(dim=(0, 1))
            grad_log_a = s * cexp(log_a).conj()
        return grad_log_a, delta if ctx.needs_input_grad[1] else None, None, None


def diag_scan(log_a, b, method="chunked", chunk=32):
    """States of ``x[k] = a x[k-1] + b[k]`` (``a = exp(log_a)`` elementwise, complex).

    Parameters
    ----------
    log_a : complex tensor, shape ``S`` (the state shape, e.g. (n,) or (h, n))
        Logarithm of the diagonal (any branch: only ``exp(j log_a)`` is used).
    b : complex tensor, shape (batch, L, *S)
    method : {'sequential', 'chunked', 'assoc'}
    chunk : int
        Chunk length T of the ``chunked`` method.

    Returns
    -------
    x : complex tensor, shape (batch, L, *S) (post-update states). Differentiable in
    ``log_a`` and ``b`` (first order; the backward pass is the adjoint scan).
    """
    if method not in DIAG_SCANS:
        raise ValueError(f"unknown scan method {method!r}; expected one of {DIAG_SCANS}")
    if b.shape[1] == 0:
        return b * cexp(log_a)
    return _DiagScan.apply(log_a, b, method, int(chunk))


# --------------------------------------------------------------------------- dense
def _dense_impl(M, b, method, reverse=False):
    """States of ``x[k] = x[k-1] @ M + b[k]`` (row vectors), no autograd."""
    L = b.shape[1]
    if method == "sequential":
        return _sequential(b, lambda prev, b_t, out: torch.addmm(b_t, prev, M, out=out), reverse)
    if method == "assoc":
        if reverse:
            return _flip(_dense_impl(M, _flip(b), method))
        x = b.clone()
        d = 1
        Md = M
        while d < L:
            x[:, d:] += x[:, :-d] @ Md
            d *= 2
            if d < L:
                Md = Md @ Md
        return x
    raise ValueError(f"unknown scan method {method!r}; expected one of {DENSE_SCANS}")


class _DenseScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, b, method):
        x = _dense_impl(A.transpose(0, 1), b.contiguous(), method)
        ctx.method = method
        ctx.save_for_backward(A, x)
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        A, x = ctx.saved_tensors
        delta = _dense_impl(A, g.contiguous(), ctx.method, reverse=True)   # delta[t] = g[t] + delta[t+1] @ A
        grad_A = None
        if ctx.needs_input_grad[0]:
            n = A.shape[0]
            grad_A = delta[:, 1:].reshape(-1, n).transpose(0, 1) @ x[:, :-1].reshape(-1, n)
        return grad_A, delta if ctx.needs_input_grad[1] else None, None


def dense_scan(A, b, method="sequential"):
    """States of ``x[k] = A x[k-1] + b[k]``, ``b`` of shape (batch, L, n), real.

    ``method``: ``'sequential'`` (O(L n^2)) or ``'assoc'`` (doubling with matrix powers,
    O(L log L n^2) work in log2(L) steps). Differentiable (first order, adjoint scan).
    """
    if method not in DENSE_SCANS:
        raise ValueError(f"unknown scan method {method!r}; expected one of {DENSE_SCANS}")
    if b.shape[1] == 0:
        return b.clone()
    return _DenseScan.apply(A, b, method)


# --------------------------------------------------------------------------- kernels / FFT
def _split(L):
    T = max(1, math.isqrt(max(L - 1, 0)) + 1)
    return T, -(-L // T)


def mimo_diag_kernel(log_a, B, C, L):
    """Impulse response ``K[:, :, j] = Re(C diag(a^j) B)`` for j < L, shape (p, m, L), real.

    Two-level Vandermonde: ``j = q T + r`` with T ~ sqrt(L), so ``a^j = a^(qT) a^r`` and
    K is one real matmul of (p Q, 2n) by (2n, m T); O(L n p m) work, O(sqrt(L) n (p + m))
    extra memory. Time is the last (contiguous) dimension, ready for the FFT.
    """
    n = log_a.shape[-1]
    p, m = C.shape[0], B.shape[1]
    T, Q = _split(L)
    Pq = powers(log_a, Q, T)                               # (Q, n): a^(q T)
    Pr = powers(log_a, T)                                  # (T, n): a^r
    W = C.unsqueeze(1) * Pq.unsqueeze(0)                   # (p, Q, n)
    Z = B.unsqueeze(1) * Pr.transpose(0, 1).unsqueeze(-1)  # (n, T, m)
    Wr = torch.cat([W.real, -W.imag], dim=-1).reshape(p * Q, 2 * n)
    Zr = torch.cat([Z.real, Z.imag], dim=0).permute(0, 2, 1).reshape(2 * n, m * T)
    K = (Wr @ Zr).reshape(p, Q, m, T).permute(0, 2, 1, 3).reshape(p, m, Q * T)
    return K[..., :L]


def channel_diag_kernel(log_a, CB, L):
    """Per-channel impulse responses ``K[c, j] = Re(sum_i CB[c, i] a[c, i]^j)``, shape (h, L)."""
    h, n = log_a.shape
    T, Q = _split(L)
    rdt = _real_dtype(log_a.dtype)
    eq = torch.arange(Q, dtype=rdt, device=log_a.device) * T
    er = torch.arange(T, dtype=rdt, device=log_a.device)
    W = CB.unsqueeze(1) * cexp(log_a.unsqueeze(1) * eq[None, :, None])       # (h, Q, n)
    Z = cexp(log_a.unsqueeze(2) * er[None, None, :])                         # (h, n, T)
    Wr = torch.cat([W.real, -W.imag], dim=-1)
    Zr = torch.cat([Z.real, Z.imag], dim=1)
    return torch.bmm(Wr, Zr).reshape(h, Q * T)[:, :L]


def dense_kernel(A, B, C, L):
    """``K[:, :, j] = C A^j B`` for j < L, shape (p, m, L), by doubling (log2 L matmul rounds)."""
    M = B.unsqueeze(0)                                     # (1, n, m): A^0 B
    P = A
    while M.shape[0] < L:
        M = torch.cat([M, P @ M], dim=0)
        if M.shape[0] < L:
            P = P @ P
    return (C @ M[:L]).permute(1, 2, 0)


def _fft_len(L):
    """Smallest 7-smooth integer >= 2L - 1 (fast for pocketfft and cuFFT)."""
    N = max(2 * L - 1, 1)
    while True:
        r = N
        for f in (2, 3, 5, 7):
            while r % f == 0:
                r //= f
        if r == 1:
            return N
        N += 1


class _RFFT(torch.autograd.Function):
    """``torch.fft.rfft(x, n=N)`` over the last dim (x real, length L <= N), whose backward is one
    half-size inverse transform (autograd's default zero-fills a full spectrum and runs a c2c)."""

    @staticmethod
    def forward(ctx, x, N):
        ctx.L, ctx.N = x.shape[-1], N
        return torch.fft.rfft(x, n=N)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        # d/dx_j of Re(sum_f conj(g_f) X_f) = Re(sum_f g_f exp(+2 pi i f j / N)), f over the half spectrum
        N = ctx.N
        g = g.clone()
        g[..., 0] *= 2
        if N % 2 == 0:
            g[..., -1] *= 2
        return torch.fft.irfft(g, n=N)[..., :ctx.L] * (N / 2), None


class _FreqProduct(torch.autograd.Function):
    """``Y[f] = K[f] @ U[f]`` (complex, batched over f) with contiguous operands in both passes
    (autograd's complex bmm backward materialises conjugates batch by batch on the CPU)."""

    @staticmethod
    def forward(ctx, K, U):
        K, U = K.contiguous(), U.contiguous()
        ctx.save_for_backward(K, U)
        return torch.bmm(K, U)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        K, U = ctx.saved_tensors
        g = g.contiguous()
        gK = torch.bmm(g, U.transpose(1, 2).conj().resolve_conj().contiguous()) if ctx.needs_input_grad[0] else None
        gU = torch.bmm(K.transpose(1, 2).conj().resolve_conj().contiguous(), g) if ctx.needs_input_grad[1] else None
        return gK, gU


def causal_conv_fft(u, K, channelwise=False):
    """Causal convolution ``y[k] = sum_{j<=k} K[..., j] u[k-j]`` by real FFTs of length >= 2L - 1.

    Parameters
    ----------
    u : real tensor, shape (batch, L, m)
    K : real tensor, shape (p, m, L) (MIMO) or (m, L) with ``channelwise=True``

    Returns
    -------
    y : real tensor, shape (batch, L, p)
    """
    L = u.shape[1]
    N = _fft_len(L)
    U = _RFFT.apply(u.transpose(1, 2), N)                  # (batch, m, F)
    Kf = _RFFT.apply(K, N)                                 # (p, m, F) or (m, F)
    if channelwise:
        Y = U * Kf
    else:
        Y = _FreqProduct.apply(Kf.permute(2, 0, 1), U.permute(2, 1, 0)).permute(2, 1, 0)   # (batch, p, F)
    return torch.fft.irfft(Y, n=N)[..., :L].transpose(1, 2)


# --------------------------------------------------------------------------- layer plumbing
READOUTS = ("pre", "post")


def params_of(module, params=None):
    """The module's parameters by name, overridden by ``params`` (a mapping) where given."""
    P = dict(module.named_parameters(recurse=False))
    if params is not None:
        P.update(params)
    return P


def check_option(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_input(u, h, dtype):
    if u.ndim != 3 or u.shape[-1] != h:
        raise ValueError(f"expected input of shape (batch, length, {h}), got {tuple(u.shape)}")
    if u.dtype != dtype:
        raise TypeError(f"input dtype {u.dtype} does not match the layer's parameters ({dtype}); "
                        f"convert one of them (e.g. layer.to({u.dtype}))")
    return u.shape[1]


def complex_matmul_real_input(u, M):
    """``u @ M.T`` for real ``u`` (..., m) and complex ``M`` (n, m): complex (..., n), one real
    matmul with the rows of M interleaved (re, im), viewed as complex without a copy."""
    n, m = M.shape
    Mi = torch.stack([M.real, M.imag], dim=1).reshape(2 * n, m)
    z = u @ Mi.transpose(0, 1)
    return torch.view_as_complex(z.reshape(tuple(z.shape[:-1]) + (n, 2)))


def real_readout(x, C):
    """``Re(x @ C.T)`` for complex states ``x`` (..., n) and complex ``C`` (p, n), one real matmul."""
    p, n = C.shape
    Cr = torch.stack([C.real, -C.imag], dim=-1).reshape(p, 2 * n)
    return torch.view_as_real(x).flatten(-2) @ Cr.transpose(0, 1)


def mimo_diag_forward(u, log_lam, B, C, D, method, readout, chunk):
    """Output of the MIMO diagonal layer ``x_k = lam x_{k-1} + B u_k``, ``y = Re(C x) + D u``.

    ``readout='post'`` reads ``x_k`` (after the update with ``u_k``), ``'pre'`` reads
    ``x_{k-1}``. ``B`` (n, h), ``C`` (h, n) complex, ``D`` (h,) real.
    """
    L = u.shape[1]
    if method == "fft":
        lags = L if readout == "post" else L - 1
        K = mimo_diag_kernel(log_lam, B, C, max(lags, 0))
        if readout == "pre":
            K = torch.cat([K.new_zeros(tuple(K.shape[:-1]) + (1,)), K], dim=-1)
        y = causal_conv_fft(u, K)
    else:
        bu = complex_matmul_real_input(u, B)
        x = diag_scan(log_lam, bu, method, chunk)
        y = real_readout(x, C)
        if readout == "pre":
            y = shift_right(y)
    return y + u * D
