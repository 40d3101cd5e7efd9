#include "CKernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__) && !defined(__APPLE__)
#define SSL_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SSL_MULTIVERSION
#endif

// Lets the compiler reorder the additions of a row reduction so the loop vectorises; results
// differ from sequential summation by a few ulps, well inside the reference tolerances.
#if defined(__clang__)
#define SSL_VECTORIZED_REDUCTIONS _Pragma("clang fp reassociate(on)")
#else
#define SSL_VECTORIZED_REDUCTIONS
#endif

// MARK: - Processor features

int ssl_cpu_vector_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        return 2;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

// MARK: - Scalar building blocks (inlined into the vectorised loops)

// exp(x) by Cody–Waite range reduction and a degree-6 polynomial (Cephes coefficients);
// relative error below 2e-7 over the float range; saturates outside [-88, 88].
static inline float exp_approx(float x) {
    x = fminf(fmaxf(x, -87.3365448f), 88.7228391f);
    float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// erf(x) as x·P(x²)/Q(x²), a rational minimax fit on [-4, 4] (degree 13 over degree 8; the
// coefficients of Eigen's `generic_fast_erf_float`), clamped outside, where |erf| rounds to 1.
// Absolute error below 4e-7 over the float range; no exp and no branch, so the loops that call it
// vectorise to a few multiply-adds and one division per element (about 3× faster than the
// exp-based form on AVX2).
static inline float erf_approx(float x) {
    x = fminf(fmaxf(x, -4.0f), 4.0f);
    float s = x * x;
    float numerator = -2.72614225801306e-10f;
    numerator = numerator * s + 2.77068142495902e-08f;
    numerator = numerator * s - 2.10102402082508e-06f;
    numerator = numerator * s - 5.69250639462346e-05f;
    numerator = numerator * s - 7.34990630326855e-04f;
    numerator = numerator * s - 2.95459980854025e-03f;
    numerator = numerator * s - 1.60960333262415e-02f;
    float denominator = -1.45660718464996e-05f;
    denominator = denominator * s - 2.13374055278905e-04f;
    denominator = denominator * s - 1.68282697438203e-03f;
    denominator = denominator * s - 7.37332916720468e-03f;
    denominator = denominator * s - 1.42647390514189e-02f;
    return x * numerator / denominator;
}

// MARK: - Element-wise

SSL_MULTIVERSION
void ssl_exp(const float *x, float *y, int64_t count) {
    for (int64_t i = 0; i < count; i++) y[i] = exp_approx(x[i]);
}

// GELU's Gaussian CDF, Φ(v), and density, φ(v).
static inline float gaussian_cdf(float v) { return 0.5f * (1.0f + erf_approx(v * 0.70710678118654752f)); }
static inline float gaussian_density(float v) { return 0.39894228040143268f * exp_approx(-0.5f * v * v); }

SSL_MULTIVERSION
void ssl_gelu_forward(const float *x, const float *bias, float *y, int64_t rows, int64_t columns) {
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * columns;
        float *out = y + r * columns;
        if (bias) {
            for (int64_t c = 0; c < columns; c++) {
                float v = in[c] + bias[c];
                out[c] = v * gaussian_cdf(v);
            }
        } else {
            for (int64_t c = 0; c < columns; c++) out[c] = in[c] * gaussian_cdf(in[c]);
        }
    }
}

SSL_MULTIVERSION
void ssl_gelu_backward(const float *x, const float *dy, float *dx, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        float v = x[i];
        dx[i] = dy[i] * (gaussian_cdf(v) + v * gaussian_density(v));
    }
}

SSL_MULTIVERSION
void ssl_gelu_forward_backward(const float *x, const float *bias, const float *dy, float *y, float *dx,
                               float *biasGradient, int64_t rows, int64_t columns) {
    for (int64_t r = 0; r < rows; r++) {
        int64_t offset = r * columns;
        for (int64_t c = 0; c < columns; c++) {
            float v = bias ? x[offset + c] + bias[c] : x[offset + c];
            float cdf = gaussian_cdf(v);
            y[offset + c] = v * cdf;
            dx[offset + c] = dy[offset + c] * (cdf + v * gaussian_density(v));
        }
        if (biasGradient) {
            for (int64_t c = 0; c < columns; c++) biasGradient[c] += dx[offset + c];
        }
    }
}

