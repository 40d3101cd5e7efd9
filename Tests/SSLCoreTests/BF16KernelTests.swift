import SSLCore
import XCTest

/// The bfloat16 matrix products against a float64 reference, each element held to a bound
/// derived from the two formats.
///
/// Error bound. Let u = 2⁻⁸ (unit roundoff of bfloat16: 8-bit significand, round to nearest
/// even) and v = 2⁻²⁴ (the same for float32). Rounding gives â = a(1 + δ₁) and b̂ = b(1 + δ₂)
/// with |δ| ≤ u, so |âb̂ − ab| ≤ (2u + u²)|ab|. The product of two bfloat16 values is exact in
/// float32, so the rest is float32 summation: the K products of an element are added in at
/// most K roundings, splitting k into blocks adds at most one more per block (≤ K), and
/// alpha·(sum) + beta·C adds three (multiply, multiply, add). With n = 2K + 3 roundings and
/// γₙ = n·v / (1 − n·v), every element satisfies
///
///     |Ĉᵢⱼ − Cᵢⱼ| ≤ |α|·(2u + u² + γₙ(1 + u)²)·Sᵢⱼ + γₙ·|β·C⁰ᵢⱼ|,   Sᵢⱼ = Σₖ |Aᵢₖ||Bₖⱼ|,
///
/// where C⁰ is C before the product. Inputs already in bfloat16 drop the rounding term:
/// |Ĉᵢⱼ − Cᵢⱼ| ≤ |α|·γₙ·Sᵢⱼ + γₙ·|β·C⁰ᵢⱼ|. (The kernel flushes denormals to zero; the test
/// data has none, nor products near float32's denormal range.)
final class BF16KernelTests: XCTestCase {
    /// Every bfloat16 kernel; each test runs on all of them.
    private let kernels = BF16.Kernel.allCases.filter { $0 != .singlePrecision }

    override func setUpWithError() throws {
        try XCTSkipUnless(BF16.isSupported, "this processor lacks AVX512_BF16")
    }

    func testAllTransposeCombinationsWithPaddedLeadingDimensions() {
        for kernel in kernels {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    var product = ProductCase(kernel, m: 37, n: 45, k: 67, transposeA: transposeA, transposeB: transposeB)
                    product.padding = (3, 5, 7)
                    product.alpha = 0.75
                    product.beta = 0.5
                    product.assertWithinBound()
                }
            }
        }
    }

    func testOddAndTinyInnerExtents() {
        for kernel in kernels {
            for k in [1, 2, 3, 31, 33] {
                for transposeA in [false, true] {
                    ProductCase(kernel, m: 5, n: 17, k: k, transposeA: transposeA, transposeB: !transposeA).assertWithinBound()
                }
            }
            ProductCase(kernel, m: 1, n: 1, k: 1).assertWithinBound()
        }
    }

    func testShapesSpanningSeveralBlocks() {
        for kernel in kernels {
            // More than one block of k (256 values, odd), of rows (144) and of columns (1,024).
            ProductCase(kernel, m: 150, n: 40, k: 301, transposeA: true).assertWithinBound()
            ProductCase(kernel, m: 13, n: 1030, k: 20, transposeB: true).assertWithinBound()
        }
    }

    func testLargeProductsSplitAcrossCores() {
        for kernel in kernels {
            // Above the 4·10⁶ multiply-add threshold: split by rows, then (few rows) by columns.
            var byRows = ProductCase(kernel, m: 300, n: 200, k: 100, transposeB: true)
            byRows.beta = -1
            byRows.assertWithinBound()
            ProductCase(kernel, m: 40, n: 1200, k: 100, transposeA: true).assertWithinBound()
        }
    }

    func testBetaZeroDoesNotReadTheResult() {
        for kernel in kernels {
            var product = ProductCase(kernel, m: 7, n: 9, k: 11)
            product.initialResult = Array(repeating: .nan, count: product.initialResult.count)
            product.assertWithinBound()
        }
    }

    func testEmptyProducts() {
        for kernel in kernels {
            var noRows = ProductCase(kernel, m: 0, n: 4, k: 3)
            noRows.beta = 2
            XCTAssertEqual(noRows.computed(), noRows.initialResult, "\(kernel), no rows: C untouched")
            var noDepth = ProductCase(kernel, m: 3, n: 4, k: 0)
            noDepth.beta = 2
            XCTAssertEqual(noDepth.computed(), noDepth.initialResult.map { 2 * $0 }, "\(kernel), k = 0: C ← beta·C")
        }
    }

    /// The inputs really are rounded: with pre-rounded inputs the kernel agrees with the exact
    /// product to float32 summation error, while with the original inputs it does not.
    func testInputsAreRoundedToBFloat16() {
        for kernel in kernels {
            let original = ProductCase(kernel, m: 24, n: 40, k: 64, transposeB: true)
            var rounded = original
            rounded.a = original.a.map(roundedToBFloat16)
            rounded.b = original.b.map(roundedToBFloat16)
            rounded.assertWithinBound(inputsAreBFloat16: true)
            XCTAssertEqual(rounded.computed(), original.computed(), "\(kernel): rounding is the kernel's first step")
            XCTAssertGreaterThan(
                original.elementsOutsideBound(of: original.computed(), inputsAreBFloat16: true), 0,
                "\(kernel): the result is as close to the exact product as float32 inputs would give")
        }
    }

    func testSinglePrecisionKernelIsFloat32BLAS() {
        var product = ProductCase(.singlePrecision, m: 19, n: 23, k: 29, transposeA: true)
        product.alpha = 1.5
        product.beta = 0.25
        XCTAssertEqual(product.computed(), product.computedByFloat32BLAS())
    }
}

