import COpenBLAS

/// Single-precision matrix products through OpenBLAS.
public enum BLAS {
    /// C ← alpha · op(A) · op(B) + beta · C for row-major matrices, where op(A) is M×K and
    /// op(B) is K×N.
    ///
    /// - Parameters:
    ///   - transposeA: read A as its transpose (A is stored K×M).
    ///   - transposeB: read B as its transpose (B is stored N×K).
    ///   - lda, ldb, ldc: leading dimensions (row strides) of the stored matrices.
    @inlinable
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for row in 0..<m {
                let line = c + row * ldc
                if beta == 0 {
                    line.update(repeating: 0, count: n)
                } else {
                    for column in 0..<n { line[column] *= beta }
                }
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The number of threads OpenBLAS uses for one product.
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }

    /// Runs `body` with OpenBLAS on one thread, for code that splits many small products across
    /// cores itself (the two kinds of threading must never nest).
    public static func withSingleThread<Result>(_ body: () throws -> Result) rethrows -> Result {
        let previous = threadCount
        if previous == 1 { return try body() }
        threadCount = 1
        defer { threadCount = previous }
        return try body()
    }

    /// The OpenBLAS build and the kernel it selected for this processor.
    public static var configuration: String {
        "\(String(cString: openblas_get_config())) (core \(String(cString: openblas_get_corename())))"
    }
}
