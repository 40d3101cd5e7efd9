import CKernels

/// Where the per-head blocks of query, key, value and output live: each operand is a
/// `[batch, length, ·]` matrix whose head `h` occupies columns `offset + h·headDimension ..<`
/// within rows of `rowStride` floats.
struct AttentionLayout {
    var batch: Int, heads: Int, headDimension: Int
    var queryLength: Int, keyLength: Int
    var queryOffset: Int, queryRowStride: Int
    var keyOffset: Int, keyRowStride: Int
    var valueOffset: Int, valueRowStride: Int
    var outputRowStride: Int

    var scale: Float { 1 / Float(headDimension).squareRoot() }
    func query(_ b: Int, _ h: Int) -> Int { b * queryLength * queryRowStride + queryOffset + h * headDimension }
    func key(_ b: Int, _ h: Int) -> Int { b * keyLength * keyRowStride + keyOffset + h * headDimension }
    func value(_ b: Int, _ h: Int) -> Int { b * keyLength * valueRowStride + valueOffset + h * headDimension }
    func output(_ b: Int, _ h: Int) -> Int { b * queryLength * outputRowStride + h * headDimension }
    func probabilities(_ b: Int, _ h: Int) -> Int { (b * heads + h) * queryLength * keyLength }
}

/// Multi-head scaled dot-product attention with hand-written forward and backward passes, the
/// (sample, head) pairs split across cores.
///
/// On processors with AVX-512 and heads of a multiple of 16 features, each pair runs as one
/// fused kernel (`Sources/CKernels/attention.c`), which reads a head's operands into cache once
/// and runs the Q·Kᵀ products as fast as the others; elsewhere each pair runs as small BLAS
/// products and the row kernels between them.
enum AttentionKernel {
    /// Whether `layout`'s heads run on the fused kernels (unless `fused` is `false`, which tests
    /// use to compare the two paths).
    static func runsFused(_ layout: AttentionLayout, fused: Bool = true) -> Bool {
        fused && ssl_attention_supported(Int64(layout.headDimension)) != 0
    }

    static func forward(
        _ layout: AttentionLayout, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
        value: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        probabilities: UnsafeMutablePointer<Float>, fused: Bool = true
    ) {
        let l = layout
        if runsFused(l, fused: fused) {
            let scratchSize = Int(ssl_attention_scratch_count(Int64(l.queryLength), Int64(l.keyLength), Int64(l.headDimension)))
            let scratch = TensorStorage(uninitializedCount: scratchSize * Parallel.threadCount)
            let pointers = UncheckedSendable((query, key, value, output, probabilities, scratch.base))
            forEachHead(l) { b, h, chunk in
                let (q, k, v, o, p, scratchBase) = pointers.value
                ssl_attention_forward_head(
                    q + l.query(b, h), Int64(l.queryRowStride), k + l.key(b, h), Int64(l.keyRowStride),
                    v + l.value(b, h), Int64(l.valueRowStride), o + l.output(b, h), Int64(l.outputRowStride),
                    p + l.probabilities(b, h), Int64(l.queryLength), Int64(l.keyLength), Int64(l.headDimension),
                    l.scale, scratchBase + chunk * scratchSize)
            }
            return
        }
        let pointers = UncheckedSendable((query, key, value, output, probabilities))
        forEachHead(l) { b, h in
            let (q, k, v, o, p) = pointers.value
            let scores = p + l.probabilities(b, h)
            BLAS.gemm(
                transposeB: true, m: l.queryLength, n: l.keyLength, k: l.headDimension,
                a: q + l.query(b, h), lda: l.queryRowStride, b: k + l.key(b, h), ldb: l.keyRowStride,
                c: scores, ldc: l.keyLength, parallel: false)
            ssl_softmax_rows(scores, scores, Int64(l.queryLength), Int64(l.keyLength), l.scale)
            BLAS.gemm(
                m: l.queryLength, n: l.headDimension, k: l.keyLength,
                a: scores, lda: l.keyLength, b: v + l.value(b, h), ldb: l.valueRowStride,
                c: o + l.output(b, h), ldc: l.outputRowStride, parallel: false)
        }
    }

