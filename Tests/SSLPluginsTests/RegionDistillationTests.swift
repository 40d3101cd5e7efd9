import SSLCore
@testable import SSLPlugins
import SSLTestSupport
import XCTest

/// The `regiondino` task: its k-means regions, its pooling, and a step through the trainer.
final class RegionDistillationTests: XCTestCase {
    /// Two images of 8 patches: in the first, patches 0–4 lie near one direction and 5–7 near
    /// another; in the second, the even patches near a third direction and the odd ones near a fourth.
    private func twoGroupTokens() -> Tensor {
        var generator = RandomGenerator(seed: 4)
        let dimension = 6
        let noise = Tensor.randomNormal([16, dimension], generator: &generator).elements
        var values = [Float](repeating: 0, count: 16 * dimension)
        for patch in 0..<16 {
            let axis = patch < 8 ? (patch < 5 ? 0 : 1) : (patch % 2 == 0 ? 2 : 3)
            for index in 0..<dimension {
                values[patch * dimension + index] = (index == axis ? 5 : 0) + 0.3 * noise[patch * dimension + index]
            }
        }
        return Tensor(shape: [16, dimension], elements: values)
    }

    func testKMeansFindsTheGroupsOfEachImage() {
        let assignment = RegionClustering(regions: 2, iterations: 5).assign(twoGroupTokens(), patchesPerImage: 8)
        XCTAssertEqual(assignment.labels, [[0, 0, 0, 0, 0, 1, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1]])
        XCTAssertEqual(assignment.regionCount, 4)
        XCTAssertEqual((0..<2).map { assignment.row(image: 1, region: $0) }, [2, 3])
    }

    func testMoreRegionsThanGroupsNeverJoinTwoGroups() {
        let assignment = RegionClustering(regions: 4, iterations: 10).assign(twoGroupTokens(), patchesPerImage: 8)
        for (image, labels) in assignment.labels.enumerated() {
            let groups = image == 0 ? (0..<8).map { $0 < 5 } : (0..<8).map { $0 % 2 == 0 }
            for first in 0..<8 {
                for second in 0..<8 where labels[first] == labels[second] {
                    XCTAssertEqual(groups[first], groups[second], "image \(image): patches \(first) and \(second) share a region")
                }
            }
            XCTAssertEqual(Set(labels), Set(0..<Set(labels).count), "regions are numbered from 0 without gaps")
        }
        XCTAssertGreaterThanOrEqual(assignment.regionCount, 4)
    }

    func testPoolingAveragesTheMembersOfEachRegionAndSkipsUnassignedPatches() {
        let tokens = Tensor(shape: [6, 2], elements: [1, 0, 3, 0, 0, 5, 2, 2, 4, 4, 9, 9])
        let pooling = RegionPooling(regions: [[1, 1, 0], [0, nil, 0]], patchesPerImage: 3)
        XCTAssertEqual(pooling.rows.map(\.image), [0, 0, 1])
        XCTAssertEqual(pooling.rows.map(\.region), [0, 1, 0])
        XCTAssertEqual(pooling.matrix.matmul(tokens).elements, [0, 5, 2, 0, 5.5, 5.5])
    }

    private func recipe(regions: Int = 3) -> TrainingRecipe {
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 4, imageSize: 16)
        let options = ["regions": "\(regions)", "out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]
        return TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 16, localCount: 1, localSize: 8),
            tasks: [TaskSelection(name: "regiondino", options: options)], epochs: 1, batchSize: 3)
    }

    /// A step pools only the regions a crop shows: the local crop of the top-left quarter of the
    /// image sees at most the regions of that quarter, and the loss's gradient reaches the backbone.
    func testAStepDistilsTheRegionsEachCropShows() throws {
        let recipe = recipe()
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        var generator = RandomGenerator(seed: 2)
        let views = recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) }
        let quarter = CropGeometry(left: 0, top: 0, right: 0.5, bottom: 0.5)
        let geometry = [
            Array(repeating: CropGeometry.wholeImage, count: 3),
            Array(repeating: CropGeometry(left: 0, top: 0, right: 1, bottom: 1, isFlipped: true), count: 3),
            Array(repeating: quarter, count: 3),
        ]
        let result = try trainer.lossAndGradients(views: views, geometry: geometry, epoch: 0, iteration: 0)
        let loss = try XCTUnwrap(result.terms["regiondino.loss"])
        XCTAssertTrue(loss.isFinite && loss > 0, "loss \(loss)")
        let regions = try XCTUnwrap(result.terms["regiondino.regions_per_crop"])
        XCTAssertTrue((1...3).contains(regions), "regions per crop \(regions)")
        XCTAssertGreaterThan(trainer.backbone.blocks[0].attn.qkv.weight.gradient?.sumOfSquares ?? 0, 0)

        // The local crop's patches correspond to the quarter's 2×2 teacher patches of a 4×4 grid.
        let matches = CropGeometry.correspondingPatches(
            from: quarter, to: .wholeImage, sourceGrid: PatchGrid(height: 2, width: 2), targetGrid: PatchGrid(height: 4, width: 4))
        XCTAssertEqual(matches, [0, 1, 4, 5])
    }

    func testRefusesFewerThanTwoRegions() {
        XCTAssertThrowsError(try recipe(regions: 1).makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("--regiondino.regions must be at least 2, got 1"), "\(error)")
        }
    }
}
