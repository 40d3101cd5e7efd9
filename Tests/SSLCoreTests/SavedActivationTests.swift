import XCTest
@testable import SSLCore

/// Activations kept for the backward pass: the tensor itself in float32 runs, a bfloat16 copy
/// rounded as the bfloat16 products round their operands in bfloat16 runs.
final class SavedActivationTests: XCTestCase {
    private func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        return Tensor.randomNormal(shape, generator: &generator)
    }

    func testAFloat32RunKeepsTheTensorItself() {
        let tensor = randomTensor([3, 70_000], seed: 1)
        let saved = SavedActivation(tensor)
        XCTAssertTrue(saved.tensor === tensor)
        XCTAssertEqual(saved.shape, [3, 70_000])
    }

    /// The copy holds what a bfloat16 product reads: multiplying by the identity in bfloat16
    /// (one rounded operand times exactly 1, summed with exact zeros) gives the rounded values.
    /// Sizes cover a partial last vector and several chunks split across cores.
    func testABFloat16RunKeepsTheValuesTheProductsRead() throws {
        try XCTSkipUnless(BF16.isSupported, "this processor lacks AVX512_BF16")
        for (rows, columns) in [(1, 1), (3, 37), (1_100, 130)] {
            let tensor = randomTensor([rows, columns], seed: UInt64(rows))
            let kept = BLAS.withPrecision(.bfloat16) { SavedActivation(tensor) }.tensor
            XCTAssertFalse(kept === tensor)
            XCTAssertEqual(kept.shape, [rows, columns])

            let identity = Tensor.zeros([columns, columns])
            identity.withMutableElements { elements in for index in 0..<columns { elements[index * columns + index] = 1 } }
            var rounded = [Float](repeating: 0, count: rows * columns)
            tensor.withElements { a in
                identity.withElements { b in
                    BF16.gemm(
                        m: rows, n: columns, k: columns, a: a.baseAddress!, lda: columns, b: b.baseAddress!, ldb: columns,
                        c: &rounded, ldc: columns, kernel: .native)
                }
            }
            XCTAssertEqual(kept.elements, rounded, "\(rows)×\(columns)")
            if rows * columns > 1 { XCTAssertNotEqual(kept.elements, tensor.elements, "\(rows)×\(columns): rounded") }
        }
    }

    /// A linear layer's weight gradient reads its kept input through a bfloat16 product, which
    /// rounds it anyway: keeping the input rounded leaves the gradient bit for bit the same.
    func testKeepingALinearInputRoundedLeavesItsWeightGradientUnchanged() throws {
        try XCTSkipUnless(BF16.isSupported, "this processor lacks AVX512_BF16")
        let (rows, inputs, outputs) = (300, 96, 80)
        let x = randomTensor([rows, inputs], seed: 4), upstream = randomTensor([rows, outputs], seed: 5)
        let weight = randomTensor([outputs, inputs], seed: 6)
        weight.requiresGradient = true
        BLAS.withPrecision(.bfloat16) {
            (x.linear(weight: weight) * upstream).sum().backward()
        }
        var expected = [Float](repeating: 0, count: outputs * inputs)
        upstream.withElements { g in
            x.withElements { a in
                BF16.gemm(
                    transposeA: true, m: outputs, n: inputs, k: rows, a: g.baseAddress!, lda: outputs, b: a.baseAddress!,
                    ldb: inputs, c: &expected, ldc: inputs, kernel: .native)
            }
        }
        XCTAssertEqual(weight.gradient!.elements, expected)
    }

    /// Attention's backward pass in a bfloat16 run is its float32 kernel on the rounded copies
    /// of the packed query-key-value rows and of the probabilities, bit for bit (its per-head
    /// products are below the bfloat16 size, so they run in float32).
    func testAttentionBackwardReadsTheRoundedCopies() throws {
        try XCTSkipUnless(BF16.isSupported, "this processor lacks AVX512_BF16")
        let (batch, length, heads, dimension) = (3, 20, 2, 16)
        let qkv = randomTensor([batch, length, 3 * dimension], seed: 7)
        let upstream = randomTensor([batch, length, dimension], seed: 8)
        qkv.requiresGradient = true
        let probabilities = BLAS.withPrecision(.bfloat16) {
            let (output, probabilities) = Tensor.selfAttention(qkv: qkv, heads: heads)
            (output * upstream).sum().backward()
            return probabilities
        }
        func rounded(_ tensor: Tensor) -> Tensor { BLAS.withPrecision(.bfloat16) { SavedActivation(tensor) }.tensor }
        let roundedQKV = rounded(qkv), roundedProbabilities = rounded(probabilities)
        let expected = Tensor.zeros(qkv.shape)
        let layout = AttentionLayout(
            batch: batch, heads: heads, headDimension: dimension / heads, queryLength: length, keyLength: length,
            queryOffset: 0, queryRowStride: 3 * dimension, keyOffset: dimension, keyRowStride: 3 * dimension,
            valueOffset: 2 * dimension, valueRowStride: 3 * dimension, outputRowStride: dimension)
        let base = roundedQKV.storage.base, gradient = expected.storage.base
        AttentionKernel.backward(
            layout, query: base, key: base, value: base, probabilities: roundedProbabilities.storage.base,
            outputGradient: upstream.storage.base, queryGradient: gradient, keyGradient: gradient, valueGradient: gradient)
        XCTAssertEqual(qkv.gradient!.elements, expected.elements)
        XCTAssertNotEqual(roundedQKV.elements, qkv.elements, "the inputs differ from their copies")
    }
}
