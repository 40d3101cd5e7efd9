import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// The `koleo` task in a run: what it reads, and the runs it refuses.
final class KoLeoTaskTests: XCTestCase {
    private func recipe(tasks: [TaskSelection], classToken: Bool = true) -> TrainingRecipe {
        var backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        backbone.classToken = classToken
        return TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 32, localCount: 1, localSize: 16),
            tasks: tasks, epochs: 1, batchSize: 4)
    }

    /// The loss is the sum over the global crops (never the local ones) of each crop's KoLeo
    /// term on the student's image embedding, and its gradient reaches the backbone.
    func testLossSumsTheGlobalCropsOfTheStudentEmbedding() throws {
        let recipe = recipe(tasks: [TaskSelection(name: "koleo", weight: TaskWeight(KoLeoTask.defaultWeight))])
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        var generator = RandomGenerator(seed: 9)
        let views = recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) }
        let expected = (0..<2).map { Double(KoLeoTask.regularizer(trainer.backbone.features(views[$0]).classToken!).scalar) }
            .reduce(0, +)
        let loss = try XCTUnwrap(try trainer.lossAndGradients(views: views, epoch: 0, iteration: 0).terms["koleo.loss"])
        XCTAssertEqual(loss, expected, accuracy: 1e-6 * abs(expected))
        XCTAssertGreaterThan(trainer.backbone.blocks[0].attn.qkv.weight.gradient?.sumOfSquares ?? 0, 0)
    }

    func testRegisteredWithDINOv2sWeightAndNoOptions() throws {
        let entry = try TaskRegistry.builtIn.entry(named: "koleo")
        XCTAssertEqual(entry.defaultWeight, 0.1)
        XCTAssertTrue(entry.defaults.isEmpty)
        XCTAssertEqual(Preset.dinoV2.recipe.tasks.map(\.name), ["dino", "koleo", "ibot"])
        XCTAssertEqual(Preset.dinoV2.recipe.tasks[1].weight, 0.1)
        XCTAssertEqual(Preset.dinoV2.recipe.tasks[0].options["centering"], "sinkhorn")
    }

    func testRefusesABackboneWithoutImageEmbedding() {
        let recipe = recipe(tasks: [TaskSelection(name: "koleo")], classToken: false)
        XCTAssertThrowsError(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("'koleo' reads an image embedding"), "\(error)")
        }
    }

    func testRefusesABatchOfOneImagePerProcess() {
        var recipe = recipe(tasks: [TaskSelection(name: "koleo")], classToken: true)
        recipe.batchSize = 1
        XCTAssertThrowsError(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("'koleo' needs at least 2 images per process"), "\(error)")
        }
    }
}