    /// Writes the gradients of query, key and value (same layouts as the inputs; regions outside
    /// the heads' columns are left untouched).
    static func backward(
        _ layout: AttentionLayout, query: UnsafePointer<Float>, key: UnsafePointer<Float>,
        value: UnsafePointer<Float>, probabilities: UnsafePointer<Float>,
        outputGradient: UnsafePointer<Float>, queryGradient: UnsafeMutablePointer<Float>,
        keyGradient: UnsafeMutablePointer<Float>, valueGradient: UnsafeMutablePointer<Float>, fused: Bool = true
    ) {
        let l = layout
        if runsFused(l, fused: fused) {
            let scratchSize = Int(ssl_attention_scratch_count(Int64(l.queryLength), Int64(l.keyLength), Int64(l.headDimension)))
            let scratch = TensorStorage(uninitializedCount: scratchSize * Parallel.threadCount)
            let pointers = UncheckedSendable(
                (query, key, value, probabilities, outputGradient, queryGradient, keyGradient, valueGradient, scratch.base))
            forEachHead(l) { b, h, chunk in
                let (q, k, v, p, dO, dQ, dK, dV, scratchBase) = pointers.value
                ssl_attention_backward_head(
                    q + l.query(b, h), Int64(l.queryRowStride), k + l.key(b, h), Int64(l.keyRowStride),
                    v + l.value(b, h), Int64(l.valueRowStride), p + l.probabilities(b, h), dO + l.output(b, h),
                    Int64(l.outputRowStride), dQ + l.query(b, h), dK + l.key(b, h), dV + l.value(b, h),
                    Int64(l.queryLength), Int64(l.keyLength), Int64(l.headDimension), l.scale,
                    scratchBase + chunk * scratchSize)
            }
            return
        }
        let scratchSize = l.queryLength * l.keyLength
        let scratch = TensorStorage(uninitializedCount: scratchSize * Parallel.threadCount)
        let pointers = UncheckedSendable(
            (query, key, value, probabilities, outputGradient, queryGradient, keyGradient, valueGradient, scratch.base))
        forEachHead(l) { b, h, chunk in
            let (q, k, v, p, dO, dQ, dK, dV, scratchBase) = pointers.value
            let dS = scratchBase + chunk * scratchSize
            let probabilities = p + l.probabilities(b, h)
            // dP = dO · Vᵀ, then dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)).
            BLAS.gemm(
                transposeB: true, m: l.queryLength, n: l.keyLength, k: l.headDimension,
                a: dO + l.output(b, h), lda: l.outputRowStride, b: v + l.value(b, h), ldb: l.valueRowStride,
                c: dS, ldc: l.keyLength, parallel: false)
            ssl_softmax_backward_rows(probabilities, dS, dS, Int64(l.queryLength), Int64(l.keyLength), l.scale)
            BLAS.gemm(
                m: l.queryLength, n: l.headDimension, k: l.keyLength,
                a: dS, lda: l.keyLength, b: k + l.key(b, h), ldb: l.keyRowStride,
                c: dQ + l.query(b, h), ldc: l.queryRowStride, parallel: false)
            BLAS.gemm(
                transposeA: true, m: l.keyLength, n: l.headDimension, k: l.queryLength,
                a: dS, lda: l.keyLength, b: q + l.query(b, h), ldb: l.queryRowStride,
                c: dK + l.key(b, h), ldc: l.keyRowStride, parallel: false)
            BLAS.gemm(
                transposeA: true, m: l.keyLength, n: l.headDimension, k: l.queryLength,
                a: probabilities, lda: l.keyLength, b: dO + l.output(b, h), ldb: l.outputRowStride,
                c: dV + l.value(b, h), ldc: l.valueRowStride, parallel: false)
        }
    }

    private static func forEachHead(_ l: AttentionLayout, _ body: (Int, Int) -> Void) {
        forEachHead(l) { b, h, _ in body(b, h) }
    }

    private static func forEachHead(_ l: AttentionLayout, _ body: (Int, Int, Int) -> Void) {
        let work = 4 * l.queryLength * l.keyLength * l.headDimension
        Parallel.forEachChunk(of: l.batch * l.heads, minimumChunk: max(1, 400_000 / max(work, 1))) { chunk, range in
            for pair in range { body(pair / l.heads, pair % l.heads, chunk) }
        }
    }
}

