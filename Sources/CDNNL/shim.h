#ifndef SSL_CDNNL_SHIM_H
#define SSL_CDNNL_SHIM_H

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>

// Debian's oneDNN runs on OpenMP (libgomp). The engine splits products across cores itself, so
// each calling thread asks for a team of one before calling oneDNN.
void omp_set_num_threads(int count);

/// The CPU engine every product runs on; NULL when oneDNN cannot create it.
static inline dnnl_engine_t ssl_dnnl_cpu_engine(void) {
    dnnl_engine_t engine = NULL;
    return dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success ? engine : NULL;
}

/// C ← alpha·op(A)·op(B) + beta·C through oneDNN's matmul primitive, for row-major bfloat16 A
/// and B and float32 C (float32 accumulation), on the calling thread only. C is not read when
/// beta is 0. (oneDNN 2.6 ignores the bf16 math mode for float32 inputs, hence bfloat16 ones.)
/// The primitive is created for every call; oneDNN's primitive cache makes repeated shapes
/// cheap.
static inline dnnl_status_t ssl_dnnl_bf16_matmul(dnnl_engine_t engine, int transposeA,
                                                 int transposeB, int64_t m, int64_t n, int64_t k,
                                                 float alpha, const uint16_t *a, int64_t lda,
                                                 const uint16_t *b, int64_t ldb, float beta,
                                                 float *c, int64_t ldc) {
    omp_set_num_threads(1);
    dnnl_status_t status;
    dnnl_primitive_attr_t attributes = NULL;
    dnnl_post_ops_t postOperations = NULL;
    dnnl_primitive_desc_t descriptor = NULL;
    dnnl_primitive_t primitive = NULL;
    dnnl_memory_t memories[3] = {NULL, NULL, NULL};
    dnnl_stream_t stream = NULL;
#define SSL_DNNL_TRY(call)                                                                         \
    do {                                                                                           \
        status = (call);                                                                           \
        if (status != dnnl_success) goto cleanup;                                                  \
    } while (0)

    // A transposed operand is the same matrix read with swapped strides.
    dnnl_memory_desc_t left, right, result;
    dnnl_dims_t leftDimensions = {m, k}, rightDimensions = {k, n}, resultDimensions = {m, n};
    dnnl_dims_t leftStrides = {transposeA ? 1 : lda, transposeA ? lda : 1};
    dnnl_dims_t rightStrides = {transposeB ? 1 : ldb, transposeB ? ldb : 1};
    dnnl_dims_t resultStrides = {ldc, 1};
    SSL_DNNL_TRY(dnnl_memory_desc_init_by_strides(&left, 2, leftDimensions, dnnl_bf16, leftStrides));
    SSL_DNNL_TRY(dnnl_memory_desc_init_by_strides(&right, 2, rightDimensions, dnnl_bf16, rightStrides));
    SSL_DNNL_TRY(dnnl_memory_desc_init_by_strides(&result, 2, resultDimensions, dnnl_f32, resultStrides));
    dnnl_matmul_desc_t operation;
    SSL_DNNL_TRY(dnnl_matmul_desc_init(&operation, &left, &right, NULL, &result));

    SSL_DNNL_TRY(dnnl_primitive_attr_create(&attributes));
    if (alpha != 1) SSL_DNNL_TRY(dnnl_primitive_attr_set_output_scales(attributes, 1, 0, &alpha));
    if (beta != 0) {
        SSL_DNNL_TRY(dnnl_post_ops_create(&postOperations));
        SSL_DNNL_TRY(dnnl_post_ops_append_sum(postOperations, beta));
        SSL_DNNL_TRY(dnnl_primitive_attr_set_post_ops(attributes, postOperations));
    }
    SSL_DNNL_TRY(dnnl_primitive_desc_create(&descriptor, &operation, attributes, engine, NULL));
    SSL_DNNL_TRY(dnnl_primitive_create(&primitive, descriptor));

    SSL_DNNL_TRY(dnnl_memory_create(&memories[0], &left, engine, (void *)a));
    SSL_DNNL_TRY(dnnl_memory_create(&memories[1], &right, engine, (void *)b));
    SSL_DNNL_TRY(dnnl_memory_create(&memories[2], &result, engine, c));
    SSL_DNNL_TRY(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    dnnl_exec_arg_t arguments[3] = {
        {DNNL_ARG_SRC, memories[0]}, {DNNL_ARG_WEIGHTS, memories[1]}, {DNNL_ARG_DST, memories[2]}};
    SSL_DNNL_TRY(dnnl_primitive_execute(primitive, stream, 3, arguments));
    SSL_DNNL_TRY(dnnl_stream_wait(stream));
#undef SSL_DNNL_TRY

cleanup:
    if (stream) dnnl_stream_destroy(stream);
    for (int index = 0; index < 3; index++) {
        if (memories[index]) dnnl_memory_destroy(memories[index]);
    }
    if (primitive) dnnl_primitive_destroy(primitive);
    if (descriptor) dnnl_primitive_desc_destroy(descriptor);
    if (postOperations) dnnl_post_ops_destroy(postOperations);
    if (attributes) dnnl_primitive_attr_destroy(attributes);
    return status;
}

#endif
