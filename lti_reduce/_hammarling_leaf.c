/*
 * Compiled leaf of the recursive blocked Hammarling factor (lti_reduce/_blocked_factor.py).
 *
 * The same computation as the Python `_leaf` there, row by row from the bottom of a small
 * block, without numpy's fixed cost per call (about 9 microseconds a row in Python, which
 * dominated dense reductions below 200 states). Optional: when this extension is not built,
 * the Python leaf runs instead and gives the same result up to rounding.
 *
 * Continuous-time controllability form, T upper triangular (complex Schur factor), stable:
 *
 *     T X + X T^H + M M^H = 0,    X = U U^H,  U upper triangular,
 *     U Ahat = T U,   U Bhat = M,   Ahat + Ahat^H + Bhat Bhat^H = 0.
 *
 * Arrays are passed as base pointers with element strides (row, column), so the views of
 * the recursion (Fortran- or C-ordered, offset) need no copy. Loaded with ctypes; the
 * module object exists only so that the file is found and built like any extension (whose
 * second source, _real_hammarling.c, holds the real-arithmetic kernels).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef double complex cplx;

#define AT(p, i, j, rs, cs) (p)[(Py_ssize_t)(i) * (rs) + (Py_ssize_t)(j) * (cs)]

/* Inner loops in real arithmetic on (re, im) pairs: C99 complex products check every result
 * for NaN (to recover infinities), which keeps gcc from vectorising them; the operands here
 * are finite, where both give the same values. */
static inline void axpy(int len, cplx alpha, const cplx *x, cplx *y)      /* y += alpha x */
{
    const double ar = creal(alpha), ai = cimag(alpha);
    const double *xd = (const double *)x;
    double *yd = (double *)y;
    for (int i = 0; i < len; ++i) {
        double xr = xd[2 * i], xi = xd[2 * i + 1];
        yd[2 * i] += ar * xr - ai * xi;
        yd[2 * i + 1] += ar * xi + ai * xr;
    }
}

static inline cplx dot(int len, const cplx *a, const cplx *b)          /* sum a_i b_i */
{
    const double *ad = (const double *)a, *bd = (const double *)b;
    double re = 0.0, im = 0.0;
    for (int i = 0; i < len; ++i) {
        re += ad[2 * i] * bd[2 * i] - ad[2 * i + 1] * bd[2 * i + 1];
        im += ad[2 * i] * bd[2 * i + 1] + ad[2 * i + 1] * bd[2 * i];
    }
    return CMPLX(re, im);
}

static inline cplx dotc(int len, const cplx *a, const cplx *b)         /* sum a_i conj(b_i) */
{
    const double *ad = (const double *)a, *bd = (const double *)b;
    double re = 0.0, im = 0.0;
    for (int i = 0; i < len; ++i) {
        re += ad[2 * i] * bd[2 * i] + ad[2 * i + 1] * bd[2 * i + 1];
        im += ad[2 * i + 1] * bd[2 * i] - ad[2 * i] * bd[2 * i + 1];
    }
    return CMPLX(re, im);
}

/* x / d by Smith's algorithm (no overflow of |d|^2), d != 0 */
static inline cplx divide(cplx x, cplx d)
{
    double dr = creal(d), di = cimag(d), xr = creal(x), xi = cimag(x);
    if (fabs(dr) >= fabs(di)) {
        double q = di / dr, s = dr + di * q;
        return CMPLX((xr + xi * q) / s, (xi - xr * q) / s);
    }
    double q = dr / di, s = di + dr * q;
    return CMPLX((xr * q + xi) / s, (xi * q - xr) / s);
}

/* Row j of -Bhat from the updated input row m (length w): -root m / |m|, with a tiny row
 * scaled first (no squaring into underflow) and a zero row given any direction (every row
 * of norm root keeps the identities). Returns |m|. */
static double new_row(const cplx *m, int w, double root, cplx *out)
{
    double sum = 0.0;
    for (int c = 0; c < w; ++c)
        sum += creal(m[c]) * creal(m[c]) + cimag(m[c]) * cimag(m[c]);
    double nu = sqrt(sum);
    if (nu > 1e-150) {
        double factor = -root / nu;
        for (int c = 0; c < w; ++c)
            out[c] = m[c] * factor;
        return nu;
    }
    double top = 0.0;
    for (int c = 0; c < w; ++c)
        if (cabs(m[c]) > top)
            top = cabs(m[c]);
    if (top == 0.0) {
        for (int c = 0; c < w; ++c)
            out[c] = 0.0;
        if (w > 0)
            out[0] = -root;
        return 0.0;
    }
    sum = 0.0;
    for (int c = 0; c < w; ++c) {
        cplx s = m[c] / top;
        sum += creal(s) * creal(s) + cimag(s) * cimag(s);
    }
    double size = sqrt(sum);
    for (int c = 0; c < w; ++c)
        out[c] = (m[c] / top) * (-root / size);
    return top * size;
}