// MARK: - Linear layers' epilogue

SSL_MULTIVERSION
void ssl_add_bias_and_residual(float *y, const float *bias, const float *residual, int64_t rows, int64_t columns) {
    for (int64_t r = 0; r < rows; r++) {
        float *line = y + r * columns;
        const float *skip = residual + r * columns;
        if (bias) {
            for (int64_t c = 0; c < columns; c++) line[c] = skip[c] + (line[c] + bias[c]);
        } else {
            for (int64_t c = 0; c < columns; c++) line[c] = skip[c] + line[c];
        }
    }
}

// MARK: - Softmax

SSL_MULTIVERSION
void ssl_softmax_rows(const float *x, float *y, int64_t rows, int64_t columns, float scale) {
    SSL_VECTORIZED_REDUCTIONS
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * columns;
        float *out = y + r * columns;
        float maximum = -INFINITY;
        for (int64_t c = 0; c < columns; c++) maximum = fmaxf(maximum, in[c] * scale);
        float sum = 0;
        for (int64_t c = 0; c < columns; c++) {
            float e = exp_approx(in[c] * scale - maximum);
            out[c] = e;
            sum += e;
        }
        float inverse = 1.0f / sum;
        for (int64_t c = 0; c < columns; c++) out[c] *= inverse;
    }
}

SSL_MULTIVERSION
void ssl_log_softmax_rows(const float *x, float *y, int64_t rows, int64_t columns, float scale) {
    SSL_VECTORIZED_REDUCTIONS
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * columns;
        float *out = y + r * columns;
        float maximum = -INFINITY;
        for (int64_t c = 0; c < columns; c++) maximum = fmaxf(maximum, in[c] * scale);
        float sum = 0;
        for (int64_t c = 0; c < columns; c++) sum += exp_approx(in[c] * scale - maximum);
        float shift = maximum + logf(sum);
        for (int64_t c = 0; c < columns; c++) out[c] = in[c] * scale - shift;
    }
}

SSL_MULTIVERSION
void ssl_softmax_backward_rows(const float *y, const float *dy, float *dx, int64_t rows,
                               int64_t columns, float scale) {
    SSL_VECTORIZED_REDUCTIONS
    for (int64_t r = 0; r < rows; r++) {
        const float *p = y + r * columns;
        const float *g = dy + r * columns;
        float *out = dx + r * columns;
        float dot = 0;
        for (int64_t c = 0; c < columns; c++) dot += p[c] * g[c];
        for (int64_t c = 0; c < columns; c++) out[c] = scale * p[c] * (g[c] - dot);
    }
}

SSL_MULTIVERSION
void ssl_log_softmax_backward_rows(const float *logProbabilities, const float *dy, float *dx,
                                   int64_t rows, int64_t columns, float scale) {
    SSL_VECTORIZED_REDUCTIONS
    for (int64_t r = 0; r < rows; r++) {
        const float *l = logProbabilities + r * columns;
        const float *g = dy + r * columns;
        float *out = dx + r * columns;
        float total = 0;
        for (int64_t c = 0; c < columns; c++) total += g[c];
        for (int64_t c = 0; c < columns; c++) out[c] = scale * (g[c] - exp_approx(l[c]) * total);
    }
}

// MARK: - LayerNorm

SSL_MULTIVERSION
void ssl_layer_norm_forward(const float *x, const float *weight, const float *bias, float *y,
                            float *mean, float *reciprocalStd, int64_t rows, int64_t columns,
                            float epsilon) {
    SSL_VECTORIZED_REDUCTIONS
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * columns;
        float *out = y + r * columns;
        float sum = 0;
        for (int64_t c = 0; c < columns; c++) sum += in[c];
        float mu = sum / (float)columns;
        float squares = 0;
        for (int64_t c = 0; c < columns; c++) {
            float d = in[c] - mu;
            squares += d * d;
        }
        float rstd = 1.0f / sqrtf(squares / (float)columns + epsilon);
        if (mean) mean[r] = mu;
        if (reciprocalStd) reciprocalStd[r] = rstd;
        if (weight && bias) {
            for (int64_t c = 0; c < columns; c++) out[c] = (in[c] - mu) * rstd * weight[c] + bias[c];
        } else {
            for (int64_t c = 0; c < columns; c++) out[c] = (in[c] - mu) * rstd;
        }
    }
}

