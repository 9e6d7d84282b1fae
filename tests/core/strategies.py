"""Hypothesis strategies drawing random stable LTI systems, and the run's counters.

Every system is stable *by construction* with a margin (continuous: ``Re(l) <= -0.05``,
discrete: ``|l| <= 0.92``) and a well-conditioned eigenvector basis (condition number
<= 4), so that the Lyapunov equations are well conditioned and a property violation is
a bug, not rounding. Hypothesis draws the structure (time base, real/complex,
dense/diagonal, n, m, p, rank of B and C, zero rows, Jordan coupling, D) and a seed;
numpy draws the numbers from the seed (fast, reproducible, and the structure still
shrinks).

``COUNTS`` is printed by ``tests/conftest.py`` at the end of the run: the number of
systems drawn, the error-bound violations and the non-finite results that the tests
recorded (through :func:`record_bound` and :func:`check_finite`) before asserting.
"""

import warnings

import numpy as np
from hypothesis import strategies as st

# hypothesis imports libcst (-> mypy_extensions, which emits a DeprecationWarning) inside
# pytest's report hook when a property test FAILS; under filterwarnings=error that turns
# the failure report into an INTERNALERROR. Import it here once, outside the hook.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst not installed: hypothesis skips the patch silently
        pass

import lti_reduce as lr
from lti_reduce._array import to_numpy

COUNTS = {"systems": 0, "bound_violations": 0, "nonfinite": 0, "bound_checks": 0, "worst_bound_ratio": 0.0}

N_MAX = 8
CONTINUOUS_MARGIN = 0.05     # Re(l) <= -CONTINUOUS_MARGIN
DISCRETE_RADIUS = 0.92       # |l| <= DISCRETE_RADIUS


# --------------------------------------------------------------------------------------
# counters
# --------------------------------------------------------------------------------------
def record_bound(ok, message=""):
    """Count a violated error bound; then assert it (so the count is right even on failure)."""
    if not ok:
        COUNTS["bound_violations"] += 1
    assert ok, message


def check_finite(*arrays):
    """Count and fail on any NaN/inf in ``arrays`` (numpy or torch, any shape)."""
    for a in arrays:
        a = np.asarray(to_numpy(a))
        if not np.all(np.isfinite(a)):
            COUNTS["nonfinite"] += 1
            raise AssertionError(f"non-finite result: {a!r}")


# --------------------------------------------------------------------------------------
# building blocks (numpy, from a seeded generator)
# --------------------------------------------------------------------------------------
def _unitary(rng, n, complex_):
    X = rng.standard_normal((n, n))
    if complex_:
        X = X + 1j * rng.standard_normal((n, n))
    Q, R = np.linalg.qr(X)
    d = np.diag(R)
    return Q * (d / np.abs(d))


def well_conditioned(rng, n, complex_, cond=4.0):
    """Random ``S`` and its exact-ish inverse with ``cond(S) <= cond``."""
    U, V = _unitary(rng, n, complex_), _unitary(rng, n, complex_)
    d = np.exp(rng.uniform(0.0, np.log(cond), n))
    S = (U * d) @ V.conj().T
    S_inv = (V / d) @ U.conj().T
    return S, S_inv


def stable_eigenvalues(rng, n, discrete, complex_, n_pairs=0):
    """``n`` eigenvalues inside the stability region with a margin.

    Real systems: ``n_pairs`` conjugate pairs, the rest real. Complex systems: any.
    """
    def one(k, real_only):
        if discrete:
            radius = DISCRETE_RADIUS * np.sqrt(rng.uniform(0.0, 1.0, k))
            angle = rng.uniform(-np.pi, np.pi, k) if not real_only else np.pi * rng.integers(0, 2, k)
            return radius * np.exp(1j * angle)
        re = -rng.uniform(CONTINUOUS_MARGIN, 3.0, k)
        im = rng.uniform(-4.0, 4.0, k) if not real_only else np.zeros(k)
        return re + 1j * im

    if complex_:
        return one(n, False)
    pairs = one(n_pairs, False)
    pairs = np.where(pairs.imag == 0, pairs + 0.5j, pairs)           # a genuine pair
    real = one(n - 2 * n_pairs, True).real
    return np.concatenate([pairs, pairs.conj(), real.astype(complex)])


def real_block_diagonal(eigenvalues, n_pairs):
    """Real quasi-diagonal matrix with the given pairs (first ``n_pairs``) and real eigenvalues."""
    n = eigenvalues.size
    J = np.zeros((n, n))
    for k in range(n_pairs):
        lam = eigenvalues[k]
        i = 2 * k
        J[i:i + 2, i:i + 2] = [[lam.real, lam.imag], [-lam.imag, lam.real]]
    rest = eigenvalues[2 * n_pairs:].real
    J[2 * n_pairs:, 2 * n_pairs:] = np.diag(rest)
    return J


