import SSLCore
import SSLTestSupport
import XCTest

/// DINO's bicubic position-table interpolation (`interpolate_pos_encoding` in DINO's `vision_transformer.py`) against PyTorch.
final class PositionEmbeddingTests: XCTestCase {
    func testInterpolationMatchesPyTorch() throws {
        let file = try Fixtures.open("pos_embed_interp.h5")
        let model = VisionTransformer(
            VisionTransformerConfiguration(embedDimension: 48, depth: 0, heads: 1, patchSize: 16, imageSize: 224))
        model.positionTable.assign(try file.readTensor("table"))
        for (name, height, width) in [("grid6", 6, 6), ("grid7x5", 7, 5), ("grid20", 20, 20)] {
            assertClose(model.positionEmbedding(height: height, width: width), try file.readTensor(name),
                        absoluteTolerance: 1e-5, relativeTolerance: 1e-5, name)
        }
        XCTAssertTrue(model.positionEmbedding(height: 14, width: 14) === model.positionTable, "reference grid used as is")
    }
}
