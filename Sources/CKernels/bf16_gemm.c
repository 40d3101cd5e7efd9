#include "CKernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// Matrix products with bfloat16 inputs and float32 accumulation on AVX512_BF16.
//
// The instruction doing the work is vdpbf16ps: each 32-bit lane of its two sources holds a
// *pair* of bf16 values, and it adds both products of the pair to a float32 lane of the
// accumulator (16 lanes × 2 products per instruction, twice the multiply-adds of a float32
// FMA). The operands are therefore packed as pairs along k: element (k = 2p, 2p + 1) of a row
// of op(A), or of a column of op(B), shares one 32-bit word, low half first. An odd k is padded
// with a zero partner.
//
// Blocking (GotoBLAS-style, one thread; the caller splits large products across cores):
//
//   for each block of COLUMN_BLOCK columns of C
//     for each block of PAIR_BLOCK pairs of k          (B block: ≤ 512 KB, stays in L2)
//       pack op(B) into panels of 32 columns: [pair][32] words
//       for each block of ROW_BLOCK rows of C
//         pack op(A): [row][PAIR_BLOCK] words          (≤ 72 KB, L2)
//         for each 32-column panel, for each 12-row tile
//           micro-kernel: 12 × 32 tile of C in 24 zmm accumulators; per pair it loads two zmm
//           of the B panel and broadcasts one word of each of the 12 rows of A (the rows sit at
//           a fixed stride, so every address is base + constant).
//
// The first k block writes alpha·AB + beta·C (C is not read when beta is 0), later blocks add
// alpha·AB. The conversion to bf16 is vcvtne2ps2bf16: round to nearest even, denormal inputs
// and results flushed to zero.

#if defined(__x86_64__) && defined(__clang__) && !defined(__APPLE__)

#include <immintrin.h>

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

enum {
    TILE_ROWS = 12,      // rows of A broadcast per micro-kernel step
    TILE_COLUMNS = 32,   // columns of B per panel: two zmm of 16 float32 lanes
    PAIR_BLOCK = 128,    // pairs of k per block (256 values of k): a 16 KB B panel fits L1
    ROW_BLOCK = 144,     // rows of A packed at once (12 tiles)
    COLUMN_BLOCK = 1024, // columns of B packed at once
};

int ssl_bf16_gemm_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

// Lane mask of the first `count` (clamped to 0...16) lanes.
static inline __mmask16 first_lanes(int64_t count) {
    if (count <= 0) return 0;
    if (count >= 16) return 0xFFFF;
    return (__mmask16)((1u << count) - 1);
}

// 32 consecutive floats (`count` ≤ 32 of them valid, the rest read as zero) → 16 words of
// consecutive bf16 pairs.
BF16_TARGET static inline __m512i pairs_from_run(const float *source, int64_t count) {
    __m512 low = _mm512_maskz_loadu_ps(first_lanes(count), source);
    __m512 high = _mm512_maskz_loadu_ps(first_lanes(count - 16), source + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}

// Two rows of 16 floats (`count` valid; `second` may be NULL for a zero row) → 16 words, word q
// holding (first[q], second[q]).
BF16_TARGET static inline __m512i pairs_from_rows(const float *first, const float *second,
                                                  int64_t count) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10,
                                                25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3,
                                                18, 2, 17, 1, 16, 0);
    __mmask16 mask = first_lanes(count);
    __m512 low = _mm512_maskz_loadu_ps(mask, first);
    __m512 high = second ? _mm512_maskz_loadu_ps(mask, second) : _mm512_setzero_ps();
    // Halves [low 0..15 | high 0..15] interleaved into (low q, high q) pairs.
    return _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(high, low));
}