extension Tensor {
    /// Multi-head self-attention from the packed output of a `qkv` projection.
    ///
    /// - Parameters:
    ///   - qkv: `[batch, length, 3·dim]`, columns ordered query, key, value, and head `h` owning
    ///     columns `h·dim/heads ..< (h+1)·dim/heads` inside each (PyTorch's layout).
    ///   - heads: the number of heads.
    /// - Returns: `[batch, length, dim]` with heads concatenated, and the attention
    ///   probabilities `[batch, heads, length, length]` (constants, for inspection).
    public static func selfAttention(qkv: Tensor, heads: Int) -> (output: Tensor, probabilities: Tensor) {
        precondition(
            qkv.rank == 3 && qkv.shape[2] % (3 * heads) == 0,
            "selfAttention: qkv \(qkv.describe) must be [batch, length, 3·dim] with dim divisible by \(heads) heads.")
        let batch = qkv.shape[0], length = qkv.shape[1], dimension = qkv.shape[2] / 3
        let layout = AttentionLayout(
            batch: batch, heads: heads, headDimension: dimension / heads,
            queryLength: length, keyLength: length,
            queryOffset: 0, queryRowStride: 3 * dimension,
            keyOffset: dimension, keyRowStride: 3 * dimension,
            valueOffset: 2 * dimension, valueRowStride: 3 * dimension,
            outputRowStride: dimension)
        let output = Tensor(uninitializedShape: [batch, length, dimension])
        let probabilities = Tensor(uninitializedShape: [batch, heads, length, length])
        let base = qkv.storage.base
        AttentionKernel.forward(
            layout, query: base, key: base, value: base, output: output.storage.base,
            probabilities: probabilities.storage.base)
        guard Tensor.recordsGradient([qkv]) else { return (output, probabilities) }
        let savedQKV = SavedActivation(qkv), savedProbabilities = SavedActivation(probabilities)
        output.recording("selfAttention", inputs: [qkv]) { g in
            let qkv = savedQKV.tensor, probabilities = savedProbabilities.tensor
            let dqkv = Tensor(uninitializedShape: qkv.shape)
            let base = qkv.storage.base, d = dqkv.storage.base
            AttentionKernel.backward(
                layout, query: base, key: base, value: base, probabilities: probabilities.storage.base,
                outputGradient: g.storage.base, queryGradient: d, keyGradient: d, valueGradient: d)
            return [dqkv]
        }
        return (output, probabilities.detached())
    }

    /// Multi-head attention of `query` over `key`/`value`, each `[batch, length, dim]` (query
    /// and key lengths may differ), as class attention uses it.
    public static func attention(
        query: Tensor, key: Tensor, value: Tensor, heads: Int
    ) -> (output: Tensor, probabilities: Tensor) {
        precondition(
            query.rank == 3 && key.rank == 3 && key.shape == value.shape
                && query.shape[0] == key.shape[0] && query.shape[2] == key.shape[2]
                && query.shape[2] % heads == 0,
            "attention: query \(query.describe), key \(key.describe), value \(value.describe) "
                + "must be [batch, length, dim] with equal batch and dim divisible by \(heads) heads.")
        let batch = query.shape[0], dimension = query.shape[2]
        let layout = AttentionLayout(
            batch: batch, heads: heads, headDimension: dimension / heads,
            queryLength: query.shape[1], keyLength: key.shape[1],
            queryOffset: 0, queryRowStride: dimension,
            keyOffset: 0, keyRowStride: dimension,
            valueOffset: 0, valueRowStride: dimension,
            outputRowStride: dimension)
        let output = Tensor(uninitializedShape: query.shape)
        let probabilities = Tensor(uninitializedShape: [batch, heads, query.shape[1], key.shape[1]])
        AttentionKernel.forward(
            layout, query: query.storage.base, key: key.storage.base, value: value.storage.base,
            output: output.storage.base, probabilities: probabilities.storage.base)
        guard Tensor.recordsGradient([query, key, value]) else { return (output, probabilities) }
        let saved = (query: SavedActivation(query), key: SavedActivation(key), value: SavedActivation(value))
        let savedProbabilities = SavedActivation(probabilities)
        output.recording("attention", inputs: [query, key, value]) { g in
            let query = saved.query.tensor, key = saved.key.tensor, value = saved.value.tensor
            let probabilities = savedProbabilities.tensor
            let dq = Tensor(uninitializedShape: query.shape)
            let dk = Tensor(uninitializedShape: key.shape)
            let dv = Tensor(uninitializedShape: value.shape)
            AttentionKernel.backward(
                layout, query: query.storage.base, key: key.storage.base, value: value.storage.base,
                probabilities: probabilities.storage.base, outputGradient: g.storage.base,
                queryGradient: dq.storage.base, keyGradient: dk.storage.base, valueGradient: dv.storage.base)
            return [dq, dk, dv]
        }
        return (output, probabilities.detached())
    }
}
