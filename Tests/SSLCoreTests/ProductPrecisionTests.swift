import XCTest
@testable import SSLCore

/// The precision a training step's products run in: bfloat16 operands inside
/// ``BLAS/withPrecision(_:_:)``, float32 everywhere else.
///
/// The linear layer's bound follows BF16KernelTests': with u = 2⁻⁸ (bfloat16's unit roundoff),
/// v = 2⁻²⁴ (float32's) and γₙ = n·v / (1 − n·v) for n = 2K + 3 roundings, a bfloat16 product
/// is within (2u + u² + γₙ(1 + u)²)·S of the exact one and a float32 product within γₙ·S, where
/// S = Σₖ |Aᵢₖ||Bₖⱼ|; a bias added to the result adds γₙ·|bias| to each. So the two precisions
/// differ by at most (2u + u² + γₙ(1 + u)² + γₙ)·S + 2γₙ·|bias|.
final class ProductPrecisionTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(BF16.isSupported, "this processor lacks AVX512_BF16")
    }

    private func randomValues(_ count: Int, _ generator: inout RandomGenerator) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
    }

    /// Inside the scope a product at least ``BF16/minimumMultiplyAdds`` large is the bfloat16
    /// kernel's, a smaller one float32's; outside and after the scope every product is float32.
    func testProductsFollowTheScopedPrecision() {
        var generator = RandomGenerator(seed: 3)
        for (m, n, k) in [(128, 96, 64), (16, 16, 16)] {
            let a = randomValues(m * k, &generator), b = randomValues(k * n, &generator)
            func product(_ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
                var c = [Float](repeating: 0, count: m * n)
                c.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
                return c
            }
            let float32 = product { BLAS.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: $0, ldc: n, precision: .float32) }
            let bfloat16 = product { BF16.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: $0, ldc: n, kernel: .native) }
            let scoped = BLAS.withPrecision(.bfloat16) {
                product { BLAS.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: $0, ldc: n) }
            }
            let large = m * n * k >= BF16.minimumMultiplyAdds
            XCTAssertEqual(scoped, large ? bfloat16 : float32, "\(m)x\(n)x\(k) inside the scope")
            XCTAssertNotEqual(bfloat16, float32, "\(m)x\(n)x\(k): the operands are rounded")
            XCTAssertEqual(BLAS.precision, .float32)
            XCTAssertEqual(product { BLAS.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: $0, ldc: n) }, float32)
        }
    }

    /// A linear layer's output and both gradients in bfloat16 stay within the bound of their
    /// float32 values, and do differ from them.
    func testLinearLayerStaysWithinTheBoundOfFloat32() {
        let (rows, inputs, outputs) = (200, 96, 80)
        var generator = RandomGenerator(seed: 5)
        let x = randomValues(rows * inputs, &generator), w = randomValues(outputs * inputs, &generator)
        let bias = randomValues(outputs, &generator), upstream = randomValues(rows * outputs, &generator)
        func pass(_ precision: BLAS.Precision) -> (output: [Float], input: [Float], weight: [Float]) {
            let input = Tensor(shape: [rows, inputs], elements: x)
            let weight = Tensor(shape: [outputs, inputs], elements: w)
            input.requiresGradient = true
            weight.requiresGradient = true
            let output = BLAS.withPrecision(precision) {
                let output = input.linear(weight: weight, bias: Tensor(shape: [outputs], elements: bias))
                (output * Tensor(shape: [rows, outputs], elements: upstream)).sum().backward()
                return output
            }
            return (output.elements, input.gradient!.elements, weight.gradient!.elements)
        }
        let single = pass(.float32), half = pass(.bfloat16)
        let u = 0x1p-8, v = 0x1p-24
        func assertWithinBound(
            _ computed: [Float], _ reference: [Float], depth: Int, what: String,
            magnitude: (Int) -> Double, added: (Int) -> Double = { _ in 0 }
        ) {
            let n = Double(2 * depth + 3), gamma = n * v / (1 - n * v)
            let factor = 2 * u + u * u + gamma * (1 + u) * (1 + u) + gamma
            var outside = 0
            for index in computed.indices
            where abs(Double(computed[index]) - Double(reference[index])) > factor * magnitude(index) + 2 * gamma * added(index) {
                outside += 1
            }
            XCTAssertEqual(outside, 0, "\(what): elements outside the bound")
            XCTAssertNotEqual(computed, reference, "\(what): the bfloat16 pass equals the float32 one")
        }
        assertWithinBound(half.output, single.output, depth: inputs, what: "output", magnitude: { index in
            let (row, column) = index.quotientAndRemainder(dividingBy: outputs)
            return (0..<inputs).reduce(0) { $0 + Double(abs(x[row * inputs + $1]) * abs(w[column * inputs + $1])) }
        }, added: { Double(abs(bias[$0 % outputs])) })
        assertWithinBound(half.input, single.input, depth: outputs, what: "input gradient", magnitude: { index in
            let (row, column) = index.quotientAndRemainder(dividingBy: inputs)
            return (0..<outputs).reduce(0) { $0 + Double(abs(upstream[row * outputs + $1]) * abs(w[$1 * inputs + column])) }
        })
        assertWithinBound(half.weight, single.weight, depth: rows, what: "weight gradient", magnitude: { index in
            let (row, column) = index.quotientAndRemainder(dividingBy: inputs)
            return (0..<rows).reduce(0) { $0 + Double(abs(upstream[$1 * outputs + row]) * abs(x[$1 * inputs + column])) }
        })
    }

    /// The recipe's precision survives its JSON configuration, and a configuration written
    /// before it was stored has none (float32).
    func testTheRecipeStoresItsPrecision() throws {
        var recipe = TrainingRecipe(
            backbone: VisionTransformerConfiguration(embedDimension: 32, depth: 1, heads: 2, patchSize: 4, imageSize: 16),
            views: ViewPlan(globalCount: 2, globalSize: 16), tasks: [], epochs: 1, batchSize: 4)
        recipe.precision = .bfloat16
        let decoded = try JSONDecoder().decode(TrainingRecipe.self, from: JSONEncoder().encode(recipe))
        XCTAssertEqual(decoded.precision, .bfloat16)
        recipe.precision = nil
        let json = String(decoding: try JSONEncoder().encode(recipe), as: UTF8.self)
        XCTAssertFalse(json.contains("precision"), json)
        XCTAssertNil(try JSONDecoder().decode(TrainingRecipe.self, from: Data(json.utf8)).precision)
    }
}
