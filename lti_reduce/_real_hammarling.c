/*
 * Hammarling's method in real arithmetic on a real Schur form (1x1 and 2x2 diagonal blocks),
 * for lti_reduce/_real_factor.py. Part of the optional extension lti_reduce._hammarling_leaf.
 *
 * Continuous-time controllability form, S real upper quasi-triangular, stable:
 *
 *     S X + X S^T + M M^T = 0,    X = U U^T,  U upper triangular (real),
 *     U Ahat = S U,   U Bhat = M,   Ahat + Ahat^T + Bhat Bhat^T = 0,
 *
 * Ahat upper quasi-triangular with the blocks of S. Block rows are solved from the bottom;
 * with (U_t, A_t, B_t) the triple of the rows below a diagonal block S_jj (1x1 or 2x2):
 *
 *     S_jj u + u A_t^T = -(S_jt U_t + M_j B_t^T)      (u: the block's row of U right of it)
 *     m = M_j - u B_t,   (U_jj, A_jj, B_j) = triple of (S_jj, m),   A_jt = -B_j B_t^T.
 *
 * A 2x2 block is triangularised by a unitary G (G^H S_jj G = Tc upper triangular, complex),
 * the 2-row complex recursion gives Uc, and U_jj is the upper triangular (real, positive
 * diagonal) R of the RQ factorisation G Uc = U_jj Q^H; then A_jj = Q^H Ac Q, B_j = Q^H Bc,
 * real up to rounding. |det U_jj| = Uc_00 Uc_11 is taken from Uc (no cancellation).
 *
 * Discrete time is reduced to continuous time by the Cayley transform, which keeps the
 * quasi-triangular pattern exactly: lti_reduce_quasi_solve computes (S + I)^-1 X.
 *
 * All arrays are C-contiguous (row-major) float64; pair[i] != 0 marks rows i, i+1 as one
 * 2x2 block.
 */
#include <complex.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef double complex cplx;

/* sum a_i b_i with four partial sums: a single sum waits on the latency of each addition */
static double dot(int len, const double *a, const double *b)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int i = 0;
    for (; i + 4 <= len; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < len; ++i)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* G x = r for k <= 4 unknowns (G row-major k x k), complete pivoting; a pivot below
 * smin = max(eps max|G|, DBL_MIN) is replaced by smin, as LAPACK dlasy2 does. */
static void small_solve(int k, double *G, double *r)
{
    if (k == 2) {      /* 2x2: partial pivoting, as LAPACK dlasy2 for its 2x2 cases */
        double a = G[0], b = G[1], c = G[2], d = G[3], r0 = r[0], r1 = r[1];
        const double smin = fmax(DBL_EPSILON * fmax(fmax(fabs(a), fabs(b)), fmax(fabs(c), fabs(d))), DBL_MIN);
        if (fabs(c) > fabs(a)) {
            double t;
            t = a; a = c; c = t;
            t = b; b = d; d = t;
            t = r0; r0 = r1; r1 = t;
        }
        if (fabs(a) < smin)
            a = smin;
        const double f = c / a;
        double d2 = d - f * b;
        if (fabs(d2) < smin)
            d2 = smin;
        r[1] = (r1 - f * r0) / d2;
        r[0] = (r0 - b * r[1]) / a;
        return;
    }
    int col[4] = {0, 1, 2, 3};
    double big = 0.0;
    for (int i = 0; i < k * k; ++i)
        big = fmax(big, fabs(G[i]));
    const double smin = fmax(DBL_EPSILON * big, DBL_MIN);
    for (int p = 0; p < k; ++p) {
        int pi = p, pj = p;
        double best = -1.0;
        for (int i = p; i < k; ++i)
            for (int j = p; j < k; ++j)
                if (fabs(G[i * k + j]) > best) {
                    best = fabs(G[i * k + j]);
                    pi = i;
                    pj = j;
                }
        if (pi != p) {
            for (int j = 0; j < k; ++j) {
                double t = G[p * k + j]; G[p * k + j] = G[pi * k + j]; G[pi * k + j] = t;
            }
            double t = r[p]; r[p] = r[pi]; r[pi] = t;
        }
        if (pj != p) {
            for (int i = 0; i < k; ++i) {
                double t = G[i * k + p]; G[i * k + p] = G[i * k + pj]; G[i * k + pj] = t;
            }
            int t = col[p]; col[p] = col[pj]; col[pj] = t;
        }
        if (fabs(G[p * k + p]) < smin)
            G[p * k + p] = smin;
        for (int i = p + 1; i < k; ++i) {
            double f = G[i * k + p] / G[p * k + p];
            for (int j = p + 1; j < k; ++j)
                G[i * k + j] -= f * G[p * k + j];
            r[i] -= f * r[p];
        }
    }
    double x[4];
    for (int p = k - 1; p >= 0; --p) {
        double s = r[p];
        for (int j = p + 1; j < k; ++j)
            s -= G[p * k + j] * x[j];
        x[p] = s / G[p * k + p];
    }
    for (int p = 0; p < k; ++p)
        r[col[p]] = x[p];
}

