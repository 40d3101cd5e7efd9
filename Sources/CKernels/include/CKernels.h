#ifndef SSL_CKERNELS_H
#define SSL_CKERNELS_H

#include <stdint.h>

// Hot element-wise and row-wise float32 kernels. Each kernel is compiled for several instruction
// sets (AVX-512, AVX2, baseline) and the best one is chosen when the library loads, so no
// target-specific compiler flag is needed.
//
// Row kernels process `rows` contiguous rows of `columns` floats each.

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction sets the processor offers, as OpenBLAS's kernel families need them:
/// 2 for AVX-512 (F, BW, VL, DQ), 1 for AVX2 with FMA, 0 for neither.
int ssl_cpu_vector_level(void);

/// y = exp(x), accurate to about 2 ulp.
void ssl_exp(const float *x, float *y, int64_t count);

/// y = v * Φ(v) with the exact (erf) form of the Gaussian CDF, for v = x + bias over row-major
/// rows × columns (bias of `columns`, or NULL for v = x).
void ssl_gelu_forward(const float *x, const float *bias, float *y, int64_t rows, int64_t columns);
/// dx = dy * d/dx[x Φ(x)].
void ssl_gelu_backward(const float *x, const float *dy, float *dx, int64_t count);
/// Both at once, sharing the Gaussian CDF: y = v * Φ(v) and dx = dy * d/dv[v Φ(v)] for
/// v = x + bias as in `ssl_gelu_forward`, with the values of the two kernels above; adds the
/// column sums of dx (the bias's gradient) to `biasGradient` when it is not NULL, as
/// `ssl_add_column_sums` adds them.
void ssl_gelu_forward_backward(const float *x, const float *bias, const float *dy, float *y, float *dx,
                               float *biasGradient, int64_t rows, int64_t columns);

/// y = residual + (y + bias) over row-major rows × columns (bias of `columns`, or NULL for
/// none): a linear layer's bias and skip connection added to its product in one pass, rounded
/// as PyTorch rounds `residual + linear(x)`.
void ssl_add_bias_and_residual(float *y, const float *bias, const float *residual, int64_t rows, int64_t columns);

/// Row-wise softmax of `scale * x` (max-subtracted). `y` may alias `x`.
void ssl_softmax_rows(const float *x, float *y, int64_t rows, int64_t columns, float scale);
/// Row-wise log-softmax of `scale * x` (max-subtracted). `y` may alias `x`.
void ssl_log_softmax_rows(const float *x, float *y, int64_t rows, int64_t columns, float scale);
/// dx = scale * y ⊙ (dy − Σ(dy ⊙ y)) per row, the backward pass of `ssl_softmax_rows`.
void ssl_softmax_backward_rows(const float *y, const float *dy, float *dx, int64_t rows,
                               int64_t columns, float scale);
/// dx = scale * (dy − softmax ⊙ Σ dy) per row, the backward pass of `ssl_log_softmax_rows`,
/// given its output `logProbabilities`.
void ssl_log_softmax_backward_rows(const float *logProbabilities, const float *dy, float *dx,
                                   int64_t rows, int64_t columns, float scale);

/// LayerNorm over each row: y = (x − μ) / sqrt(σ² + eps) * weight + bias (weight and bias may be
/// NULL). Writes per-row mean and reciprocal standard deviation for the backward pass.
void ssl_layer_norm_forward(const float *x, const float *weight, const float *bias, float *y,
                            float *mean, float *reciprocalStd, int64_t rows, int64_t columns,
                            float epsilon);
/// Backward pass of LayerNorm. Writes dx (if not NULL) and *adds* to dWeight and dBias (if not NULL).
void ssl_layer_norm_backward(const float *x, const float *weight, const float *mean,
                             const float *reciprocalStd, const float *dy, float *dx,
                             float *dWeight, float *dBias, int64_t rows, int64_t columns);

/// sums[c] += Σ_r x[r, c]: the gradient of a bias broadcast over rows.
void ssl_add_column_sums(const float *x, float *sums, int64_t rows, int64_t columns);

/// dots[r] = Σ_c a[r, c] · b[r, c] for row-major rows × columns matrices (a and b may be the
/// same matrix), summed in float32 in a vectorised order.
void ssl_row_dot_products(const float *a, const float *b, float *dots, int64_t rows, int64_t columns);
/// Σ x² over `count` elements, accumulated in double precision in a vectorised order.
double ssl_sum_of_squares(const float *x, int64_t count);
/// One AdamW update of `count` elements in place, in PyTorch's single-tensor order and rounding
/// (no fused multiply-adds): p *= decayFactor; m += (1 − β1)(g − m); v = v·β2 + (1 − β2)·g·g;
/// p −= stepSize · m / (sqrt(v) / correction2Root + epsilon). The arrays must not overlap.
void ssl_adamw_update(float *parameter, const float *gradient, float *firstMoment, float *secondMoment,
                      int64_t count, float decayFactor, float oneMinusBeta1, float beta2,
                      float oneMinusBeta2, float correction2Root, float epsilon, float stepSize);
