import SSLCore
import SSLTestSupport
import XCTest

/// Every differentiable operation's backward pass against central finite differences.
final class OperationGradientTests: XCTestCase {
    private var generator = RandomGenerator(seed: 42)

    private func random(_ shape: [Int], scale: Float = 1) -> Tensor {
        Tensor.randomNormal(shape, standardDeviation: scale, generator: &generator)
    }

    /// Values bounded away from zero (for log, sqrt, division and kinks).
    private func positive(_ shape: [Int]) -> Tensor {
        Tensor.randomUniform(shape, lower: 0.5, upper: 2, generator: &generator)
    }

    func testBroadcastingArithmetic() {
        checkGradients(of: [random([2, 3, 4]), random([3, 1])]) { $0[0] + $0[1] }
        checkGradients(of: [random([2, 3, 4]), random([4])]) { $0[0] - $0[1] }
        checkGradients(of: [random([2, 1, 4]), random([3, 1])]) { $0[0] * $0[1] }
        checkGradients(of: [random([2, 3]), positive([2, 1])]) { $0[0] / $0[1] }
        checkGradients(of: [random([3, 2])]) { 2 - $0[0] * 3 + 1 }
        checkGradients(of: [positive([3, 2])]) { 1 / $0[0] }
    }

    func testUnaryFunctions() {
        checkGradients(of: [random([10])]) { $0[0].exp() }
        checkGradients(of: [positive([10])]) { $0[0].log() }
        checkGradients(of: [positive([10])]) { $0[0].squareRoot() }
        checkGradients(of: [random([10])]) { $0[0].squared() }
        checkGradients(of: [positive([10])]) { $0[0].power(1.5) }
        checkGradients(of: [random([30], scale: 2)]) { $0[0].gelu() }
        checkGradients(of: [positive([5]) * Tensor(shape: [5], elements: [1, -1, 1, -1, 1])]) { $0[0].relu() }
        checkGradients(of: [positive([5]) * Tensor(shape: [5], elements: [1, -1, 1, -1, 1])]) { $0[0].clamped(min: 0.1) }
    }

    func testReductions() {
        checkGradients(of: [random([2, 3, 4])]) { $0[0].sum() }
        checkGradients(of: [random([2, 3, 4])]) { $0[0].mean() }
        checkGradients(of: [random([2, 3, 4])]) { $0[0].sum(axes: [1]) }
        checkGradients(of: [random([2, 3, 4])]) { $0[0].sum(axes: [0, 2], keepingDimensions: true) }
        checkGradients(of: [random([2, 3, 4])]) { $0[0].mean(axes: [-1]) }
    }

    func testShapeOperations() {
        checkGradients(of: [random([2, 6])]) { $0[0].reshaped([3, -1]) * Tensor(shape: [3, 4], repeating: 2) }
        checkGradients(of: [random([2, 3, 4])]) { $0[0].permuted([2, 0, 1]) }
        checkGradients(of: [random([2, 3, 4])]) { $0[0].transposed(0, 1) }
        checkGradients(of: [random([3, 5])]) { $0[0].sliced(1..<4, axis: 1) }
        checkGradients(of: [random([4, 3])]) { $0[0].split(sizes: [1, 3], axis: 0)[1] }
        checkGradients(of: [random([2, 3]), random([2, 2])]) { Tensor.concatenate([$0[0], $0[1], $0[0]], axis: 1) }
        checkGradients(of: [random([4, 3])]) { $0[0].gatherRows([3, 0, 3, 1]) }
    }

    func testTopKValues() {
        let input = Tensor(shape: [2, 5], elements: [0.1, 0.9, 0.5, 0.3, 0.7, 1.0, -1.0, 0.2, 0.8, 0.4])
        let (values, indices) = input.topK(3)
        XCTAssertEqual(indices, [1, 4, 2, 0, 3, 4])
        XCTAssertEqual(values.elements, [0.9, 0.7, 0.5, 1.0, 0.8, 0.4])
        checkGradients(of: [input]) { $0[0].topK(2).values }
    }