/* Largest |x_i| and the norm of x scaled by it (no squaring into underflow or overflow). */
static double scaled_norm(int len, const double *x, double *top)
{
    double t = 0.0, s = 0.0;
    for (int i = 0; i < len; ++i)
        t = fmax(t, fabs(x[i]));
    *top = t;
    if (t == 0.0)
        return 0.0;
    for (int i = 0; i < len; ++i)
        s += (x[i] / t) * (x[i] / t);
    return sqrt(s);
}

static double cnorm(int len, const cplx *x)
{
    double t = 0.0, s = 0.0;
    for (int i = 0; i < len; ++i)
        t = fmax(t, cabs(x[i]));
    if (t == 0.0)
        return 0.0;
    for (int i = 0; i < len; ++i) {
        double a = creal(x[i]) / t, b = cimag(x[i]) / t;
        s += a * a + b * b;
    }
    return t * sqrt(s);
}

/* out = root x / |x| (complex row); a zero row takes the direction e_0 */
static double cunit_row(int m, const cplx *x, double root, cplx *out)
{
    double nu = cnorm(m, x);
    if (nu == 0.0) {
        for (int q = 0; q < m; ++q)
            out[q] = 0.0;
        out[0] = root;
    } else {
        for (int q = 0; q < m; ++q)
            out[q] = x[q] * (root / nu);
    }
    return nu;
}

/* Largest imaginary part (relative to its block's scale) that pair_block may drop. Rounding
 * leaves at most 3.2e-14 on 2252 blocks of random systems (n <= 101) and about 1.1e-12 where
 * the block's factor has condition 4e3 (benchmark systems n = 50 and 400, m = 1; the HSVs then
 * agree with SLICOT's to 3e-13 and 2e-12, as the complex route's do). A 2x2 block whose factor
 * is numerically singular (a complex pair with nearly equal eigenvalues that one input barely
 * separates, e.g. -1 +- 1e-14 i twice) leaves 5e-3, and dropping that breaks the identities
 * (HSVs up to 7e-6 off). */
#define LOST_TOL 1e-11

/* Triple (U2, A2, B2) of a 2x2 block S2 with input rows m1 (2 x m, m >= 1); work: 4m cplx.
 * Returns 0, or 2 when A2, B2 are real only up to more than LOST_TOL (then the caller takes
 * the complex route). */
