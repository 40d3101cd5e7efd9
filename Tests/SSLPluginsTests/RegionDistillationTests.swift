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

    /// The step's loss, recomputed by hand from the backbones' tokens: for every global crop as
    /// target and every other crop, the student tokens averaged over the patches that show each
    /// teacher region, against the teacher tokens averaged over that region, through the heads;
    /// cross-entropy of the student's softmax at 0.1 against the teacher's at 0.04 (the centre is
    /// zero at the first step), averaged over regions and then over the 4 crop pairs.
    func testTheLossIsTheCrossEntropyOfPooledRegionsOverCropPairs() throws {
        let recipe = recipe()
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        let task = try XCTUnwrap(trainer.tasks[0].task as? RegionDistillationTask)
        var generator = RandomGenerator(seed: 5)
        let views = recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) }
        let geometry = [
            Array(repeating: CropGeometry(left: 0, top: 0, right: 0.75, bottom: 0.75), count: 3),
            Array(repeating: CropGeometry(left: 0.25, top: 0.25, right: 1, bottom: 1, isFlipped: true), count: 3),
            Array(repeating: CropGeometry(left: 0.25, top: 0, right: 0.75, bottom: 0.5), count: 3),
        ]
        let teacherTokens = views.prefix(2).map { trainer.teacherBackbone!.features($0).outputPatches }
        let studentTokens = views.map { trainer.backbone.features($0).outputPatches }
        let step = try trainer.lossAndGradients(views: views, geometry: geometry, epoch: 0, iteration: 0)

        /// The mean of `tokens[image]`'s rows at `patches`.
        func mean(_ tokens: Tensor, image: Int, patches: [Int]) -> [Float] {
            let count = tokens.shape[1], width = tokens.shape[2], values = tokens.elements
            return (0..<width).map { index in
                patches.map { values[(image * count + $0) * width + index] }.reduce(0, +) / Float(patches.count)
            }
        }
        func logSoftmax(_ row: [Float], temperature: Double) -> [Double] {
            let scaled = row.map { Double($0) / temperature }, largest = scaled.max()!
            let logTotal = log(scaled.map { exp($0 - largest) }.reduce(0, +)) + largest
            return scaled.map { $0 - logTotal }
        }
        var pairLosses: [Double] = []
        for target in 0..<2 {
            let teacher = teacherTokens[target]
            let assignment = RegionClustering(regions: 3, iterations: 10)
                .assign(teacher.reshaped([-1, teacher.shape[2]]), patchesPerImage: 16)
            for view in 0..<3 where view != target {
                let side = view < 2 ? 4 : 2
                var teacherRows: [Float] = [], studentRows: [Float] = []
                for image in 0..<3 {
                    let matches = CropGeometry.correspondingPatches(
                        from: geometry[view][image], to: geometry[target][image],
                        sourceGrid: PatchGrid(height: side, width: side), targetGrid: PatchGrid(height: 4, width: 4))
                    var studentPatches: [Int: [Int]] = [:]
                    for (patch, match) in matches.enumerated() {
                        if let match { studentPatches[assignment.region(image: image, patch: match), default: []].append(patch) }
                    }
                    for region in studentPatches.keys.sorted() {
                        let members = (0..<16).filter { assignment.region(image: image, patch: $0) == region }
                        teacherRows += mean(teacher, image: image, patches: members)
                        studentRows += mean(studentTokens[view], image: image, patches: studentPatches[region]!)
                    }
                }
                let rows = teacherRows.count / 24
                let teacherLogits = task.distillation.teacherHead(Tensor(shape: [rows, 24], elements: teacherRows)).elements
                let studentLogits = task.distillation.head(Tensor(shape: [rows, 24], elements: studentRows)).elements
                let width = teacherLogits.count / rows
                let crossEntropies = (0..<rows).map { row -> Double in
                    let slice = (row * width)..<((row + 1) * width)
                    let targets = logSoftmax(Array(teacherLogits[slice]), temperature: 0.04).map { exp($0) }
                    let student = logSoftmax(Array(studentLogits[slice]), temperature: 0.1)
                    return -zip(targets, student).map { $0 * $1 }.reduce(0, +)
                }
                pairLosses.append(crossEntropies.reduce(0, +) / Double(rows))
            }
        }
        XCTAssertEqual(pairLosses.count, 4)
        let expected = pairLosses.reduce(0, +) / 4
        let loss = try XCTUnwrap(step.terms["regiondino.loss"])
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected, "regiondino loss")
    }

    func testRefusesFewerThanTwoRegions() {
        XCTAssertThrowsError(try recipe(regions: 1).makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("--regiondino.regions must be at least 2, got 1"), "\(error)")
        }
    }
}