    func testMatrixProducts() {
        checkGradients(of: [random([3, 4]), random([4, 2])]) { $0[0].matmul($0[1]) }
        checkGradients(of: [random([2, 3, 4]), random([2, 4, 5])]) { $0[0].matmul($0[1]) }
        checkGradients(of: [random([2, 3, 4]), random([4, 5])]) { $0[0].matmul($0[1]) }
        checkGradients(of: [random([2, 3, 4]), random([5, 4]), random([5])]) { $0[0].linear(weight: $0[1], bias: $0[2]) }
        checkGradients(of: [random([3, 4]), random([2, 4])]) { $0[0].linear(weight: $0[1]) }
        checkGradients(of: [random([2, 3, 4], scale: 2), random([5, 4]), random([5])]) {
            $0[0].geluLinear(weight: $0[1], bias: $0[2])
        }
        checkGradients(of: [random([2, 3, 4]), random([5, 4]), random([5]), random([2, 3, 5])]) {
            $0[0].linear(weight: $0[1], bias: $0[2], addingTo: $0[3])
        }
        checkGradients(of: [random([3, 4]), random([2, 4]), random([3, 2])]) { $0[0].linear(weight: $0[1], addingTo: $0[2]) }
        checkGradients(of: [random([2, 3, 4], scale: 2), random([5, 4]), random([5]), random([2, 3, 5]), random([4])]) {
            $0[0].geluLinear(preActivationBias: $0[4], weight: $0[1], bias: $0[2], addingTo: $0[3])
        }
        checkGradients(of: [random([3, 4], scale: 2), random([4]), random([2, 4])]) {
            $0[0].geluLinear(preActivationBias: $0[1], weight: $0[2])
        }
    }

    /// A skip connection added in the product's pass rounds as `residual + linear(x)` does: over
    /// rows enough to split across threads, and a depth the product sums in one block, the two
    /// agree to the last bit, forward and backward.
    func testLinearAddingAResidualEqualsItsPartsExactly() throws {
        let input = random([3000, 64]), weight = random([48, 64]), bias = random([48]), residual = random([3000, 48], scale: 4)
        let upstream = random([3000, 48])
        func values(_ fused: Bool) throws -> [[Float]] {
            let leaves = [input, weight, bias, residual].map { tensor -> Tensor in
                let copy = tensor.copy()
                copy.requiresGradient = true
                return copy
            }
            let output = fused
                ? leaves[0].linear(weight: leaves[1], bias: leaves[2], addingTo: leaves[3])
                : leaves[3] + leaves[0].linear(weight: leaves[1], bias: leaves[2])
            output.backward(seed: upstream)
            return try [output.elements] + leaves.map { try XCTUnwrap($0.gradient).elements }
        }
        let fused = try values(true), parts = try values(false)
        for (index, name) in ["output", "input gradient", "weight gradient", "bias gradient", "residual gradient"].enumerated() {
            let differing = zip(fused[index], parts[index]).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(name): \(differing) of \(fused[index].count) elements differ")
        }
    }

    /// The fused GELU + linear computes the activation and its input's gradient in one kernel;
    /// its values must be exactly those of `gelu()` followed by `linear`, over rows enough to
    /// split across threads.
    func testGELULinearEqualsItsPartsExactly() throws {
        let input = random([200, 700], scale: 3), weight = random([5, 700]), bias = random([5])
        let upstream = random([200, 5])
        func gradients(_ fused: Bool) throws -> [[Float]] {
            let leaves = [input, weight, bias].map { tensor -> Tensor in
                let copy = tensor.copy()
                copy.requiresGradient = true
                return copy
            }
            let output = fused
                ? leaves[0].geluLinear(weight: leaves[1], bias: leaves[2])
                : leaves[0].gelu().linear(weight: leaves[1], bias: leaves[2])
            output.backward(seed: upstream)
            return try leaves.map { try XCTUnwrap($0.gradient).elements }
        }
        let fused = try gradients(true), parts = try gradients(false)
        for (index, name) in ["input", "weight", "bias"].enumerated() {
            let differing = zip(fused[index], parts[index]).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(name) gradient: \(differing) of \(fused[index].count) elements differ")
        }
    }