static int pair_block(int m, const double *S2, const double *m1, double *U2, double *A2, double *B2,
                      cplx *work)
{
    const double a = S2[0], b = S2[1], c = S2[2], d = S2[3];
    double sigma = 0.0;
    for (int q = 0; q < 2 * m; ++q)
        sigma = fmax(sigma, fabs(m1[q]));
    /* an eigenvector v of S2 from its first row: (a - lam) v1 + b v2 = 0 */
    const double half = (a - d) / 2, disc = half * half + b * c;
    cplx v1, v2;
    if (disc < 0) {
        v1 = b;
        v2 = -half + I * sqrt(-disc);
    } else {      /* real eigenvalues (a pair split by rounding): the root without cancellation */
        v1 = b;
        v2 = half >= 0 ? -half - sqrt(disc) : -half + sqrt(disc);
        if (v1 == 0.0 && v2 == 0.0)
            v1 = 1.0;
    }
    const double size = hypot(cabs(v1), cabs(v2));
    v1 /= size;
    v2 /= size;
    const cplx g[2][2] = {{v1, -conj(v2)}, {v2, conj(v1)}};       /* G = [v, w] */
    cplx sg[2][2], t[2][2];
    for (int q = 0; q < 2; ++q) {
        sg[0][q] = a * g[0][q] + b * g[1][q];
        sg[1][q] = c * g[0][q] + d * g[1][q];
    }
    for (int p = 0; p < 2; ++p)
        for (int q = 0; q < 2; ++q)
            t[p][q] = conj(g[0][p]) * sg[0][q] + conj(g[1][p]) * sg[1][q];
    /* Mc = G^H m (direction only: the triple does not depend on the scale of m) */
    cplx *mc = work, *bc = work + 2 * m;
    for (int q = 0; q < m; ++q) {
        double x0 = sigma > 0 ? m1[q] / sigma : (q == 0), x1 = sigma > 0 ? m1[m + q] / sigma : 0.0;
        mc[q] = conj(g[0][0]) * x0 + conj(g[1][0]) * x1;
        mc[m + q] = conj(g[0][1]) * x0 + conj(g[1][1]) * x1;
    }
    /* the two-row complex recursion on (Tc, Mc), bottom row first */
    const cplx tau0 = t[0][0], tau1 = t[1][1];
    const double root0 = sqrt(-2.0 * creal(tau0)), root1 = sqrt(-2.0 * creal(tau1));
    const double u11 = cunit_row(m, mc + m, root1, bc + m) / root1;
    cplx rhs = t[0][1] * u11;
    for (int q = 0; q < m; ++q)
        rhs += mc[q] * conj(bc[m + q]);
    const cplx u01 = -rhs / (tau0 + conj(tau1));
    for (int q = 0; q < m; ++q)
        mc[q] -= u01 * bc[m + q];
    const double u00 = cunit_row(m, mc, root0, bc) / root0;
    cplx a01 = 0.0;
    for (int q = 0; q < m; ++q)
        a01 -= bc[q] * conj(bc[m + q]);
    const cplx ac[2][2] = {{tau0, a01}, {0.0, tau1}};
    /* K = G Uc and its RQ factorisation K = U2 Q^H */
    const cplx k[2][2] = {{g[0][0] * u00, g[0][0] * u01 + g[0][1] * u11},
                          {g[1][0] * u00, g[1][0] * u01 + g[1][1] * u11}};
    const double r = hypot(cabs(k[1][0]), cabs(k[1][1]));
    cplx qm[2][2];
    if (r == 0.0) {
        qm[0][0] = 1.0; qm[0][1] = 0.0; qm[1][0] = 0.0; qm[1][1] = 1.0;
    } else {      /* columns q1 = (k11, -k10) / r (det G = 1: K q1 = |det K| / r e_0), q2 = conj(k_1) / r */
        qm[0][0] = k[1][1] / r; qm[1][0] = -k[1][0] / r;
        qm[0][1] = conj(k[1][0]) / r; qm[1][1] = conj(k[1][1]) / r;
    }
    const double scale = sigma;      /* 0 for a zero input: U2 = 0, any direction above */
    U2[0] = scale * (r > 0 ? u00 * u11 / r : 0.0);
    U2[1] = scale * creal(k[0][0] * qm[0][1] + k[0][1] * qm[1][1]);
    U2[2] = 0.0;
    U2[3] = scale * r;
    /* A2 = Q^H Ac Q, B2 = Q^H Bc: real up to rounding where U2 is invertible */
    double lost_a = 0.0, lost_b = 0.0;
    for (int p = 0; p < 2; ++p)
        for (int q = 0; q < 2; ++q) {
            cplx s = 0.0;
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 2; ++j)
                    s += conj(qm[i][p]) * ac[i][j] * qm[j][q];
            A2[2 * p + q] = creal(s);
            lost_a = fmax(lost_a, fabs(cimag(s)));
        }
    for (int q = 0; q < m; ++q) {
        const cplx b0 = conj(qm[0][0]) * bc[q] + conj(qm[1][0]) * bc[m + q];
        const cplx b1 = conj(qm[0][1]) * bc[q] + conj(qm[1][1]) * bc[m + q];
        B2[q] = creal(b0);
        B2[m + q] = creal(b1);
        lost_b = fmax(lost_b, fmax(fabs(cimag(b0)), fabs(cimag(b1))));
    }
    /* |Bc rows| = root0, root1; |Ac| <= |tau0| + |a01| + |tau1| */
    const int lost = lost_a > LOST_TOL * (cabs(tau0) + cabs(a01) + cabs(tau1))
                     || lost_b > LOST_TOL * fmax(root0, root1);
    return lost ? 2 : 0;
}

