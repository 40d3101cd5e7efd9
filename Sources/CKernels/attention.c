#include "CKernels.h"

// Scaled dot-product attention of one (sample, head) pair on AVX-512, forward and backward.
//
// Every product of attention is written as one kind of loop: C[m × n] = Σ_depth A(row, depth) ·
// B(depth)[columns], where each A element is broadcast and B's depth-th row is read as 16-float
// vectors. A tile keeps 6 rows × 64 columns of C in 24 zmm accumulators, so each depth step issues
// 24 multiply-adds against 4 loads and 6 broadcasts. A's two strides let the same loop read A
// transposed (dK = dSᵀ·Q, dV = Pᵀ·dO); products against a transposed operand (S = Q·Kᵀ,
// dP = dO·Vᵀ) first pack that operand's transpose, 16 × 16 blocks at a time in registers.
//
// Against BLAS per product (OpenBLAS 0.3.21's small-matrix kernels, one call per product): the
// operands of a head are read once into L1 and the Q·Kᵀ products, which OpenBLAS runs at about
// two thirds of its other products' rate at 50 × 50 × 64, run at the rate of the others. Results
// differ from BLAS's by the order of the sums only.

#if defined(__x86_64__) && defined(__clang__) && !defined(__APPLE__)

#include <immintrin.h>
#include <math.h>

#define ATTENTION_TARGET __attribute__((target("avx512f")))

enum {
    TILE_ROWS = 6,    // rows of C per tile
    TILE_VECTORS = 4, // 16-float vectors of C per tile row
    LANES = 16,
};

int ssl_attention_supported(int64_t headDimension) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && headDimension > 0 && headDimension % LANES == 0;
}

static inline int64_t padded(int64_t count) { return (count + LANES - 1) / LANES * LANES; }

int64_t ssl_attention_scratch_count(int64_t queryLength, int64_t keyLength, int64_t headDimension) {
    // Forward: the packed Kᵀ. Backward: the packed Vᵀ and dS.
    return headDimension * padded(keyLength) + queryLength * keyLength;
}

static inline __mmask16 first_lanes(int64_t count) {
    if (count <= 0) return 0;
    if (count >= LANES) return 0xFFFF;
    return (__mmask16)((1u << count) - 1);
}

// exp(x) of 16 lanes as `exp_approx` in kernels.c computes it: Cody–Waite range reduction and a
// degree-6 polynomial (Cephes coefficients), relative error below 2e-7, saturating outside
// [-87.3, 88.7].
ATTENTION_TARGET static inline __m512 exp_lanes(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3365448f)), _mm512_set1_ps(88.7228391f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i exponent = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(exponent));
}

// Each row of `rows` × `columns` (contiguous) replaced by the softmax of scale · row. Written with
// masked vectors: a compiler's vectorised loop of 64 floats a step would leave a 50-float row, the
// main job's, wholly to its scalar remainder.
ATTENTION_TARGET static void softmax_rows(float *x, int64_t rows, int64_t columns, float scale) {
    __m512 scales = _mm512_set1_ps(scale);
    for (int64_t row = 0; row < rows; row++) {
        float *line = x + row * columns;
        __m512 maximum = _mm512_set1_ps(-INFINITY);
        for (int64_t c = 0; c < columns; c += LANES) {
            __mmask16 mask = first_lanes(columns - c);
            __m512 value = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, line + c), scales);
            maximum = _mm512_mask_max_ps(maximum, mask, maximum, value);
        }
        __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(maximum));
        __m512 sum = _mm512_setzero_ps();
        for (int64_t c = 0; c < columns; c += LANES) {
            __mmask16 mask = first_lanes(columns - c);
            __m512 e = exp_lanes(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(mask, line + c), scales, shift));
            sum = _mm512_mask_add_ps(sum, mask, sum, e);
            _mm512_mask_storeu_ps(line + c, mask, e);
        }
        __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int64_t c = 0; c < columns; c += LANES) {
            __mmask16 mask = first_lanes(columns - c);
            _mm512_mask_storeu_ps(line + c, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, line + c), inverse));
        }
    }
}

// dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)) in place of dP, by rows (the backward pass of
// softmax_rows), with masked vectors for the same reason.
ATTENTION_TARGET static void softmax_backward_rows(const float *probabilities, float *gradient, int64_t rows,
                                                   int64_t columns, float scale) {
    __m512 scales = _mm512_set1_ps(scale);
    for (int64_t row = 0; row < rows; row++) {
        const float *p = probabilities + row * columns;
        float *g = gradient + row * columns;
        __m512 dot = _mm512_setzero_ps();
        for (int64_t c = 0; c < columns; c += LANES) {
            __mmask16 mask = first_lanes(columns - c);
            dot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, p + c), _mm512_maskz_loadu_ps(mask, g + c), dot);
        }
        __m512 total = _mm512_set1_ps(_mm512_reduce_add_ps(dot));
        for (int64_t c = 0; c < columns; c += LANES) {
            __mmask16 mask = first_lanes(columns - c);
            __m512 difference = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, g + c), total);
            __m512 result = _mm512_mul_ps(_mm512_mul_ps(scales, _mm512_maskz_loadu_ps(mask, p + c)), difference);
            _mm512_mask_storeu_ps(g + c, mask, result);
        }
    }
}

