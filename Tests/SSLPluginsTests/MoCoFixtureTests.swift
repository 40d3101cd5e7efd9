import SSLCore
@testable import SSLPlugins
import SSLTestSupport
import XCTest

/// MoCo v3 against PyTorch: sine-cosine positions, frozen patch
/// projection, projector and predictor with per-view batch norm, the momentum update before the
/// keys, the symmetric scaled InfoNCE loss, gradients and batch-norm running statistics.
final class MoCoFixtureTests: XCTestCase {
    private var file: HDF5File!
    private var trainer: Trainer!
    private var moco: MoCoTask!
    private var views: [Tensor] = []

    static func ourKey(_ key: String) -> String {
        key.hasPrefix("head.") || key.hasPrefix("predictor.") ? "moco.\(key)" : "backbone.\(key)"
    }

    override func setUpWithError() throws {
        file = try Fixtures.open("moco_micro.h5")
        var configuration = try FixtureLoading.backbone(file)
        configuration.positionEmbedding = .sineCosine
        configuration.freezePatchProjection = true
        let backbone = VisionTransformer(configuration)
        let size = Int(try file.numericAttribute("img_size"))
        let setup = TaskSetup(backbone: configuration, views: ViewPlan(globalCount: 2, globalSize: size), epochs: 1,
                              iterationsPerEpoch: 1, seed: 0)
        moco = try TaskRegistry.builtIn.makeTask(
            named: "moco", options: ["dim": "16", "mlp-dim": "32", "temperature": "\(try file.numericAttribute("temperature"))"],
            setup: setup) as? MoCoTask
        var optimization = OptimizationConfiguration()
        optimization.teacherUpdate = .beforeForward
        optimization.decayAllParameters = true
        trainer = try Trainer(backbone: backbone, tasks: [WeightedTask(moco)], optimization: optimization, setup: setup,
                              globalBatchSize: Int(try file.numericAttribute("batch")))
        for (group, network) in [("base", trainer.student), ("momentum", trainer.teacher!)] {
            var state: [String: Tensor] = [:]
            for (key, value) in try FixtureLoading.state(file, group: group) { state[Self.ourKey(key)] = value }
            try network.load(state.filter { key, _ in network.stateDictionary().contains { $0.name == key } }, strict: false)
        }
        views = [try file.readTensor("inputs/view1"), try file.readTensor("inputs/view2")]
        trainer.updateTeacher(momentum: try file.numericAttribute("momentum"))
    }

    func testSineCosinePositionTable() throws {
        assertClose(VisionTransformer.sineCosineTable(grid: 4, dimension: 48, classSlots: 1), try file.readTensor("pos_table"),
                    absoluteTolerance: 1e-6, "grid 4")
        assertClose(VisionTransformer.sineCosineTable(grid: 14, dimension: 48, classSlots: 1), try file.readTensor("pos_table_grid14"),
                    absoluteTolerance: 1e-6, "grid 14")
        XCTAssertFalse(trainer.backbone.positionTable.requiresGradient, "the table is fixed")
        XCTAssertFalse(trainer.backbone.patchEmbed.weight.requiresGradient, "the patch projection is frozen")
    }

    func testQueriesKeysAndLogits() throws {
        for (index, name) in ["q1", "q2"].enumerated() {
            let query = moco.predictor(moco.projector(trainer.backbone.features(views[index]).classToken!))
            assertClose(query, try file.readTensor(name), absoluteTolerance: 1e-5, name)
        }
        var keys: [Tensor] = []
        for (index, name) in ["k1", "k2"].enumerated() {
            keys.append(moco.momentumProjector(trainer.teacherBackbone!.features(views[index]).classToken!))
            assertClose(keys[index], try file.readTensor(name), absoluteTolerance: 1e-5, name)
        }
        let logits = try file.readTensor("q1").l2Normalized().matmul(keys[1].l2Normalized().transposed())
            / Float(try file.numericAttribute("temperature"))
        assertClose(logits, try file.readTensor("logits_12"), absoluteTolerance: 1e-5, "logits q1·k2")
    }

    func testLossGradientsRunningStatisticsAndMomentumUpdate() throws {
        let result = try trainer.lossAndGradients(views: views, epoch: 0, iteration: 0)
        for (name, value) in [("loss_12", result.terms["moco.ctr_12"]!), ("loss_21", result.terms["moco.ctr_21"]!),
                              ("loss", result.loss)] {
            let expected = try file.readDoubles(name)[0]
            XCTAssertEqual(value, expected, accuracy: 1e-5 * abs(expected), name)
        }
        let references = Set(try file.members(of: "grads"))
        for (name, parameter) in trainer.student.trainableParameters() {
            let key = name.hasPrefix("backbone.") ? String(name.dropFirst("backbone.".count)) : String(name.dropFirst("moco.".count))
            XCTAssertTrue(references.contains(key), "reference gradient for \(key)")
            try assertGradient(parameter.gradient!, matches: file, at: "grads/\(key)")
        }
        XCTAssertEqual(references.count, trainer.student.trainableParameters().count, "no gradient for the frozen tensors")
        for (group, network) in [("base_after", trainer.student), ("momentum_after", trainer.teacher!)] {
            let expected = try FixtureLoading.state(file, group: group)
            for (name, tensor) in network.stateDictionary() {
                let key = name.hasPrefix("backbone.") ? String(name.dropFirst("backbone.".count)) : String(name.dropFirst("moco.".count))
                assertClose(tensor, try XCTUnwrap(expected[key], key), absoluteTolerance: 1e-6, relativeTolerance: 1e-6, "\(group) \(key)")
            }
        }
    }
}