/* U, Ahat, Bhat of S X + X S^T + M M^T = 0 (module notes). S: n x n, M, Bh: n x m (m >= 1),
 * U, Ah: n x n, written in full (zeros below the diagonal, resp. the blocks). Returns 0; 1 when
 * the work space could not be allocated; 2 when a 2x2 block's triple was not real to working
 * accuracy (see LOST_TOL; the result is then not to be used). */
int lti_reduce_real_hammarling(int n, int m, const double *S, const int *pair, const double *M,
                               double *U, double *Ah, double *Bh)
{
    double *rhs = malloc(sizeof(double) * (2 * (size_t)n + 2 * (size_t)m + 1));
    cplx *work = malloc(sizeof(cplx) * (4 * (size_t)m + 1));
    if (rhs == NULL || work == NULL) {
        free(rhs);
        free(work);
        return 1;
    }
    double *m1 = rhs + 2 * (size_t)n;
    memset(U, 0, sizeof(double) * (size_t)n * n);
    memset(Ah, 0, sizeof(double) * (size_t)n * n);
    int status = 0;
    int j = n - 1;
    while (j >= 0) {
        const int s = (j >= 1 && pair[j - 1]) ? 2 : 1, top = j - s + 1, t0 = j + 1;
        /* 1. the block's rows of -(S_jt U_t + M_j B_t^T), kept in U's rows */
        for (int i = 0; i < s; ++i) {
            double *u = U + (size_t)(top + i) * n;
            const double *srow = S + (size_t)(top + i) * n, *mrow = M + (size_t)(top + i) * m;
            for (int d = t0; d < n; ++d) {
                const double sd = srow[d];
                if (sd != 0.0) {
                    const double *urow = U + (size_t)d * n;
                    for (int col = d; col < n; ++col)
                        u[col] += sd * urow[col];
                }
            }
            for (int col = t0; col < n; ++col)
                u[col] = -(u[col] + dot(m, mrow, Bh + (size_t)col * m));
        }
        /* 2. S_jj u + u A_t^T = rhs, by blocks of A_t from the last one */
        int c = n - 1;
        while (c >= t0) {
            const int sz = (c - 1 >= t0 && pair[c - 1]) ? 2 : 1, c0 = c - sz + 1, k = s * sz;
            if (k == 1) {      /* two 1x1 blocks (most columns): no small system to build */
                double *u = U + (size_t)top * n;
                double g = S[(size_t)top * n + top] + Ah[(size_t)c * n + c];
                if (fabs(g) < DBL_MIN)
                    g = DBL_MIN;
                u[c] = (u[c] - dot(n - c - 1, u + c + 1, Ah + (size_t)c * n + c + 1)) / g;
                c -= 1;
                continue;
            }
            double G[16] = {0}, r[4];
            for (int i = 0; i < s; ++i) {
                double *u = U + (size_t)(top + i) * n;
                for (int a = 0; a < sz; ++a) {
                    const double *arow = Ah + (size_t)(c0 + a) * n;
                    const int e = i * sz + a;
                    r[e] = u[c0 + a] - dot(n - c - 1, u + c + 1, arow + c + 1);
                    for (int i2 = 0; i2 < s; ++i2)
                        G[e * k + i2 * sz + a] += S[(size_t)(top + i) * n + top + i2];
                    for (int a2 = 0; a2 < sz; ++a2)
                        G[e * k + i * sz + a2] += arow[c0 + a2];
                }
            }
            small_solve(k, G, r);
            for (int i = 0; i < s; ++i)
                for (int a = 0; a < sz; ++a)
                    U[(size_t)(top + i) * n + c0 + a] = r[i * sz + a];
            c = c0 - 1;
        }
        /* 3. m = M_j - u B_t */
        for (int i = 0; i < s; ++i) {
            double *mi = m1 + (size_t)i * m;
            const double *u = U + (size_t)(top + i) * n;
            memcpy(mi, M + (size_t)(top + i) * m, sizeof(double) * m);
            for (int col = t0; col < n; ++col) {
                const double uc = u[col], *brow = Bh + (size_t)col * m;
                if (uc != 0.0)
                    for (int q = 0; q < m; ++q)
                        mi[q] -= uc * brow[q];
            }
        }
        /* 4. the diagonal block */
        if (s == 1) {
            const double tau = S[(size_t)top * n + top], root = sqrt(-2.0 * tau);
            double big;
            const double nu = scaled_norm(m, m1, &big);
            double *brow = Bh + (size_t)top * m;
            if (nu == 0.0) {      /* a zero row takes any direction of norm root */
                memset(brow, 0, sizeof(double) * m);
                brow[0] = root;
            } else {
                for (int q = 0; q < m; ++q)
                    brow[q] = (m1[q] / big) * (root / nu);
            }
            U[(size_t)top * n + top] = big * nu / root;
            Ah[(size_t)top * n + top] = tau;
        } else {
            const double S2[4] = {S[(size_t)top * n + top], S[(size_t)top * n + top + 1],
                                  S[(size_t)(top + 1) * n + top], S[(size_t)(top + 1) * n + top + 1]};
            double U2[4], A2[4];
            if (pair_block(m, S2, m1, U2, A2, Bh + (size_t)top * m, work)) {
                status = 2;
                break;
            }
            for (int p = 0; p < 2; ++p)
                for (int q = 0; q < 2; ++q) {
                    U[(size_t)(top + p) * n + top + q] = U2[2 * p + q];
                    Ah[(size_t)(top + p) * n + top + q] = A2[2 * p + q];
                }
        }
        /* 5. A_jt = -B_j B_t^T */
        for (int i = 0; i < s; ++i) {
            const double *bi = Bh + (size_t)(top + i) * m;
            double *arow = Ah + (size_t)(top + i) * n;
            for (int col = t0; col < n; ++col)
                arow[col] = -dot(m, bi, Bh + (size_t)col * m);
        }
        j = top - 1;
    }
    free(rhs);
    free(work);
    return status;
}