    /// The MLP's middle as a training block runs it (the first layer's bias added in the
    /// activation's pass, the skip connection in the second layer's) equals its parts to the last
    /// bit, forward and backward, over rows enough to split across threads.
    func testGELULinearWithBiasAndResidualEqualsItsPartsExactly() throws {
        let input = random([3000, 96], scale: 3), shift = random([96]), weight = random([32, 96]), bias = random([32])
        let residual = random([3000, 32], scale: 4), upstream = random([3000, 32])
        func values(_ fused: Bool) throws -> [[Float]] {
            let leaves = [input, weight, bias, residual, shift].map { tensor -> Tensor in
                let copy = tensor.copy()
                copy.requiresGradient = true
                return copy
            }
            let output = fused
                ? leaves[0].geluLinear(preActivationBias: leaves[4], weight: leaves[1], bias: leaves[2], addingTo: leaves[3])
                : leaves[3] + (leaves[0] + leaves[4]).gelu().linear(weight: leaves[1], bias: leaves[2])
            output.backward(seed: upstream)
            return try [output.elements] + leaves.map { try XCTUnwrap($0.gradient).elements }
        }
        let fused = try values(true), parts = try values(false)
        let names = ["output", "input gradient", "weight gradient", "bias gradient", "residual gradient", "pre-activation bias gradient"]
        for (index, name) in names.enumerated() {
            let differing = zip(fused[index], parts[index]).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(name): \(differing) of \(fused[index].count) elements differ")
        }
    }

