import XCTest
@testable import SSLCore

final class MatrixProductTests: XCTestCase {
    /// Products go to oneDNN only when its OpenMP threads can be held to one per call; this
    /// machine's oneDNN must allow that, or every large product silently falls back to OpenBLAS.
    func testOneDNNRunsWithinTheEnginesThreads() {
        XCTAssertTrue(OneDNN.isUsable, "omp_set_num_threads was not found beside oneDNN")
    }

    /// Both libraries, split across cores or not, compute alpha · op(A) · op(B) + beta · C for
    /// every combination of transposes, on operands with row strides wider than their rows.
    func testBothLibrariesMatchADoublePrecisionProduct() {
        let (m, n, k) = (130, 90, 100)
        let padding = 3
        var generator = RandomGenerator(seed: 7)
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
                let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
                let (lda, ldb, ldc) = (aColumns + padding, bColumns + padding, n + padding)
                let a = (0..<aRows * lda).map { _ in Float.random(in: -1...1, using: &generator) }
                let b = (0..<bRows * ldb).map { _ in Float.random(in: -1...1, using: &generator) }
                let initial = (0..<m * ldc).map { _ in Float.random(in: -1...1, using: &generator) }
                let (alpha, beta): (Float, Float) = (0.75, 0.5)
                func element(_ matrix: [Float], _ stride: Int, _ row: Int, _ column: Int, transposed: Bool) -> Double {
                    Double(transposed ? matrix[column * stride + row] : matrix[row * stride + column])
                }
                for library in BLAS.Library.allCases {
                    for parallel in [false, true] {
                        var c = initial
                        BLAS.gemm(
                            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc,
                            parallel: parallel, library: library)
                        var worst = 0.0
                        for row in 0..<m {
                            for column in 0..<ldc {
                                guard column < n else {
                                    XCTAssertEqual(c[row * ldc + column], initial[row * ldc + column], "padding written")
                                    continue
                                }
                                var sum = 0.0
                                for index in 0..<k {
                                    sum += element(a, lda, row, index, transposed: transposeA)
                                        * element(b, ldb, index, column, transposed: transposeB)
                                }
                                let expected = Double(alpha) * sum + Double(beta) * Double(initial[row * ldc + column])
                                worst = max(worst, abs(Double(c[row * ldc + column]) - expected))
                            }
                        }
                        // Float32 sums of 100 products of magnitude ≤ 1 round to within about 1e-5;
                        // a wrong transpose, stride or split is off by order 1.
                        XCTAssertLessThan(
                            worst, 1e-4,
                            "\(library) transposeA \(transposeA) transposeB \(transposeB) parallel \(parallel)")
                    }
                }
            }
        }
    }
}