// One tile: C[rows × 16·vectors columns] = Σ_depth A(r, depth) · B(depth)[columns], with the last
// vector masked to `lastMask`. `rows` and `vectors` are constants at each call site (see
// broadcast_product), so the accumulators stay in registers.
ATTENTION_TARGET static inline __attribute__((always_inline)) void
tile(int rows, int vectors, __mmask16 lastMask, int64_t depth, const float *a, int64_t aRowStride,
     int64_t aDepthStride, const float *b, int64_t bDepthStride, float *c, int64_t cRowStride) {
    __m512 accumulator[TILE_ROWS][TILE_VECTORS];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vectors; v++) accumulator[r][v] = _mm512_setzero_ps();
    for (int64_t d = 0; d < depth; d++) {
        const float *bRow = b + d * bDepthStride;
        __m512 bVector[TILE_VECTORS];
        for (int v = 0; v < vectors; v++) {
            bVector[v] = v == vectors - 1 ? _mm512_maskz_loadu_ps(lastMask, bRow + v * LANES)
                                          : _mm512_loadu_ps(bRow + v * LANES);
        }
        const float *aColumn = a + d * aDepthStride;
        for (int r = 0; r < rows; r++) {
            __m512 broadcast = _mm512_set1_ps(aColumn[r * aRowStride]);
            for (int v = 0; v < vectors; v++) accumulator[r][v] = _mm512_fmadd_ps(broadcast, bVector[v], accumulator[r][v]);
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < vectors; v++) {
            float *destination = c + r * cRowStride + v * LANES;
            if (v == vectors - 1) {
                _mm512_mask_storeu_ps(destination, lastMask, accumulator[r][v]);
            } else {
                _mm512_storeu_ps(destination, accumulator[r][v]);
            }
        }
    }
}

#define TILE_CASE(ROWS, VECTORS)                                                                   \
    tile(ROWS, VECTORS, lastMask, depth, aTile, aRowStride, aDepthStride, bTile, bDepthStride,     \
         cTile, cRowStride)

#define TILE_ROWS_SWITCH(VECTORS)                                                                  \
    switch (rows) {                                                                                \
    case 6: TILE_CASE(6, VECTORS); break;                                                          \
    case 5: TILE_CASE(5, VECTORS); break;                                                          \
    case 4: TILE_CASE(4, VECTORS); break;                                                          \
    case 3: TILE_CASE(3, VECTORS); break;                                                          \
    case 2: TILE_CASE(2, VECTORS); break;                                                          \
    default: TILE_CASE(1, VECTORS); break;                                                         \
    }

// C[m × n] = Σ_{d < depth} A(r, d) · B(d)[0 ..< n], A(r, d) = a[r·aRowStride + d·aDepthStride],
// B(d) = b + d·bDepthStride (n floats read, the rest of a vector masked), C rows cRowStride apart.
ATTENTION_TARGET static void broadcast_product(int64_t m, int64_t n, int64_t depth, const float *a,
                                               int64_t aRowStride, int64_t aDepthStride,
                                               const float *b, int64_t bDepthStride, float *c,
                                               int64_t cRowStride) {
    for (int64_t column = 0; column < n; column += TILE_VECTORS * LANES) {
        int64_t width = n - column < TILE_VECTORS * LANES ? n - column : TILE_VECTORS * LANES;
        int vectors = (int)((width + LANES - 1) / LANES);
        __mmask16 lastMask = first_lanes(width - (vectors - 1) * LANES);
        const float *bTile = b + column;
        for (int64_t row = 0; row < m; row += TILE_ROWS) {
            int rows = (int)(m - row < TILE_ROWS ? m - row : TILE_ROWS);
            const float *aTile = a + row * aRowStride;
            float *cTile = c + row * cRowStride + column;
            switch (vectors) {
            case 4: TILE_ROWS_SWITCH(4); break;
            case 3: TILE_ROWS_SWITCH(3); break;
            case 2: TILE_ROWS_SWITCH(2); break;
            default: TILE_ROWS_SWITCH(1); break;
            }
        }
    }
}

