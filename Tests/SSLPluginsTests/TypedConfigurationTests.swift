import Foundation
import SSLCore
@testable import SSLPlugins
import XCTest

/// A task configured in code goes into a recipe, through JSON (as a checkpoint stores it) and
/// back into the same task.
final class TypedConfigurationTests: XCTestCase {
    func testAConfigurationBuiltInCodeRoundTripsThroughARecipe() throws {
        var configuration = DINOTask.Configuration()
        configuration.distillation.outputDimension = 123
        configuration.distillation.teacherTemperature = 0.07
        configuration.distillation.centering = .sinkhorn
        configuration.distillation.lastLayerFreeze = .steps(5)
        configuration.distillation.normalizeLastLayer = false
        configuration.centerOverAllCrops = true
        let selection = TaskSelection(DINOTask.self, configuration: configuration, weight: try TaskWeight(parsing: "1@0:0.5@100%"))
        XCTAssertEqual(selection.name, "dino")
        XCTAssertNil(selection.options["hidden-dim"], "defaults are not spelt out")

        let recipe = TrainingRecipe(
            backbone: VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32),
            views: ViewPlan(globalCount: 2, globalSize: 32), tasks: [selection], epochs: 1, batchSize: 4)
        let stored = try JSONDecoder().decode(TrainingRecipe.self, from: JSONEncoder().encode(recipe))
        XCTAssertEqual(stored, recipe)
        let trainer = try stored.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        let rebuilt = try XCTUnwrap(trainer.tasks.first?.task as? DINOTask).configuration
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        XCTAssertEqual(String(decoding: try encoder.encode(rebuilt), as: UTF8.self),
                       String(decoding: try encoder.encode(configuration), as: UTF8.self))
    }

    /// A temperature that is not positive, a centre momentum outside 0…1 or an unknown centring
    /// is refused when the task is built, with the option's name, for every task that distils
    /// through a head.
    func testDistillationOptionsThatLeaveTheTargetsUndefinedAreRefusedByName() {
        let cases = [
            ("dino", "teacher-temp", "0", "--dino.teacher-temp must be positive (the logits are divided by it), got 0.0."),
            ("selfpatch", "student-temp", "-0.1", "--selfpatch.student-temp must be positive (the logits are divided by it), got -0.1."),
            ("regiondino", "warmup-teacher-temp", "0", "--regiondino.warmup-teacher-temp must be positive"),
            ("ibot", "center-momentum", "1.5", "--ibot.center-momentum must lie in 0…1, got 1.5."),
            ("dino", "centering", "mean", "--dino.centering: expects ema or sinkhorn, got 'mean'."),
            ("pastedino", "pooling", "mean", "--pastedino.pooling: expects garment, patch or scene, got 'mean'."),
            // Not a number: the message states no bound, since the task's own (at least 2 regions) comes later.
            ("regiondino", "regions", "abc", "--regiondino.regions expects a whole number, got 'abc'."),
            ("regiondino", "regions", "-1", "--regiondino.regions expects a whole number ≥ 0, got '-1'."),
            ("regiondino", "regions", "1", "--regiondino.regions must be at least 2, got 1."),
        ]
        for (task, option, value, message) in cases {
            let recipe = TrainingRecipe(
                backbone: VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32),
                views: ViewPlan(globalCount: 2, globalSize: 32),
                tasks: [TaskSelection(name: task, options: [option: value, "out-dim": "16"])], epochs: 1, batchSize: 4)
            XCTAssertThrowsError(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2), "\(task).\(option)") { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }

    func testADefaultConfigurationHasNoOptions() {
        XCTAssertEqual(TaskSelection(DINOTask.self, configuration: DINOTask.Configuration()).options, [:])
        XCTAssertEqual(TaskSelection(KoLeoTask.self, configuration: KoLeoTask.Configuration()).weight, 0.1)
    }
}