/* Fill U (b x b), Ah (b x b) and Bh (b x w) for the block (T, M). Returns 0, or -1 when
 * memory runs out (nothing written then). */
int lti_reduce_hammarling_leaf(int b, int w,
                               const cplx *T, Py_ssize_t tr, Py_ssize_t tc,
                               const cplx *M, Py_ssize_t mr, Py_ssize_t mc,
                               cplx *U, Py_ssize_t ur, Py_ssize_t uc,
                               cplx *Ah, Py_ssize_t ar, Py_ssize_t ac,
                               cplx *Bh, Py_ssize_t br, Py_ssize_t bc)
{
    size_t bb = (size_t)b * b, bw = (size_t)b * w;
    /* one allocation: U and N = -conj(Ahat) row-major, negB = -Bhat row-major,
       and the work rows x (b), m (w), diag (b) */
    cplx *work = calloc(2 * bb + bw + 2 * (size_t)b + (size_t)w + 1, sizeof(cplx));
    double *roots = malloc(((size_t)b + 1) * sizeof(double));
    if (work == NULL || roots == NULL) {
        free(work);
        free(roots);
        return -1;
    }
    cplx *Uw = work, *N = Uw + bb, *negB = N + bb, *x = negB + bw, *mrow = x + b, *diag = mrow + w;

    for (int i = 0; i < b; ++i) {
        diag[i] = AT(T, i, i, tr, tc);
        roots[i] = sqrt(-2.0 * creal(diag[i]));
        N[(size_t)i * b + i] = -conj(diag[i]);
    }
    for (int j = b - 1; j >= 0; --j) {
        int s = j + 1;
        double root = roots[j];
        for (int c = 0; c < w; ++c)
            mrow[c] = AT(M, j, c, mr, mc);
        if (s < b) {
            /* x_i = sum_{k>j} T_jk U_ki - sum_c M_jc conj(negB_ic), i > j */
            for (int i = s; i < b; ++i)
                x[i] = 0.0;
            for (int k = s; k < b; ++k) {
                cplx t = AT(T, j, k, tr, tc);
                if (t != 0.0)
                    axpy(b - k, t, Uw + (size_t)k * b + k, x + k);
            }
            for (int i = s; i < b; ++i)
                x[i] -= dotc(w, mrow, negB + (size_t)i * w);
            /* (N_tt - tau I) u = x, upper triangular, by back substitution */
            cplx tau = diag[j];
            for (int i = b - 1; i >= s; --i) {
                const cplx *nrow = N + (size_t)i * b;
                x[i] = divide(x[i] - dot(b - 1 - i, nrow + i + 1, x + i + 1), nrow[i] - tau);
            }
            cplx *urow = Uw + (size_t)j * b;
            for (int i = s; i < b; ++i)
                urow[i] = x[i];
            /* m <- m + u negB_t */
            for (int i = s; i < b; ++i)
                axpy(w, x[i], negB + (size_t)i * w, mrow);
        }
        cplx *bj = negB + (size_t)j * w;
        double nu = new_row(mrow, w, root, bj);
        Uw[(size_t)j * b + j] = nu / root;
        /* N_ji = negB_i . conj(negB_j), i > j */
        for (int i = s; i < b; ++i)
            N[(size_t)j * b + i] = dotc(w, negB + (size_t)i * w, bj);
    }
    for (int i = 0; i < b; ++i)
        for (int k = 0; k < b; ++k) {
            AT(U, i, k, ur, uc) = Uw[(size_t)i * b + k];
            AT(Ah, i, k, ar, ac) = -conj(N[(size_t)i * b + k]);
        }
    for (int i = 0; i < b; ++i)
        for (int c = 0; c < w; ++c)
            AT(Bh, i, c, br, bc) = -negB[(size_t)i * w + c];
    free(work);
    free(roots);
    return 0;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hammarling_leaf",
    "Compiled Hammarling kernels; called through ctypes (symbols lti_reduce_hammarling_leaf, "
    "lti_reduce_real_hammarling, lti_reduce_quasi_solve, lti_reduce_real_factors).",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hammarling_leaf(void)
{
    return PyModule_Create(&module);
}