/* X <- (S + I)^-1 X for S real upper quasi-triangular (n x n) and X (n x w), by block rows
 * from the bottom; a 2x2 block is solved with partial pivoting. (S + I is invertible for a
 * discrete-time stable S.) */
void lti_reduce_quasi_solve(int n, int w, const double *S, const int *pair, double *X)
{
    int j = n - 1;
    while (j >= 0) {
        const int s = (j >= 1 && pair[j - 1]) ? 2 : 1, top = j - s + 1;
        for (int i = top; i <= j; ++i) {
            double *x = X + (size_t)i * w;
            const double *srow = S + (size_t)i * n;
            for (int d = j + 1; d < n; ++d) {
                const double sd = srow[d];
                if (sd != 0.0) {
                    const double *xd = X + (size_t)d * w;
                    for (int q = 0; q < w; ++q)
                        x[q] -= sd * xd[q];
                }
            }
        }
        double *x0 = X + (size_t)top * w;
        if (s == 1) {
            const double p = S[(size_t)top * n + top] + 1.0;
            for (int q = 0; q < w; ++q)
                x0[q] /= p;
        } else {
            double *x1 = x0 + w;
            double a = S[(size_t)top * n + top] + 1.0, b = S[(size_t)top * n + top + 1];
            double c = S[(size_t)(top + 1) * n + top], d = S[(size_t)(top + 1) * n + top + 1] + 1.0;
            int swap = fabs(c) > fabs(a);
            if (swap) {      /* partial pivoting: the larger first-column entry on top */
                double t;
                t = a; a = c; c = t;
                t = b; b = d; d = t;
                double *tx = x0; x0 = x1; x1 = tx;
            }
            const double f = c / a, d2 = d - f * b;
            for (int q = 0; q < w; ++q) {
                const double y1 = (x1[q] - f * x0[q]) / d2;
                const double y0 = (x0[q] - b * y1) / a;
                if (swap) {      /* x0, x1 point at the swapped rows: write back in order */
                    x1[q] = y0;
                    x0[q] = y1;
                } else {
                    x0[q] = y0;
                    x1[q] = y1;
                }
            }
        }
        j = top - 1;
    }
}