def _input_matrix(rng, n, m, structure, complex_, rank=None):
    """``n x m`` matrix: full, low rank (B0 @ K, rank < m) or with zero rows."""
    def normal(shape):
        X = rng.standard_normal(shape)
        return X + 1j * rng.standard_normal(shape) if complex_ else X

    if structure == "low_rank" and m >= 2:
        rank = rank if rank is not None else int(rng.integers(1, m))
        return normal((n, rank)) @ normal((rank, m)) / np.sqrt(rank)
    X = normal((n, m))
    if structure == "zero_rows" and n >= 2:
        zero = rng.choice(n, size=int(rng.integers(1, n)), replace=False)
        X[zero] = 0
    return X


def lightly_damped_nonnormal(seed, n=32, m=2, p=4, coupling=0.8):
    """Complex dense continuous system ``A = Q T Q^H``: T upper triangular with lightly damped
    eigenvalues (``Re`` in [-0.1, -1e-3], ``Im`` in [-3, 3]) and a random strictly upper part
    of size ``coupling``, which sets the eigenvector condition number (1e8-1e10 at 0.8,
    n=32): the class of issue 8 item 1."""
    rng = np.random.default_rng(seed)
    lam = -rng.uniform(1e-3, 1e-1, n) + 1j * rng.uniform(-3, 3, n)
    T = np.diag(lam) + coupling * np.triu(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)), 1)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    B = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    return lr.StateSpace(Q @ T @ Q.conj().T, B, C, dt=0.0)


def fast_decay_diagonal(seed, n_max=40):
    """Complex discrete DiagonalStateSpace, n in [10, n_max], m = 1, p in {1, 2}, eigenvalues
    of modulus <= 0.95 in a narrow sector (or a wide one): its HSVs fall to the numerical
    rank well before n, the class of issue 8 item 1's discrete diagonal violations."""
    rng = np.random.default_rng(seed)
    n, p = int(rng.integers(min(10, n_max), n_max + 1)), int(rng.integers(1, 3))
    radius, angle = rng.uniform(0.0, 0.95, n), rng.uniform(-0.3, 0.3, n) * rng.integers(0, 2)
    B = rng.standard_normal((n, 1)) + 1j * rng.standard_normal((n, 1))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    return lr.DiagonalStateSpace(radius * np.exp(1j * angle), B, C, dt=1.0)


