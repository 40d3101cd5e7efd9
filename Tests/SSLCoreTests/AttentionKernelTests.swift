import XCTest

@testable import SSLCore

/// The fused attention kernels (`Sources/CKernels/attention.c`) against the BLAS path they
/// replace on processors with AVX-512, at the ViT shapes they serve and at awkward ones.
final class AttentionKernelTests: XCTestCase {
    /// Probabilities, output and the three input gradients of both paths, for queries and keys
    /// of `queryLength` and `keyLength` rows inside wider rows (as the packed qkv matrix holds them).
    private func assertPathsAgree(
        batch: Int, heads: Int, headDimension: Int, queryLength: Int, keyLength: Int, file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let dimension = heads * headDimension
        let layout = AttentionLayout(
            batch: batch, heads: heads, headDimension: headDimension, queryLength: queryLength, keyLength: keyLength,
            queryOffset: 0, queryRowStride: dimension + 3, keyOffset: 1, keyRowStride: 2 * dimension + 1,
            valueOffset: dimension + 1, valueRowStride: 2 * dimension + 1, outputRowStride: dimension)
        try XCTSkipUnless(AttentionKernel.runsFused(layout), "The fused attention kernels need AVX-512.")
        var generator = RandomGenerator(seed: 11)
        let query = Tensor.randomNormal([batch * queryLength * layout.queryRowStride], generator: &generator)
        let keyValue = Tensor.randomNormal([batch * keyLength * layout.keyRowStride], generator: &generator)
        let outputGradient = Tensor.randomNormal([batch * queryLength * dimension], generator: &generator)

        func run(fused: Bool) -> (probabilities: [Float], output: [Float], query: [Float], keyValue: [Float]) {
            let output = Tensor.zeros([batch * queryLength * dimension])
            let probabilities = Tensor.zeros([batch * heads * queryLength * keyLength])
            AttentionKernel.forward(
                layout, query: query.storage.base, key: keyValue.storage.base, value: keyValue.storage.base,
                output: output.storage.base, probabilities: probabilities.storage.base, fused: fused)
            // Columns outside the heads must stay as they were: start from a marker.
            let queryGradient = Tensor(shape: [query.count], repeating: 7)
            let keyValueGradient = Tensor(shape: [keyValue.count], repeating: 7)
            AttentionKernel.backward(
                layout, query: query.storage.base, key: keyValue.storage.base, value: keyValue.storage.base,
                probabilities: probabilities.storage.base, outputGradient: outputGradient.storage.base,
                queryGradient: queryGradient.storage.base, keyGradient: keyValueGradient.storage.base,
                valueGradient: keyValueGradient.storage.base, fused: fused)
            return (probabilities.elements, output.elements, queryGradient.elements, keyValueGradient.elements)
        }
        let fused = run(fused: true), reference = run(fused: false)
        for (name, actual, expected) in [
            ("probabilities", fused.probabilities, reference.probabilities), ("output", fused.output, reference.output),
            ("query gradient", fused.query, reference.query), ("key and value gradient", fused.keyValue, reference.keyValue),
        ] {
            let largest = expected.map(abs).max() ?? 0
            let error = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(error, 1e-5 * max(largest, 1), "\(name): largest difference \(error)", file: file, line: line)
        }
        XCTAssertEqual(fused.query.filter { $0 == 7 }.count, reference.query.filter { $0 == 7 }.count, file: file, line: line)
    }

    func testTheFusedKernelsAgreeWithBLASAtTheMainJobsShape() throws {
        // 28-pixel crops, patches of 4: 50 tokens; ViT-Tiny's heads of 64 features.
        try assertPathsAgree(batch: 2, heads: 3, headDimension: 64, queryLength: 50, keyLength: 50)
    }

    func testTheFusedKernelsAgreeWithBLASOnRaggedShapes() throws {
        // Lengths off the 16-float vectors and the 6-row tiles, class attention's single query,
        // more keys than one tile's 64 columns, and heads wider than one tile.
        try assertPathsAgree(batch: 1, heads: 2, headDimension: 16, queryLength: 17, keyLength: 17)
        try assertPathsAgree(batch: 2, heads: 1, headDimension: 32, queryLength: 1, keyLength: 13)
        try assertPathsAgree(batch: 1, heads: 2, headDimension: 16, queryLength: 7, keyLength: 83)
        try assertPathsAgree(batch: 1, heads: 1, headDimension: 96, queryLength: 9, keyLength: 5)
    }
}