/// target = target · momentum + complement · source, element by element (no fused
/// multiply-adds), for a teacher's exponential moving average. The arrays must not overlap.
void ssl_moving_average_update(float *target, const float *source, int64_t count, float momentum,
                               float complement);

/// 1 when the processor has AVX512_BF16 (with AVX-512 F, BW, VL), which `ssl_bf16_gemm` needs.
int ssl_bf16_gemm_supported(void);

/// C ← alpha · op(A) · op(B) + beta · C for row-major float32 matrices, op(A) M×K and op(B) K×N,
/// with A and B rounded to bfloat16 (nearest even) and the products accumulated in float32.
/// One thread; C is not read when beta is 0. Only call it when `ssl_bf16_gemm_supported()`.
void ssl_bf16_gemm(int transposeA, int transposeB, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc);


/// Rounds `count` floats to bfloat16 as `ssl_bf16_gemm` rounds its operands (vcvtneps2bf16: to
/// nearest even, denormals flushed to zero). Only call it when `ssl_bf16_gemm_supported()`.
void ssl_round_to_bf16(const float *source, uint16_t *destination, int64_t count);

/// Widens `count` bfloat16 values to float32 (exactly). Only call it when
/// `ssl_bf16_gemm_supported()`.
void ssl_widen_bf16(const uint16_t *source, float *destination, int64_t count);

/// Runs `iterations` × 20 independent vdpbf16ps (64 flops each) on one thread, for measuring
/// the instruction's peak rate. Only call it when `ssl_bf16_gemm_supported()`.
float ssl_bf16_dot_product_probe(int64_t iterations);
/// Runs `iterations` × 20 independent 512-bit float32 FMAs (32 flops each) on one thread, the
/// float32 counterpart of `ssl_bf16_dot_product_probe`.
float ssl_fp32_fma_probe(int64_t iterations);

/// 1 when the fused attention kernels below run on this processor (AVX-512 F) for heads of
/// `headDimension` features (a positive multiple of 16).
int ssl_attention_supported(int64_t headDimension);
/// The floats of scratch memory one call of either attention kernel needs.
int64_t ssl_attention_scratch_count(int64_t queryLength, int64_t keyLength, int64_t headDimension);
/// One (sample, head) of scaled dot-product attention: `probabilities` (queryLength × keyLength,
/// contiguous) = softmax(scale · Q·Kᵀ) by rows, `output` = probabilities · V. Q, K, V and the
/// output are headDimension columns of rows `…Stride` floats apart. Only call it when
/// `ssl_attention_supported(headDimension)`.
void ssl_attention_forward_head(const float *query, int64_t queryStride, const float *key, int64_t keyStride,
                                const float *value, int64_t valueStride, float *output, int64_t outputStride,
                                float *probabilities, int64_t queryLength, int64_t keyLength,
                                int64_t headDimension, float scale, float *scratch);
/// The backward pass of `ssl_attention_forward_head` for the output gradient dO: writes dQ, dK
/// and dV (the same layouts as Q, K, V; their other columns untouched). Only call it when
/// `ssl_attention_supported(headDimension)`.
void ssl_attention_backward_head(const float *query, int64_t queryStride, const float *key, int64_t keyStride,
                                 const float *value, int64_t valueStride, const float *probabilities,
                                 const float *outputGradient, int64_t outputStride, float *queryGradient,
                                 float *keyGradient, float *valueGradient, int64_t queryLength,
                                 int64_t keyLength, int64_t headDimension, float scale, float *scratch);

/// A chunk of a parallel region: `function(context, chunk)`.
typedef void (*ssl_chunk_function)(void *context, int64_t chunk);

/// Runs `function(context, chunk)` for every chunk in `0 ..< chunks` on up to `threads` threads:
/// the caller and `threads − 1` persistent workers (started by the first call), which spin
/// briefly between regions so the next one starts without waking them. A region started while
/// another runs (nested, or from another thread) runs on the calling thread alone.
void ssl_parallel_run(int64_t chunks, int threads, ssl_chunk_function function, void *context);

#ifdef __cplusplus
}
#endif

#endif
