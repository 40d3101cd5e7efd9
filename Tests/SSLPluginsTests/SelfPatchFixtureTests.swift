import SSLCore
@testable import SSLPlugins
import SSLTestSupport
import XCTest

/// SelfPatch in its original form — backbone without class token and final norm, DINO's
/// image-level loss on the aggregation head's class token with the centre over all crops,
/// weights dino = 1 and selfpatch = 0.1 — against PyTorch.
final class SelfPatchFixtureTests: XCTestCase {
    private var file: HDF5File!
    private var trainer: Trainer!
    private var dino: DINOTask!
    private var selfPatch: SelfPatchTask!
    private var inputs: [Tensor] = []

    /// Fixture keys `c_head.*` belong to the dino task; `ca_head.*`, `p_head.*` to selfpatch.
    static func ourKey(_ key: String) -> String {
        if key.hasPrefix("c_head.") { return "dino.head." + key.dropFirst("c_head.".count) }
        if key.hasPrefix("ca_head.") || key.hasPrefix("p_head.") { return "selfpatch." + key }
        return key
    }

    override func setUpWithError() throws {
        file = try Fixtures.open("selfpatch_micro.h5")
        let backbone = VisionTransformer(try FixtureLoading.backbone(file, classToken: false, finalNorm: false))
        let views = ViewPlan(globalCount: 2, globalSize: 224, localCount: 2, localSize: 96)
        let setup = TaskSetup(backbone: backbone.configuration, views: views, epochs: 1, iterationsPerEpoch: 1, seed: 0)
        let head = ["hidden-dim": "64", "bottleneck-dim": "32"]
        dino = try TaskRegistry.builtIn.makeTask(
            named: "dino", options: head.merging(["out-dim": "128", "center-all-crops": "true"]) { $1 }, setup: setup) as? DINOTask
        selfPatch = try TaskRegistry.builtIn.makeTask(
            named: "selfpatch", options: head.merging(["out-dim": "64", "image-embedding": "true"]) { $1 }, setup: setup) as? SelfPatchTask
        trainer = try Trainer(
            backbone: backbone, tasks: [WeightedTask(dino), WeightedTask(selfPatch, weight: ConstantSchedule(0.1))],
            optimization: OptimizationConfiguration(), setup: setup, globalBatchSize: 2)
        try FixtureLoading.loadNetworks(file, into: trainer, rename: Self.ourKey)
        dino.distillation.targets.center.assign(try file.readTensor("centers_before/center"))
        selfPatch.distillation.targets.center.assign(try file.readTensor("centers_before/patch_center"))
        inputs = try (0..<4).map { try file.readTensor("inputs/crop\($0)") }
    }

    func testNeighbourTablesWrapAroundTheGrid() throws {
        for grid in [14, 6] {
            let table = NeighborTable(height: grid, width: grid)
            XCTAssertEqual(table.neighbors.flatMap { $0 }, try file.readIntegers("neighbors_\(grid)"), "grid \(grid)")
        }
        XCTAssertEqual(NeighborTable(height: 14, width: 14).neighbors[0], [1, 13, 14, 15, 27, 182, 183, 195])
        XCTAssertEqual(NeighborTable(height: 14, width: 14).neighbors[195], [0, 12, 13, 168, 180, 181, 182, 194])
    }

    func testTeacherMatchingAggregationAndHeads() throws {
        for view in 0..<4 {
            let group = "teacher/crop\(view)"
            let teacher = trainer.featureNetwork(.teacher)
            let features = teacher.features(inputs[view])
            let tokens = features.lastBlockPatches
            assertClose(tokens, try file.readTensor("\(group)/tokens"), absoluteTolerance: 1e-5, relativeTolerance: 1e-5, "\(group) tokens")
            let table = NeighborTable(height: features.gridHeight, width: features.gridWidth)
            assertClose(table.similarities(tokens), try file.readTensor("\(group)/similarity"), absoluteTolerance: 2e-6, "\(group) similarity")
            let slots = table.similarities(tokens).topK(4).indices
            XCTAssertEqual(slots, try file.readIntegers("\(group)/topk"), "\(group) top-k neighbours")
            let chosen = table.mostSimilarNeighbors(tokens, count: 4)
            let neighbors = tokens.reshaped([-1, 48]).gatherRows(chosen).reshaped([-1, 4, 48])
            let aggregated = try file.readTensor("\(group)/aggregated")
            let patchRows = aggregated.sliced(1..<aggregated.shape[1], axis: 1).reshaped([-1, 48])
            assertClose(selfPatch.teacherAggregator.summary(of: neighbors), patchRows, absoluteTolerance: 1e-5, "\(group) aggregated patches")
            let classRow = aggregated.sliced(0..<1, axis: 1).reshaped([2, 48])
            assertClose(teacher.imageEmbedding(of: features), classRow, absoluteTolerance: 1e-5, "\(group) aggregated class token")
            assertClose(dino.distillation.teacherHead(classRow), try file.readTensor("\(group)/cls_logits"), absoluteTolerance: 1e-5, "\(group) cls logits")
            assertClose(selfPatch.distillation.teacherHead(patchRows), try file.readTensor("\(group)/patch_logits").reshaped([-1, 64]),
                        absoluteTolerance: 1e-5, "\(group) patch logits")

            let studentGroup = "student/crop\(view)"
            let caOut = try file.readTensor("\(studentGroup)/ca_out")
            let student = trainer.featureNetwork(.student), studentFeatures = student.features(inputs[view])
            assertClose(student.imageEmbedding(of: studentFeatures), caOut.sliced(0..<1, axis: 1).reshaped([2, 48]),
                        absoluteTolerance: 1e-5, "\(studentGroup) class token")
            let studentPatches = selfPatch.aggregator.norm(studentFeatures.lastBlockPatches)
            assertClose(studentPatches, caOut.sliced(1..<caOut.shape[1], axis: 1), absoluteTolerance: 1e-5, "\(studentGroup) patch tokens")
        }
    }

    func testLossesCentresAndGradientsOfTheOriginalRecipe() throws {
        let result = try trainer.lossAndGradients(views: inputs, epoch: 0, iteration: 0)
        for (name, term) in [("loss_cls", "dino.loss"), ("loss_patch", "selfpatch.loss")] {
            let expected = try file.readDoubles(name)[0]
            XCTAssertEqual(try XCTUnwrap(result.terms[term]), expected, accuracy: 1e-5 * abs(expected), name)
        }
        XCTAssertEqual(result.loss, try file.readDoubles("loss")[0], accuracy: 1e-5 * abs(try file.readDoubles("loss")[0]))
        assertClose(dino.distillation.targets.center, try file.readTensor("center_after"), absoluteTolerance: 1e-6, "image centre")
        assertClose(selfPatch.distillation.targets.center, try file.readTensor("patch_center_after"), absoluteTolerance: 1e-6, "patch centre")

        let expected = try FixtureLoading.state(file, group: "grads")
        var compared = 0
        for (name, parameter) in trainer.student.trainableParameters() {
            guard let key = expected.keys.first(where: { Self.ourKey($0) == name }) else {
                XCTFail("no reference gradient for \(name)")
                continue
            }
            try assertGradient(parameter.gradient!, matches: file, at: "grads/\(key)")
            compared += 1
        }
        XCTAssertEqual(compared, expected.count, "every reference gradient compared")
    }
}
