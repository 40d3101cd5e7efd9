import Foundation
import SSLCore
@testable import SSLPlugins
import SSLTestSupport
import XCTest

/// The schedules a recipe puts on the trainer: MoCo v3's against its official functions, and
/// warm-ups and freezes given in steps or as a share of the run.
final class ScheduleRecipeTests: XCTestCase {
    /// A tiny trainer for `recipe`'s optimisation and tasks, `iterationsPerEpoch` steps an epoch.
    private func trainer(_ recipe: TrainingRecipe, iterationsPerEpoch: Int) throws -> Trainer {
        var recipe = recipe
        recipe.backbone.embedDimension = 16
        recipe.backbone.depth = 1
        recipe.backbone.heads = 2
        recipe.backbone.patchSize = 4
        recipe.backbone.imageSize = 16
        recipe.views = ViewPlan(globalCount: 2, globalSize: 16)
        for index in recipe.tasks.indices where ["dino", "selfpatch"].contains(recipe.tasks[index].name) {
            recipe.tasks[index].options.merge(["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]) { $1 }
        }
        return try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: iterationsPerEpoch)
    }

    func testMoCoV3PresetSchedulesMatchTheOfficialFunctions() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Fixtures.folder)/moco_schedules.json"))
        let fixture = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var recipe = Preset.mocoV3.recipe
        recipe.batchSize = 256
        recipe.optimization.learningRate = try XCTUnwrap(fixture["base_lr"] as? Double)
        recipe.optimization.warmup = .epochs(try XCTUnwrap(fixture["warmup_epochs"] as? Int))
        recipe.optimization.teacherMomentum = try XCTUnwrap(fixture["moco_m"] as? Double)
        recipe.epochs = try XCTUnwrap(fixture["epochs"] as? Int)
        let trainer = try trainer(recipe, iterationsPerEpoch: try XCTUnwrap(fixture["iterations_per_epoch"] as? Int))
        let learningRates = try XCTUnwrap(fixture["learning_rates"] as? [Double])
        let momenta = try XCTUnwrap(fixture["momenta"] as? [Double])
        XCTAssertEqual(trainer.learningRateSchedule.count, learningRates.count)
        for (iteration, expected) in learningRates.enumerated() {
            XCTAssertEqual(trainer.learningRateSchedule.value(at: iteration), expected, accuracy: 1e-12, "lr at \(iteration)")
        }
        for (iteration, expected) in momenta.enumerated() {
            XCTAssertEqual(trainer.momentumSchedule.value(at: iteration), expected, accuracy: 1e-12, "momentum at \(iteration)")
        }
    }

    func testWarmupInStepsAndAsAShareOfTheRun() throws {
        var recipe = Preset.fashionMNIST.recipe
        recipe.epochs = 2
        recipe.batchSize = 256
        recipe.optimization.learningRate = 1
        recipe.optimization.minimumLearningRate = 0
        for (span, warmupIterations) in [(TrainingSpan.steps(30), 30), (.fraction(0.25), 50), (.epochs(1), 100)] {
            recipe.optimization.warmup = span
            let schedule = try trainer(recipe, iterationsPerEpoch: 100).learningRateSchedule
            XCTAssertEqual(schedule.warmupIterations, warmupIterations, "\(span)")
            XCTAssertEqual(schedule.value(at: 0), 0, "\(span)")
            XCTAssertEqual(schedule.value(at: warmupIterations - 1), 1, accuracy: 1e-12, "\(span) reaches the peak")
            XCTAssertLessThan(schedule.value(at: warmupIterations - 2), 1, "\(span) still rising")
            XCTAssertEqual(schedule.value(at: 199), 0, accuracy: 1e-3, "\(span) decays to the end")
        }
    }

    func testTeacherTemperatureWarmupAndLastLayerFreezeInSteps() throws {
        var recipe = Preset.fashionMNIST.recipe
        recipe.tasks = [TaskSelection(name: "dino", options: [
            "warmup-teacher-temp": "0.04", "teacher-temp": "0.07", "warmup-teacher-temp-epochs": "10%",
            "freeze-last-layer": "5 steps",
        ])]
        recipe.epochs = 1
        let trainer = try trainer(recipe, iterationsPerEpoch: 100)
        let dino = try XCTUnwrap(trainer.tasks.first?.task as? DINOTask)
        let temperatures = (0..<12).map { dino.loggedScheduleValues(iteration: $0)["teacher_temperature"]! }
        XCTAssertEqual(temperatures[0], 0.04, accuracy: 1e-12)
        XCTAssertEqual(temperatures[9], 0.07, accuracy: 1e-12)
        XCTAssertEqual(temperatures[11], 0.07, accuracy: 1e-12)
        XCTAssertEqual(temperatures[1] - temperatures[0], 0.03 / 9, accuracy: 1e-12, "rises every step")
        XCTAssertTrue(dino.isFrozen("head.last_layer.weight_v", iteration: 4))
        XCTAssertFalse(dino.isFrozen("head.last_layer.weight_v", iteration: 5))
        XCTAssertFalse(dino.isFrozen("head.mlp.0.weight", iteration: 0))
    }

    func testSpansParseAndRoundTripThroughJSON() throws {
        let cases: [(String, TrainingSpan)] = [
            ("10", .epochs(10)), ("1 epoch", .epochs(1)), ("3epochs", .epochs(3)), ("500 steps", .steps(500)),
            ("1 step", .steps(1)), ("25%", .fraction(0.25)), ("2.5%", .fraction(0.025)),
        ]
        for (text, span) in cases {
            XCTAssertEqual(try TrainingSpan(parsing: text), span, text)
            let encoded = try JSONEncoder().encode([span])
            XCTAssertEqual(try JSONDecoder().decode([TrainingSpan].self, from: encoded), [span], text)
        }
        XCTAssertEqual(try JSONDecoder().decode([TrainingSpan].self, from: Data("[7]".utf8)), [.epochs(7)], "a bare number is epochs")
        for bad in ["", "-3", "ten", "5 minutes", "150%", "-1 steps"] {
            XCTAssertThrowsError(try TrainingSpan(parsing: bad), bad)
        }
    }
}