SSL_MULTIVERSION
void ssl_layer_norm_backward(const float *x, const float *weight, const float *mean,
                             const float *reciprocalStd, const float *dy, float *dx,
                             float *dWeight, float *dBias, int64_t rows, int64_t columns) {
    SSL_VECTORIZED_REDUCTIONS
    for (int64_t r = 0; r < rows; r++) {
        const float *in = x + r * columns;
        const float *g = dy + r * columns;
        float mu = mean[r], rstd = reciprocalStd[r];
        if (dWeight) {
            for (int64_t c = 0; c < columns; c++) dWeight[c] += g[c] * (in[c] - mu) * rstd;
        }
        if (dBias) {
            for (int64_t c = 0; c < columns; c++) dBias[c] += g[c];
        }
        if (!dx) continue;
        float *out = dx + r * columns;
        // With ĝ = g ⊙ weight and x̂ the normalised input:
        // dx = rstd * (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)).
        float sumG = 0, sumGX = 0;
        for (int64_t c = 0; c < columns; c++) {
            float gw = weight ? g[c] * weight[c] : g[c];
            sumG += gw;
            sumGX += gw * (in[c] - mu) * rstd;
        }
        float meanG = sumG / (float)columns, meanGX = sumGX / (float)columns;
        for (int64_t c = 0; c < columns; c++) {
            float gw = weight ? g[c] * weight[c] : g[c];
            out[c] = rstd * (gw - meanG - (in[c] - mu) * rstd * meanGX);
        }
    }
}

// MARK: - Reductions

SSL_MULTIVERSION
void ssl_add_column_sums(const float *x, float *sums, int64_t rows, int64_t columns) {
    for (int64_t r = 0; r < rows; r++) {
        const float *line = x + r * columns;
        for (int64_t c = 0; c < columns; c++) sums[c] += line[c];
    }
}

SSL_MULTIVERSION
void ssl_row_dot_products(const float *a, const float *b, float *dots, int64_t rows, int64_t columns) {
    SSL_VECTORIZED_REDUCTIONS
    for (int64_t r = 0; r < rows; r++) {
        const float *x = a + r * columns, *y = b + r * columns;
        float sum = 0;
        for (int64_t c = 0; c < columns; c++) sum += x[c] * y[c];
        dots[r] = sum;
    }
}

SSL_MULTIVERSION
double ssl_sum_of_squares(const float *x, int64_t count) {
    SSL_VECTORIZED_REDUCTIONS
    double sum = 0;
    for (int64_t i = 0; i < count; i++) {
        double value = x[i];
        sum += value * value;
    }
    return sum;
}

// MARK: - Optimiser updates

// Written in C so that the loops vectorise (`restrict`: Swift cannot know the arrays are
// distinct), with contraction off so that every element rounds as the scalar reference does.
// The square root is the instruction itself: `sqrtf` may set errno, which keeps a loop scalar.
#if defined(__has_builtin) && __has_builtin(__builtin_elementwise_sqrt)
#define SSL_SQUARE_ROOT(x) __builtin_elementwise_sqrt(x)
#else
#define SSL_SQUARE_ROOT(x) sqrtf(x)
#endif

SSL_MULTIVERSION
void ssl_adamw_update(float *restrict parameter, const float *restrict gradient,
                      float *restrict firstMoment, float *restrict secondMoment, int64_t count,
                      float decayFactor, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                      float correction2Root, float epsilon, float stepSize) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    for (int64_t i = 0; i < count; i++) {
        float g = gradient[i];
        float p = parameter[i] * decayFactor;
        float m = firstMoment[i] + oneMinusBeta1 * (g - firstMoment[i]);
        float v = secondMoment[i] * beta2 + oneMinusBeta2 * g * g;
        float denominator = SSL_SQUARE_ROOT(v) / correction2Root + epsilon;
        firstMoment[i] = m;
        secondMoment[i] = v;
        parameter[i] = p - stepSize * m / denominator;
    }
}

SSL_MULTIVERSION
void ssl_moving_average_update(float *restrict target, const float *restrict source, int64_t count,
                               float momentum, float complement) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    for (int64_t i = 0; i < count; i++) target[i] = target[i] * momentum + complement * source[i];
}