# --------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------
@st.composite
def system_specs(draw, *, discrete=None, complex_=None, diagonal=None, n_min=1, n_max=N_MAX,
                 feedthrough=None, structures=("full", "low_rank", "zero_rows")):
    """Structure of a random system (a dict), drawn by hypothesis."""
    spec = {}
    spec["discrete"] = draw(st.booleans()) if discrete is None else discrete
    spec["complex"] = draw(st.booleans()) if complex_ is None else complex_
    spec["diagonal"] = draw(st.booleans()) if diagonal is None else diagonal
    spec["n"] = n = draw(st.integers(n_min, n_max))
    spec["m"] = draw(st.integers(1, n + 2))
    spec["p"] = draw(st.integers(1, n + 2))
    spec["b_structure"] = draw(st.sampled_from(structures))
    spec["c_structure"] = draw(st.sampled_from(structures))
    spec["n_pairs"] = 0 if (spec["complex"] or spec["diagonal"]) else draw(st.integers(0, n // 2))
    spec["jordan"] = False if spec["diagonal"] else draw(st.booleans())
    spec["feedthrough"] = draw(st.booleans()) if feedthrough is None else feedthrough
    spec["dt"] = draw(st.sampled_from([True, 0.5, 1.0])) if spec["discrete"] else 0.0
    spec["seed"] = draw(st.integers(0, 2 ** 32 - 1))
    return spec


def build_system(spec):
    """The StateSpace / DiagonalStateSpace described by ``spec`` (numpy arrays)."""
    rng = np.random.default_rng(spec["seed"])
    n, m, p = spec["n"], spec["m"], spec["p"]
    cplx, disc = spec["complex"], spec["discrete"]
    lam = stable_eigenvalues(rng, n, disc, cplx, spec["n_pairs"])
    B = _input_matrix(rng, n, m, spec["b_structure"], cplx)
    C = _input_matrix(rng, n, p, spec["c_structure"], cplx).T
    if cplx:
        D = rng.standard_normal((p, m)) + 1j * rng.standard_normal((p, m))
    else:
        D = rng.standard_normal((p, m))
    if not spec["feedthrough"]:
        D = np.zeros_like(D)
    if spec["diagonal"]:
        if not cplx:
            lam = lam.real
        return lr.DiagonalStateSpace(lam, B, C, D, dt=spec["dt"])
    if cplx:
        J = np.diag(lam)
    else:
        J = real_block_diagonal(lam, spec["n_pairs"])
    if spec["jordan"]:
        # strictly upper coupling (does not move the eigenvalues; makes A non-normal)
        coupling = np.triu(rng.standard_normal((n, n)), 2 if not cplx else 1)
        if cplx:
            coupling = coupling + 1j * np.triu(rng.standard_normal((n, n)), 1)
        J = J + 0.5 * coupling
    S, S_inv = well_conditioned(rng, n, cplx)
    A = S @ J @ S_inv
    if not cplx:
        A = A.real
    return lr.StateSpace(A, B, C, D, dt=spec["dt"])


@st.composite
def systems(draw, **kwargs):
    """A random stable system (see :func:`system_specs` for the keyword arguments)."""
    system = build_system(draw(system_specs(**kwargs)))
    COUNTS["systems"] += 1
    return system


@st.composite
def batched_diagonal_systems(draw, *, discrete=None, n_max=6):
    """A DiagonalStateSpace with one or two batch dimensions (complex, LRU-like)."""
    disc = draw(st.booleans()) if discrete is None else discrete
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    n = draw(st.integers(1, n_max))
    m = draw(st.integers(1, n + 1))
    p = draw(st.integers(1, n + 1))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    count = int(np.prod(batch))
    lam = np.stack([stable_eigenvalues(rng, n, disc, True) for _ in range(count)]).reshape(batch + (n,))
    B = rng.standard_normal(batch + (n, m)) + 1j * rng.standard_normal(batch + (n, m))
    C = rng.standard_normal(batch + (p, n)) + 1j * rng.standard_normal(batch + (p, n))
    D = rng.standard_normal(batch + (p, m))
    COUNTS["systems"] += count
    return lr.DiagonalStateSpace(lam, B, C, D + 0j, dt=1.0 if disc else 0.0)


# --------------------------------------------------------------------------------------
# helpers shared by the tests
# --------------------------------------------------------------------------------------
def dense_matrices(system):
    """(A, B, C, D) numpy arrays of a StateSpace or unbatched DiagonalStateSpace."""
    if isinstance(system, lr.DiagonalStateSpace):
        system = system.to_dense()
    system = system.to_numpy()
    return system.A, system.B, system.C, system.D


def sample_points(system, k=5, seed=0):
    """``k`` complex points away from the poles, on and off the stability boundary."""
    rng = np.random.default_rng(seed)
    if system.is_discrete:
        on = np.exp(1j * rng.uniform(-np.pi, np.pi, k - 2))
        return np.concatenate([on, [1.0 + 0j, 1.7 - 0.4j]])
    on = 1j * rng.uniform(-5.0, 5.0, k - 2)
    return np.concatenate([on, [0j, 0.8 + 2.0j]])


def error_system(full, reduced):
    """``G - G_r`` as a dense StateSpace (block-diagonal A)."""
    A, B, C, D = dense_matrices(full)
    Ar, Br, Cr, Dr = dense_matrices(reduced)
    n, r = A.shape[0], Ar.shape[0]
    dtype = np.result_type(A, Ar, B, Br, C, Cr, D, Dr)
    Ae = np.zeros((n + r, n + r), dtype=dtype)
    Ae[:n, :n], Ae[n:, n:] = A, Ar
    return lr.StateSpace(Ae, np.vstack([B, Br]), np.hstack([C, -Cr]), D - Dr, dt=full.dt)


def admissible_orders(hsv, gap=None, floor=0.0):
    """Orders r in [0, rank] that do not split a group of equal HSVs (no warning then).

    With ``gap``, only orders with ``s_r > (1 + gap) s_{r+1}`` (a clear gap) are returned
    (r = rank included: s_{rank+1} = 0). With ``floor``, only orders with ``s_r > floor``
    (HSVs at rounding level are not worth a state, and dividing by them is ill-posed).
    """
    s = np.asarray(hsv, dtype=float)
    rank = int(np.count_nonzero(s))
    top = s[0] if s.size else 0.0
    out = [0]
    for r in range(1, rank + 1):
        nxt = s[r] if r < s.size else 0.0
        if s[r - 1] - nxt <= 1e-10 * top or not s[r - 1] > floor:
            continue
        if gap is not None and not s[r - 1] > (1 + gap) * nxt:
            continue
        out.append(r)
    return out