// destination[d · destinationStride + j] = source[j · sourceStride + d] for j < rows, d < columns
// (a multiple of 16), and 0 for j in rows ..< padded(rows): the transpose of a rows × columns
// block, its rows padded to whole vectors.
ATTENTION_TARGET static void pack_transposed(const float *source, int64_t sourceStride, int64_t rows,
                                             int64_t columns, float *destination,
                                             int64_t destinationStride) {
    for (int64_t rowBlock = 0; rowBlock < rows; rowBlock += LANES) {
        for (int64_t columnBlock = 0; columnBlock < columns; columnBlock += LANES) {
            __m512 r[LANES];
            for (int i = 0; i < LANES; i++) {
                r[i] = rowBlock + i < rows
                           ? _mm512_loadu_ps(source + (rowBlock + i) * sourceStride + columnBlock)
                           : _mm512_setzero_ps();
            }
            // 16 × 16 transpose in four rounds: 32-bit, 64-bit and two 128-bit interleaves.
            __m512 t[LANES];
            for (int i = 0; i < LANES; i += 2) {
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < LANES; i += 4) {
                r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
                r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
                r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
                r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
            }
            for (int i = 0; i < 4; i++) {
                t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
                t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
                t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
                t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
            }
            for (int i = 0; i < 4; i++) {
                r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
                r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
                r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
                r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
            }
            // Register i now holds column columnBlock + i of the block.
            for (int i = 0; i < LANES; i++) {
                _mm512_storeu_ps(destination + (columnBlock + i) * destinationStride + rowBlock, r[i]);
            }
        }
    }
}

ATTENTION_TARGET void ssl_attention_forward_head(const float *query, int64_t queryStride, const float *key,
                                                 int64_t keyStride, const float *value, int64_t valueStride,
                                                 float *output, int64_t outputStride, float *probabilities,
                                                 int64_t queryLength, int64_t keyLength,
                                                 int64_t headDimension, float scale, float *scratch) {
    int64_t keys = padded(keyLength);
    float *keyTransposed = scratch;
    pack_transposed(key, keyStride, keyLength, headDimension, keyTransposed, keys);
    // S = Q·Kᵀ, then each row's softmax of scale·S in place: P.
    broadcast_product(queryLength, keyLength, headDimension, query, queryStride, 1, keyTransposed, keys,
                      probabilities, keyLength);
    softmax_rows(probabilities, queryLength, keyLength, scale);
    // O = P·V.
    broadcast_product(queryLength, headDimension, keyLength, probabilities, keyLength, 1, value, valueStride,
                      output, outputStride);
}

ATTENTION_TARGET void ssl_attention_backward_head(
    const float *query, int64_t queryStride, const float *key, int64_t keyStride, const float *value,
    int64_t valueStride, const float *probabilities, const float *outputGradient, int64_t outputStride,
    float *queryGradient, float *keyGradient, float *valueGradient, int64_t queryLength, int64_t keyLength,
    int64_t headDimension, float scale, float *scratch) {
    int64_t keys = padded(keyLength);
    float *valueTransposed = scratch;
    float *scoreGradient = scratch + headDimension * keys;
    pack_transposed(value, valueStride, keyLength, headDimension, valueTransposed, keys);
    // dP = dO·Vᵀ, then dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)).
    broadcast_product(queryLength, keyLength, headDimension, outputGradient, outputStride, 1, valueTransposed,
                      keys, scoreGradient, keyLength);
    softmax_backward_rows(probabilities, scoreGradient, queryLength, keyLength, scale);
    // dQ = dS·K, dK = dSᵀ·Q, dV = Pᵀ·dO.
    broadcast_product(queryLength, headDimension, keyLength, scoreGradient, keyLength, 1, key, keyStride,
                      queryGradient, queryStride);
    broadcast_product(keyLength, headDimension, queryLength, scoreGradient, 1, keyLength, query, queryStride,
                      keyGradient, keyStride);
    broadcast_product(keyLength, headDimension, queryLength, probabilities, 1, keyLength, outputGradient,
                      outputStride, valueGradient, valueStride);
}

#else

int ssl_attention_supported(int64_t headDimension) {
    (void)headDimension;
    return 0;
}

int64_t ssl_attention_scratch_count(int64_t queryLength, int64_t keyLength, int64_t headDimension) {
    return headDimension * ((keyLength + 15) / 16 * 16) + queryLength * keyLength;
}

void ssl_attention_forward_head(const float *query, int64_t queryStride, const float *key, int64_t keyStride,
                                const float *value, int64_t valueStride, float *output, int64_t outputStride,
                                float *probabilities, int64_t queryLength, int64_t keyLength,
                                int64_t headDimension, float scale, float *scratch) {
    (void)query, (void)queryStride, (void)key, (void)keyStride, (void)value, (void)valueStride;
    (void)output, (void)outputStride, (void)probabilities, (void)queryLength, (void)keyLength;
    (void)headDimension, (void)scale, (void)scratch;
    __builtin_trap();
}

void ssl_attention_backward_head(const float *query, int64_t queryStride, const float *key, int64_t keyStride,
                                 const float *value, int64_t valueStride, const float *probabilities,
                                 const float *outputGradient, int64_t outputStride, float *queryGradient,
                                 float *keyGradient, float *valueGradient, int64_t queryLength,
                                 int64_t keyLength, int64_t headDimension, float scale, float *scratch) {
    (void)query, (void)queryStride, (void)key, (void)keyStride, (void)value, (void)valueStride;
    (void)probabilities, (void)outputGradient, (void)outputStride, (void)queryGradient, (void)keyGradient;
    (void)valueGradient, (void)queryLength, (void)keyLength, (void)headDimension, (void)scale, (void)scratch;
    __builtin_trap();
}

#endif