/// Rounds to the nearest bfloat16 (ties to even), written from the format's definition: keep
/// the upper 16 bits of the float32 pattern.
private func roundedToBFloat16(_ value: Float) -> Float {
    let bits = value.bitPattern
    let tieBreak = (bits >> 16) & 1
    return Float(bitPattern: (bits &+ 0x7FFF &+ tieBreak) & 0xFFFF_0000)
}

/// One product C ← α·op(A)·op(B) + β·C with random operands stored row-major, optionally in
/// wider rows than the matrix needs.
private struct ProductCase {
    let m: Int, n: Int, k: Int
    let transposeA: Bool, transposeB: Bool
    let kernel: BF16.Kernel
    var alpha: Float = 1, beta: Float = 0
    var a: [Float], b: [Float], initialResult: [Float]
    /// Extra floats at the end of each stored row of A, B and C.
    var padding = (a: 0, b: 0, c: 0) {
        didSet { fillOperands() }
    }

    init(_ kernel: BF16.Kernel, m: Int, n: Int, k: Int, transposeA: Bool = false, transposeB: Bool = false) {
        self.kernel = kernel
        self.m = m
        self.n = n
        self.k = k
        self.transposeA = transposeA
        self.transposeB = transposeB
        (a, b, initialResult) = ([], [], [])
        fillOperands()
    }

    var lda: Int { (transposeA ? m : k) + padding.a }
    var ldb: Int { (transposeB ? k : n) + padding.b }
    var ldc: Int { n + padding.c }

    private mutating func fillOperands() {
        var generator = RandomGenerator(seed: UInt64(m * 1_000_003 + n * 1_009 + k))
        func draw(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -2...2, using: &generator) } }
        a = draw((transposeA ? k : m) * lda)
        b = draw((transposeB ? n : k) * ldb)
        initialResult = draw(m * ldc)
    }

    func elementOfA(_ row: Int, _ inner: Int) -> Float { transposeA ? a[inner * lda + row] : a[row * lda + inner] }
    func elementOfB(_ inner: Int, _ column: Int) -> Float { transposeB ? b[column * ldb + inner] : b[inner * ldb + column] }

    func computed() -> [Float] {
        var result = initialResult
        BF16.gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
            b: b, ldb: ldb, beta: beta, c: &result, ldc: ldc, kernel: kernel)
        return result
    }

    func computedByFloat32BLAS() -> [Float] {
        var result = initialResult
        BLAS.gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
            b: b, ldb: ldb, beta: beta, c: &result, ldc: ldc)
        return result
    }

    /// How many elements of `result` lie outside the bound of the type's comment.
    func elementsOutsideBound(of result: [Float], inputsAreBFloat16: Bool, report: Bool = false) -> Int {
        let unitRoundoff = 0x1p-8, summationRoundings = Double(2 * k + 3)
        let gamma = summationRoundings * 0x1p-24 / (1 - summationRoundings * 0x1p-24)
        let relativeBound =
            (inputsAreBFloat16 ? 0 : 2 * unitRoundoff + unitRoundoff * unitRoundoff)
            + gamma * (1 + unitRoundoff) * (1 + unitRoundoff)
        var outside = 0
        for row in 0..<m {
            for column in 0..<n {
                var exact = 0.0, absoluteSum = 0.0
                for inner in 0..<k {
                    let term = Double(elementOfA(row, inner)) * Double(elementOfB(inner, column))
                    exact += term
                    absoluteSum += abs(term)
                }
                let index = row * ldc + column
                let start = beta == 0 ? 0 : Double(beta) * Double(initialResult[index])
                let expected = Double(alpha) * exact + start
                let bound = abs(Double(alpha)) * relativeBound * absoluteSum + gamma * abs(start)
                let error = abs(Double(result[index]) - expected)
                if !(error <= bound) {
                    if report, outside == 0 {
                        XCTFail("C[\(row), \(column)] = \(result[index]), expected \(expected) ± \(bound) (\(self))")
                    }
                    outside += 1
                }
            }
        }
        return outside
    }

    func assertWithinBound(inputsAreBFloat16: Bool = false) {
        let result = computed()
        XCTAssertEqual(elementsOutsideBound(of: result, inputsAreBFloat16: inputsAreBFloat16, report: true), 0)
        // Padding columns of C are never written.
        for row in 0..<m {
            for column in n..<ldc {
                let index = row * ldc + column
                XCTAssertEqual(result[index].bitPattern, initialResult[index].bitPattern, "padding of C written")
            }
        }
    }
}
