import SSLCore
import SSLTestSupport
import XCTest

/// Batched feature extraction equals one pass over all images.
final class EvalFeatureExtractionTests: XCTestCase {
    func testBatchesMatchOnePassAndModeIsRestored() throws {
        for classToken in [true, false] {
            let backbone = VisionTransformer(
                VisionTransformerConfiguration(
                    embedDimension: 8, depth: 1, heads: 2, patchSize: 4, imageSize: 8, classToken: classToken),
                seed: 3)
            var generator = RandomGenerator(seed: 4)
            let images = Tensor.randomNormal([5, 3, 8, 8], generator: &generator)
            let whole = GradientMode.withoutGradient { backbone.features(images) }
            let readout: FeatureReadout = classToken ? .classToken : .meanPatch
            let extracted = FeatureNetwork(backbone: backbone).extractFeatures(images, batchSize: 2, readout: readout, includePatches: true)
            XCTAssertTrue(backbone.isTraining)
            let expectedImages = whole.classToken ?? whole.outputPatches.mean(axes: [1])
            assertClose(extracted.images, expectedImages, absoluteTolerance: 1e-6, "image features, class token \(classToken)")
            let patches = try XCTUnwrap(extracted.patches)
            XCTAssertEqual(patches.gridHeight, 2)
            XCTAssertEqual(patches.gridWidth, 2)
            assertClose(patches.tokens, whole.outputPatches, absoluteTolerance: 1e-6, "patch tokens")
            XCTAssertNil(FeatureNetwork(backbone: backbone).extractFeatures(images, readout: readout).patches)
        }
    }
}