    func testNormalizations() {
        checkGradients(of: [random([3, 6]), positive([6]), random([6])]) {
            $0[0].layerNorm(weight: $0[1], bias: $0[2], epsilon: 1e-6)
        }
        checkGradients(of: [random([3, 6])]) { $0[0].layerNorm(weight: nil, bias: nil, epsilon: 1e-5) }
        checkGradients(of: [random([2, 3, 6]), positive([6]), random([6]), random([4, 6]), random([4])]) {
            $0[0].layerNormLinear(normWeight: $0[1], normBias: $0[2], epsilon: 1e-6, weight: $0[3], bias: $0[4])
        }
        checkGradients(of: [random([3, 5])]) { $0[0].l2Normalized() }
        checkGradients(of: [random([4, 3]), positive([4, 1])]) {
            Tensor.weightNormalized(direction: $0[0], magnitude: $0[1])
        }
        checkGradients(of: [random([2, 3]), random([4, 3]), positive([4, 1])]) {
            $0[0].weightNormalizedLinear(direction: $0[1], magnitude: $0[2])
        }
        checkGradients(of: [random([5, 2]), random([3, 2]), positive([3, 1])]) {
            $0[0].weightNormalizedLinear(direction: $0[1], magnitude: $0[2])
        }
        checkGradients(of: [random([6, 3]), positive([3]), random([3])]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: Tensor.zeros([3]), runningVariance: Tensor.ones([3]),
                            training: true, momentum: 0.1, epsilon: 1e-5)
        }
        checkGradients(of: [random([6, 3])]) {
            $0[0].batchNorm(weight: nil, bias: nil, runningMean: Tensor.zeros([3]), runningVariance: Tensor.ones([3]),
                            training: false, momentum: 0.1, epsilon: 1e-5)
        }
    }

    func testBatchNormRunningStatistics() {
        let x = Tensor(shape: [4, 1], elements: [1, 2, 3, 6])
        let mean = Tensor.zeros([1]), variance = Tensor.ones([1])
        _ = x.batchNorm(weight: nil, bias: nil, runningMean: mean, runningVariance: variance,
                        training: true, momentum: 0.1, epsilon: 1e-5)
        XCTAssertEqual(mean.scalar, 0.3, accuracy: 1e-6)
        // Unbiased variance of [1, 2, 3, 6] is 14/3.
        XCTAssertEqual(variance.scalar, 0.9 + 0.1 * 14 / 3, accuracy: 1e-6)
    }

    func testSoftmaxFamily() {
        checkGradients(of: [random([3, 7])]) { $0[0].softmax() }
        checkGradients(of: [random([3, 7])]) { $0[0].softmax(scale: 2.5) }
        checkGradients(of: [random([3, 7])]) { $0[0].logSoftmax(scale: 0.5) }
        let targets = random([3, 7]).softmax(scale: 3)
        checkGradients(of: [random([3, 7])]) { $0[0].softCrossEntropy(targets: targets, temperature: 0.1) }
    }

    func testSoftCrossEntropyValue() {
        let logits = Tensor(shape: [1, 3], elements: [1, 2, 3])
        let targets = Tensor(shape: [1, 3], elements: [0.2, 0.3, 0.5])
        let expected = -(targets * logits.logSoftmax(scale: 2)).sum()
        XCTAssertEqual(logits.softCrossEntropy(targets: targets, temperature: 0.5).scalar, expected.scalar, accuracy: 1e-6)
    }

    func testCrossEntropyWithIntegerLabels() {
        checkGradients(of: [random([4, 5])]) { $0[0].crossEntropy(labels: [0, 4, 2, 2], temperature: 0.2) }
        let logits = Tensor(shape: [2, 3], elements: [1, 2, 3, -1, 0.5, 0.5])
        let expected = logits.logSoftmax().elements
        XCTAssertEqual(logits.crossEntropy(labels: [2, 0]).elements[0], -expected[2], accuracy: 1e-6)
        XCTAssertEqual(logits.crossEntropy(labels: [2, 0]).elements[1], -expected[3], accuracy: 1e-6)
        XCTAssertEqual(logits.argmax(), [2, 1], "ties go to the first position")
        XCTAssertEqual(Tensor.oneHot([1, 0], classes: 3).elements, [0, 1, 0, 1, 0, 0])
        XCTAssertEqual(Tensor(shape: [2, 2, 2], elements: [0, 1, 5, 4, 3, 3, -1, -2]).argmax(), [1, 0, 0, 0])
    }

    func testAttention() {
        checkGradients(of: [random([2, 4, 12])]) { Tensor.selfAttention(qkv: $0[0], heads: 2).output }
        checkGradients(of: [random([2, 1, 4]), random([2, 3, 4]), random([2, 3, 4])]) {
            Tensor.attention(query: $0[0], key: $0[1], value: $0[2], heads: 2).output
        }
    }

    /// Heads of 16 features, which run on the fused kernels where the processor has AVX-512
    /// (and on the BLAS path elsewhere).
    func testAttentionWithHeadsOfSixteenFeatures() {
        checkGradients(of: [random([2, 5, 96])]) { Tensor.selfAttention(qkv: $0[0], heads: 2).output }
        checkGradients(of: [random([2, 3, 32]), random([2, 7, 32]), random([2, 7, 32])]) {
            Tensor.attention(query: $0[0], key: $0[1], value: $0[2], heads: 2).output
        }
    }

    func testSelfAttentionMatchesComposedOperations() {
        let qkv = random([2, 5, 12])
        let fused = Tensor.selfAttention(qkv: qkv, heads: 2)
        let parts = qkv.reshaped([2, 5, 3, 2, 2]).permuted([2, 0, 3, 1, 4])  // [3, B, h, L, d]
        let q = parts.sliced(0..<1).reshaped([2, 2, 5, 2])
        let k = parts.sliced(1..<2).reshaped([2, 2, 5, 2])
        let v = parts.sliced(2..<3).reshaped([2, 2, 5, 2])
        let probabilities = q.matmul(k.transposed()).softmax(scale: 1 / Float(2).squareRoot())
        let composed = probabilities.matmul(v).permuted([0, 2, 1, 3]).reshaped([2, 5, 4])
        assertClose(fused.output, composed, absoluteTolerance: 1e-6)
        assertClose(fused.probabilities, probabilities, absoluteTolerance: 1e-6)
    }

    func testPatchesAndDropPath() {
        checkGradients(of: [random([2, 3, 4, 6])]) { $0[0].patches(size: 2) }
        checkGradients(of: [random([2, 2, 4, 5])]) { $0[0].patches(size: 3, stride: 1, padding: 1) }
        checkGradients(of: [random([1, 2, 5, 7])]) { $0[0].patches(size: 3, stride: 2, padding: 1) }
        checkGradients(of: [random([1, 2, 5, 5])]) { $0[0].patches(size: 2, stride: 3) }  // gaps between squares
        var dropGenerator = RandomGenerator(seed: 3)
        let snapshot = dropGenerator
        checkGradients(of: [random([4, 2, 3])]) { inputs in
            dropGenerator = snapshot  // the same mask on every evaluation
            return inputs[0].dropPath(rate: 0.5, generator: &dropGenerator)
        }
    }

    func testPatchesLayout() {
        // One 1-channel 4x4 image, patch 2: patch 1 is the top-right square.
        let image = Tensor(shape: [1, 1, 4, 4], elements: (0..<16).map(Float.init))
        let patches = image.patches(size: 2)
        XCTAssertEqual(patches.shape, [1, 4, 4])
        XCTAssertEqual(patches.sliced(1..<2, axis: 1).elements, [2, 3, 6, 7])
    }

    func testOverlappingPatchesLayout() {
        // One 1-channel 3x3 image, 3x3 squares every pixel with a border of zeros: the square
        // around the top-left pixel, and the one around the centre (the whole image).
        let image = Tensor(shape: [1, 1, 3, 3], elements: (1...9).map(Float.init))
        let patches = image.patches(size: 3, stride: 1, padding: 1)
        XCTAssertEqual(patches.shape, [1, 9, 9])
        XCTAssertEqual(patches.sliced(0..<1, axis: 1).elements, [0, 0, 0, 0, 1, 2, 0, 4, 5])
        XCTAssertEqual(patches.sliced(4..<5, axis: 1).elements, (1...9).map(Float.init))
        XCTAssertEqual(patches.sliced(8..<9, axis: 1).elements, [5, 6, 0, 8, 9, 0, 0, 0, 0])
    }

    func testPositionEmbeddingInterpolationGradient() {
        var configuration = VisionTransformerConfiguration(embedDimension: 4, depth: 0, heads: 1, patchSize: 4, imageSize: 16)
        configuration.classToken = true
        let model = VisionTransformer(configuration, seed: 1)
        checkGradients(of: [model.positionTable]) { _ in model.positionEmbedding(height: 3, width: 2) }
    }

    func testGradientsAccumulateAcrossBackwardPasses() {
        let x = Tensor(shape: [2], elements: [1, 2])
        x.requiresGradient = true
        (x * 3).sum().backward()
        (x * x).sum().backward()
        XCTAssertEqual(x.gradient!.elements, [5, 7])
    }

    func testNoGradientModeRecordsNothing() {
        let x = Tensor(shape: [2], elements: [1, 2])
        x.requiresGradient = true
        let y = GradientMode.withoutGradient { (x * 2).exp() }
        XCTAssertFalse(y.requiresGradient)
        XCTAssertFalse(x.detached().requiresGradient)
    }

    func testSharedSubexpressionGradientsAddUp() {
        // y = a + a used twice must not corrupt the shared gradient buffer.
        checkGradients(of: [random([3])]) { inputs in
            let a = inputs[0] * 2
            let b = a + a
            return b * a + b
        }
    }
}