// Transposes a 16 × 16 matrix of 32-bit words held as 16 rows.
BF16_TARGET static inline void transpose_words(__m512i rows[16]) {
    __m512i pairs[16], quads[16], octets[16];
    for (int i = 0; i < 16; i += 2) { // 2 × 2 blocks of words
        pairs[i] = _mm512_unpacklo_epi32(rows[i], rows[i + 1]);
        pairs[i + 1] = _mm512_unpackhi_epi32(rows[i], rows[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { // 4 × 4 blocks within each 128-bit lane
        for (int j = 0; j < 2; j++) {
            quads[i + 2 * j] = _mm512_unpacklo_epi64(pairs[i + j], pairs[i + j + 2]);
            quads[i + 2 * j + 1] = _mm512_unpackhi_epi64(pairs[i + j], pairs[i + j + 2]);
        }
    }
    for (int i = 0; i < 16; i += 8) { // 128-bit lanes 0, 2 and 1, 3 of row pairs four apart
        for (int j = 0; j < 4; j++) {
            octets[i + j] = _mm512_shuffle_i32x4(quads[i + j], quads[i + j + 4], 0x88);
            octets[i + j + 4] = _mm512_shuffle_i32x4(quads[i + j], quads[i + j + 4], 0xDD);
        }
    }
    for (int j = 0; j < 8; j++) { // whole lanes of rows eight apart
        rows[j] = _mm512_shuffle_i32x4(octets[j], octets[j + 8], 0x88);
        rows[j + 8] = _mm512_shuffle_i32x4(octets[j], octets[j + 8], 0xDD);
    }
}

// Packs op(B)[2·firstPair ..< 2·(firstPair + pairs), firstColumn ..< firstColumn + columns]
// into 32-column panels of [pair][32] words, each panel `pairs · 32` words long. Columns past
// `columns` in the last panel are zero.
BF16_TARGET static void pack_b(int transposeB, const float *b, int64_t ldb, int64_t k,
                               int64_t firstPair, int64_t pairs, int64_t firstColumn,
                               int64_t columns, uint32_t *packed) {
    int64_t firstK = 2 * firstPair;
    int64_t valuesOfK = k - firstK < 2 * pairs ? k - firstK : 2 * pairs;
    int64_t panelWords = pairs * TILE_COLUMNS;
    if (!transposeB) {
        // Rows 2p and 2p + 1 of B are contiguous along the columns: interleave them.
        for (int64_t pair = 0; pair < pairs; pair++) {
            const float *first = b + (firstK + 2 * pair) * ldb + firstColumn;
            const float *second = 2 * pair + 1 < valuesOfK ? first + ldb : NULL;
            for (int64_t column = 0; column < (columns + 31) / 32 * 32; column += 16) {
                uint32_t *target = packed + (column / TILE_COLUMNS) * panelWords +
                                   pair * TILE_COLUMNS + column % TILE_COLUMNS;
                __m512i words = pairs_from_rows(first + column, second ? second + column : NULL,
                                                columns - column);
                _mm512_storeu_si512(target, words);
            }
        }
        return;
    }
    // B is stored N×K: each column of op(B) is a contiguous run along k. Sixteen columns at a
    // time give sixteen runs of 16 words (pairs); transposed in registers, they are 16 pair
    // rows of 16 consecutive panel columns.
    if (columns % TILE_COLUMNS != 0) {
        memset(packed + (columns / TILE_COLUMNS) * panelWords, 0, panelWords * sizeof *packed);
    }
    for (int64_t column = 0; column < columns; column += 16) {
        int64_t columnCount = columns - column < 16 ? columns - column : 16;
        uint32_t *target = packed + (column / TILE_COLUMNS) * panelWords + column % TILE_COLUMNS;
        for (int64_t pair = 0; pair < pairs; pair += 16) {
            __m512i block[16];
            for (int64_t q = 0; q < 16; q++) {
                block[q] = q < columnCount
                    ? pairs_from_run(b + (firstColumn + column + q) * ldb + firstK + 2 * pair, valuesOfK - 2 * pair)
                    : _mm512_setzero_si512();
            }
            transpose_words(block);
            int64_t count = pairs - pair < 16 ? pairs - pair : 16;
            for (int64_t q = 0; q < count; q++) {
                _mm512_mask_storeu_epi32(target + (pair + q) * TILE_COLUMNS, first_lanes(columnCount), block[q]);
            }
        }
    }
}

// Packs op(A)[firstRow ..< firstRow + rows, 2·firstPair ..< 2·(firstPair + pairs)] as
// [row][PAIR_BLOCK] words; rows up to the next multiple of TILE_ROWS are zero.
BF16_TARGET static void pack_a(int transposeA, const float *a, int64_t lda, int64_t k,
                               int64_t firstPair, int64_t pairs, int64_t firstRow, int64_t rows,
                               uint32_t *packed) {
    int64_t firstK = 2 * firstPair;
    int64_t valuesOfK = k - firstK < 2 * pairs ? k - firstK : 2 * pairs;
    int64_t paddedRows = (rows + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS;
    memset(packed + rows * PAIR_BLOCK, 0, (paddedRows - rows) * PAIR_BLOCK * sizeof *packed);
    if (!transposeA) {
        // Each row of A is a contiguous run along k, and so is its packed row.
        for (int64_t row = 0; row < rows; row++) {
            const float *source = a + (firstRow + row) * lda + firstK;
            uint32_t *target = packed + row * PAIR_BLOCK;
            for (int64_t pair = 0; pair < pairs; pair += 16) {
                __m512i words = pairs_from_run(source + 2 * pair, valuesOfK - 2 * pair);
                _mm512_mask_storeu_epi32(target + pair, first_lanes(pairs - pair), words);
            }
        }
        return;
    }
    // A is stored K×M: rows 2p and 2p + 1 of the storage give pair p of 16 rows of op(A) at
    // once. Sixteen pairs at a time, transposed in registers, are 16 consecutive pairs of each
    // of the 16 rows.
    for (int64_t row = 0; row < rows; row += 16) {
        int64_t rowCount = rows - row < 16 ? rows - row : 16;
        for (int64_t pair = 0; pair < pairs; pair += 16) {
            int64_t pairCount = pairs - pair < 16 ? pairs - pair : 16;
            __m512i block[16];
            for (int64_t q = 0; q < 16; q++) {
                if (q < pairCount) {
                    const float *first = a + (firstK + 2 * (pair + q)) * lda + firstRow + row;
                    const float *second = 2 * (pair + q) + 1 < valuesOfK ? first + lda : NULL;
                    block[q] = pairs_from_rows(first, second, rowCount);
                } else {
                    block[q] = _mm512_setzero_si512();
                }
            }
            transpose_words(block);
            for (int64_t q = 0; q < rowCount; q++) {
                _mm512_mask_storeu_epi32(packed + (row + q) * PAIR_BLOCK + pair, first_lanes(pairCount), block[q]);
            }
        }
    }
}

// One TILE_ROWS × TILE_COLUMNS tile: c ← alpha·(a·b) + scaleOfC·c for its first `rows` rows
// and `columns` columns; c is not read when scaleOfC is 0.
BF16_TARGET static void multiply_tile(const uint32_t *a, const uint32_t *b, int64_t pairs,
                                      float *c, int64_t ldc, int64_t rows, int64_t columns,
                                      float alpha, float scaleOfC) {
    __m512 sums[TILE_ROWS][2];
    for (int row = 0; row < TILE_ROWS; row++) {
        sums[row][0] = _mm512_setzero_ps();
        sums[row][1] = _mm512_setzero_ps();
    }
    // The tile of C is read or written only after the products: fetching its lines now hides
    // their latency behind the products (C outgrows the caches when K is split into blocks).
    for (int64_t row = 0; row < rows; row++) {
        _mm_prefetch((const char *)(c + row * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + row * ldc + 16), _MM_HINT_T0);
    }
    for (int64_t pair = 0; pair < pairs; pair++) {
        __m512bh left = (__m512bh)_mm512_loadu_si512(b + pair * TILE_COLUMNS);
        __m512bh right = (__m512bh)_mm512_loadu_si512(b + pair * TILE_COLUMNS + 16);
#pragma clang loop unroll(full)
        for (int row = 0; row < TILE_ROWS; row++) {
            __m512bh word = (__m512bh)_mm512_set1_epi32((int)a[row * PAIR_BLOCK + pair]);
            sums[row][0] = _mm512_dpbf16_ps(sums[row][0], word, left);
            sums[row][1] = _mm512_dpbf16_ps(sums[row][1], word, right);
        }
    }
    __m512 alphaVector = _mm512_set1_ps(alpha);
    __m512 scaleVector = _mm512_set1_ps(scaleOfC);
    __mmask16 masks[2] = {first_lanes(columns), first_lanes(columns - 16)};
    // Unrolled with a guard, so the sums stay in registers.
#pragma clang loop unroll(full)
    for (int row = 0; row < TILE_ROWS; row++) {
        if (row >= rows) break;
        for (int half = 0; half < 2; half++) {
            float *target = c + row * ldc + 16 * half;
            __m512 product = alpha == 1 ? sums[row][half] : _mm512_mul_ps(sums[row][half], alphaVector);
            if (scaleOfC != 0) {
                __m512 old = _mm512_maskz_loadu_ps(masks[half], target);
                product = _mm512_fmadd_ps(old, scaleVector, product);
            }
            _mm512_mask_storeu_ps(target, masks[half], product);
        }
    }
}

// The calling thread's packing buffers (B, then A), kept for its next products: attention runs
// thousands of small products a step, and a fresh allocation each time costs the allocator's
// locks and, when the allocator returns the memory to the system, page faults on the next.
// Freed when the thread exits.
typedef struct {
    uint32_t *buffers[2];
    size_t capacities[2];
} PackingBuffers;

static pthread_key_t packingKey;
static pthread_once_t packingKeyOnce = PTHREAD_ONCE_INIT;

static void free_packing_buffers(void *value) {
    PackingBuffers *buffers = value;
    free(buffers->buffers[0]);
    free(buffers->buffers[1]);
    free(buffers);
}

static void make_packing_key(void) {
    if (pthread_key_create(&packingKey, free_packing_buffers) != 0) abort();
}

// Buffer `index` (0 for B, 1 for A) of the calling thread, at least `bytes` long, 64-byte aligned.
static uint32_t *packing_buffer(int index, size_t bytes) {
    pthread_once(&packingKeyOnce, make_packing_key);
    PackingBuffers *buffers = pthread_getspecific(packingKey);
    if (!buffers) {
        buffers = calloc(1, sizeof *buffers);
        if (!buffers || pthread_setspecific(packingKey, buffers) != 0) abort();
    }
    if (buffers->capacities[index] < bytes) {
        free(buffers->buffers[index]);
        size_t capacity = (bytes + 4095) / 4096 * 4096;
        buffers->buffers[index] = aligned_alloc(64, capacity);
        if (!buffers->buffers[index]) abort();
        buffers->capacities[index] = capacity;
    }
    return buffers->buffers[index];
}

BF16_TARGET void ssl_bf16_gemm(int transposeA, int transposeB, int64_t m, int64_t n, int64_t k,
                               float alpha, const float *a, int64_t lda, const float *b,
                               int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    int64_t totalPairs = (k + 1) / 2;
    int64_t columnBlock = n < COLUMN_BLOCK ? n : COLUMN_BLOCK;
    int64_t rowBlock = m < ROW_BLOCK ? m : ROW_BLOCK;
    int64_t pairBlock = totalPairs < PAIR_BLOCK ? totalPairs : PAIR_BLOCK;
    int64_t panels = (columnBlock + TILE_COLUMNS - 1) / TILE_COLUMNS;
    int64_t tileRows = (rowBlock + TILE_ROWS - 1) / TILE_ROWS * TILE_ROWS;
    uint32_t *packedB = packing_buffer(0, (size_t)(panels * TILE_COLUMNS * pairBlock * 4 + 64));
    uint32_t *packedA = packing_buffer(1, (size_t)(tileRows * PAIR_BLOCK * 4));

    for (int64_t column0 = 0; column0 < n; column0 += COLUMN_BLOCK) {
        int64_t columns = n - column0 < COLUMN_BLOCK ? n - column0 : COLUMN_BLOCK;
        int64_t pair0 = 0;
        do { // once with no pairs when k is 0, which leaves beta·C
            int64_t pairs = totalPairs - pair0 < PAIR_BLOCK ? totalPairs - pair0 : PAIR_BLOCK;
            float scaleOfC = pair0 == 0 ? beta : 1.0f;
            pack_b(transposeB, b, ldb, k, pair0, pairs, column0, columns, packedB);
            for (int64_t row0 = 0; row0 < m; row0 += ROW_BLOCK) {
                int64_t rows = m - row0 < ROW_BLOCK ? m - row0 : ROW_BLOCK;
                pack_a(transposeA, a, lda, k, pair0, pairs, row0, rows, packedA);
                for (int64_t panel = 0; panel * TILE_COLUMNS < columns; panel++) {
                    for (int64_t tile = 0; tile * TILE_ROWS < rows; tile++) {
                        int64_t row = tile * TILE_ROWS, column = panel * TILE_COLUMNS;
                        multiply_tile(packedA + row * PAIR_BLOCK, packedB + panel * pairs * TILE_COLUMNS,
                                      pairs, c + (row0 + row) * ldc + column0 + column, ldc,
                                      rows - row < TILE_ROWS ? rows - row : TILE_ROWS,
                                      columns - column, alpha, scaleOfC);
                    }
                }
            }
            pair0 += pairs;
        } while (pair0 < totalPairs);
    }
}

// MARK: - Instruction-rate probes

// Twenty independent accumulator chains, more than latency × throughput of either
// instruction, so the loops run at the instruction's issue rate.
enum { PROBE_CHAINS = 20 };

BF16_TARGET float ssl_bf16_dot_product_probe(int64_t iterations) {
    __m512 sums[PROBE_CHAINS];
    for (int chain = 0; chain < PROBE_CHAINS; chain++) sums[chain] = _mm512_setzero_ps();
    __m512bh ones = (__m512bh)_mm512_set1_epi32(0x3F803F80); // a pair of bf16 1.0
    for (int64_t iteration = 0; iteration < iterations; iteration++) {
#pragma clang loop unroll(full)
        for (int chain = 0; chain < PROBE_CHAINS; chain++) {
            sums[chain] = _mm512_dpbf16_ps(sums[chain], ones, ones);
        }
    }
    float total = 0;
    for (int chain = 0; chain < PROBE_CHAINS; chain++) total += _mm512_reduce_add_ps(sums[chain]);
    return total;
}

BF16_TARGET float ssl_fp32_fma_probe(int64_t iterations) {
    __m512 sums[PROBE_CHAINS];
    for (int chain = 0; chain < PROBE_CHAINS; chain++) sums[chain] = _mm512_setzero_ps();
    __m512 ones = _mm512_set1_ps(1);
    for (int64_t iteration = 0; iteration < iterations; iteration++) {
#pragma clang loop unroll(full)
        for (int chain = 0; chain < PROBE_CHAINS; chain++) {
            sums[chain] = _mm512_fmadd_ps(ones, ones, sums[chain]);
        }
    }
    float total = 0;
    for (int chain = 0; chain < PROBE_CHAINS; chain++) total += _mm512_reduce_add_ps(sums[chain]);
    return total;
}

BF16_TARGET void ssl_round_to_bf16(const float *source, uint16_t *destination, int64_t count) {
    for (int64_t start = 0; start < count; start += 16) {
        __mmask16 mask = first_lanes(count - start);
        __m256bh rounded = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, source + start));
        _mm256_mask_storeu_epi16(destination + start, mask, (__m256i)rounded);
    }
}

BF16_TARGET void ssl_widen_bf16(const uint16_t *source, float *destination, int64_t count) {
    for (int64_t start = 0; start < count; start += 16) {
        __mmask16 mask = first_lanes(count - start);
        __m512i words = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, source + start));
        _mm512_mask_storeu_ps(destination + start, mask, _mm512_castsi512_ps(_mm512_slli_epi32(words, 16)));
    }
}

#else

int ssl_bf16_gemm_supported(void) { return 0; }

void ssl_round_to_bf16(const float *source, uint16_t *destination, int64_t count) {
    (void)source, (void)destination, (void)count;
    abort();
}

void ssl_widen_bf16(const uint16_t *source, float *destination, int64_t count) {
    (void)source, (void)destination, (void)count;
    abort();
}

float ssl_bf16_dot_product_probe(int64_t iterations) {
    (void)iterations;
    abort();
}

float ssl_fp32_fma_probe(int64_t iterations) {
    (void)iterations;
    abort();
}


void ssl_bf16_gemm(int transposeA, int transposeB, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc) {
    (void)transposeA, (void)transposeB, (void)m, (void)n, (void)k, (void)alpha, (void)a,
        (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
    abort();
}

#endif
