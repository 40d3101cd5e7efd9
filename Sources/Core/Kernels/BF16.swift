import CKernels
import Foundation

/// Matrix products with bfloat16 inputs and single-precision accumulation, for processors with
/// AVX512_BF16.
///
/// The float32 operands are rounded to bfloat16 (8-bit significand, round to nearest even) as
/// they are packed; products and sums are float32, and so is C. On processors without
/// AVX512_BF16 every product runs as float32 ``BLAS/gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:parallel:)``
/// instead, after a one-time notice on standard error.
public enum BF16 {
    /// The ways to compute a product.
    public enum Kernel: String, CaseIterable, Sendable {
        /// The engine's own AVX512_BF16 kernel (`vdpbf16ps` on register-blocked tiles).
        case native
        /// Float32 ``BLAS``: exact inputs, the fallback without AVX512_BF16.
        case singlePrecision
    }

    /// Bfloat16 products of fewer multiply-adds (attention's per-head products) run in float32:
    /// they were no faster in bfloat16 (`ssl-bench bf16-gemm`, the attention shapes), and
    /// float32 keeps their accuracy.
    static let minimumMultiplyAdds = 1 << 18

    /// Whether this processor runs bfloat16 products (AVX512_BF16 with AVX-512 F, BW and VL).
    public static let isSupported = ssl_bf16_gemm_supported() != 0

    /// The default kernel: ``Kernel/native`` with AVX512_BF16, else the float32 fallback.
    /// (oneDNN 2.6's bfloat16 matmul primitive was measured too, at the same rate as the native
    /// kernel in `ssl-bench bf16-gemm`; BENCHMARKS.md. The engine uses oneDNN for float32
    /// products only, in ``BLAS``.)
    public static var preferredKernel: Kernel { isSupported ? .native : .singlePrecision }

    private static let fallbackNotice: Void = {
        FileHandle.standardError.write(
            Data("SwiftSSL: this processor lacks AVX512_BF16; bfloat16 products run in float32.\n".utf8))
    }()

    /// Whether bfloat16 products run as such here; when not, prints the one-time notice that
    /// they run in float32.
    static func runsOnThisProcessor() -> Bool {
        if !isSupported { fallbackNotice }
        return isSupported
    }

    /// C ← alpha · op(A) · op(B) + beta · C for row-major float32 matrices, where op(A) is M×K
    /// and op(B) is K×N, with A and B rounded to bfloat16 and the products summed in float32.
    ///
    /// - Parameters:
    ///   - transposeA: read A as its transpose (A is stored K×M).
    ///   - transposeB: read B as its transpose (B is stored N×K).
    ///   - lda, ldb, ldc: leading dimensions (row strides) of the stored matrices.
    ///   - kernel: the implementation; a bfloat16 kernel on a processor without AVX512_BF16
    ///     falls back to ``Kernel/singlePrecision``.
    ///   - parallel: split a large product across cores; pass `false` from code that already
    ///     runs on several threads.
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        kernel: Kernel = preferredKernel, parallel: Bool = true
    ) {
        guard kernel != .singlePrecision, runsOnThisProcessor() else {
            BLAS.gemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, parallel: parallel, precision: .float32)
            return
        }
        let product = MatrixProduct(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        product.run(parallel: parallel, kernel: multiply)
    }

    /// Runs `part` on the native kernel, on the calling thread. Only call it when ``isSupported``.
    static func multiply(_ part: MatrixProduct) {
        ssl_bf16_gemm(
            part.transposeA ? 1 : 0, part.transposeB ? 1 : 0, Int64(part.m), Int64(part.n), Int64(part.k),
            part.alpha, part.a, Int64(part.lda), part.b, Int64(part.ldb), part.beta, part.c, Int64(part.ldc))
    }

    /// The single-thread peak GFLOP/s of the two multiply-add instructions the products run
    /// on: vdpbf16ps (bfloat16 pairs into float32) and the 512-bit float32 FMA, each measured
    /// over `seconds` of independent instructions (the best of five tries); `nil` without
    /// AVX512_BF16. Bounds what any bfloat16 kernel can reach against float32 BLAS.
    public static func instructionPeaks(seconds: Double = 0.05) -> (bfloat16: Double, float32: Double)? {
        guard isSupported else { return nil }
        func peak(flopsPerIteration: Double, _ probe: (Int64) -> Float) -> Double {
            let iterations = Int64(seconds * 1e8)
            var best = 0.0
            for _ in 0..<5 {
                let start = MonotonicClock.seconds
                precondition(probe(iterations).isFinite)
                best = max(best, flopsPerIteration * Double(iterations) / (MonotonicClock.seconds - start) / 1e9)
            }
            return best
        }
        return (peak(flopsPerIteration: 20 * 64, ssl_bf16_dot_product_probe), peak(flopsPerIteration: 20 * 32, ssl_fp32_fma_probe))
    }

}