/* Both factors of a real Schur form in one call (no Python between the steps). With
 * J reversing the order of the states:
 *     controllability: S Xc + Xc S^T + Mc Mc^T = 0 (continuous), Xc = Uc Uc^T;
 *     observability: the same for (J S^T J, Mo), Xo = Uo Uo^T, Mo = J Z^T C^T;
 * discrete time through the Cayley transform (module notes). Mc: n x m, Mo: n x p, C order;
 * a NULL Uc (Uo) skips that factor (its M is then not read). Returns what
 * lti_reduce_real_hammarling returns (0, 1: no work space, 2: take the complex route). */
int lti_reduce_real_factors(int n, int m, int p, int discrete, const double *S, const int *pair,
                            const double *Mc, const double *Mo, double *Uc, double *Uo)
{
    const size_t nn = (size_t)n * n, w = (size_t)(m > p ? m : p);
    double *work = malloc(sizeof(double) * (4 * nn + (size_t)n * (n + m) + (size_t)n * (m + p) + n * w + 1));
    int *flipped_pair = malloc(sizeof(int) * ((size_t)n + 1));
    if (work == NULL || flipped_pair == NULL) {
        free(work);
        free(flipped_pair);
        return 1;
    }
    double *Sc = work, *Sf = Sc + nn, *Ah = Sf + nn, *Sfc = Ah + nn, *W = Sfc + nn;
    double *Mcc = W + (size_t)n * (n + m), *Moc = Mcc + (size_t)n * m, *Bh = Moc + (size_t)n * p;
    for (int i = 0; i < n; ++i)
        flipped_pair[i] = i + 1 < n ? pair[n - 2 - i] : 0;
    for (int i = 0; i < n; ++i)      /* J S^T J */
        for (int j = 0; j < n; ++j)
            Sf[(size_t)i * n + j] = S[(size_t)(n - 1 - j) * n + n - 1 - i];
    int status = 0;
    if (discrete) {
        const double root2 = sqrt(2.0);
        for (int i = 0; i < n; ++i) {
            double *row = W + (size_t)i * (n + m);
            memcpy(row, S + (size_t)i * n, sizeof(double) * n);
            row[i] -= 1.0;
            if (Uc != NULL)
                memcpy(row + n, Mc + (size_t)i * m, sizeof(double) * m);
            else
                memset(row + n, 0, sizeof(double) * m);
        }
        lti_reduce_quasi_solve(n, n + m, S, pair, W);
        for (int i = 0; i < n; ++i) {
            const double *row = W + (size_t)i * (n + m);
            memcpy(Sc + (size_t)i * n, row, sizeof(double) * n);
            for (int q = 0; q < m; ++q)
                Mcc[(size_t)i * m + q] = root2 * row[n + q];
        }
        if (Uo != NULL) {
            memcpy(Moc, Mo, sizeof(double) * (size_t)n * p);
            lti_reduce_quasi_solve(n, p, Sf, flipped_pair, Moc);
            for (size_t k = 0; k < (size_t)n * p; ++k)
                Moc[k] *= root2;
        }
        for (int i = 0; i < n; ++i)      /* Cayley(S^T) = Cayley(S)^T, flipped */
            for (int j = 0; j < n; ++j)
                Sfc[(size_t)i * n + j] = Sc[(size_t)(n - 1 - j) * n + n - 1 - i];
    } else {
        memcpy(Sc, S, sizeof(double) * nn);
        memcpy(Sfc, Sf, sizeof(double) * nn);
        if (Uc != NULL)
            memcpy(Mcc, Mc, sizeof(double) * (size_t)n * m);
        if (Uo != NULL)
            memcpy(Moc, Mo, sizeof(double) * (size_t)n * p);
    }
    if (Uc != NULL)
        status = lti_reduce_real_hammarling(n, m, Sc, pair, Mcc, Uc, Ah, Bh);
    if (Uo != NULL && status == 0)
        status = lti_reduce_real_hammarling(n, p, Sfc, flipped_pair, Moc, Uo, Ah, Bh);
    free(work);
    free(flipped_pair);
    return status;
}
