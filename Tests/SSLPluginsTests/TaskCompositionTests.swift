import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// Mixing tasks by weight: one shared forward and one backward must equal the weighted sum of
/// the tasks run alone, and combinations that cannot work must fail before training.
final class TaskCompositionTests: XCTestCase {
    private func microRecipe(tasks: [TaskSelection]) -> TrainingRecipe {
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        let head = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]
        return TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 32, localCount: 2, localSize: 24),
            tasks: tasks.map { selection in
                let defaults = selection.name == "moco" ? [:] : head
                return TaskSelection(name: selection.name, weight: selection.weight, options: defaults.merging(selection.options) { $1 })
            },
            epochs: 1, batchSize: 2)
    }

    private func views(_ recipe: TrainingRecipe, seed: UInt64 = 5) -> [Tensor] {
        var generator = RandomGenerator(seed: seed)
        return recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) }
    }

    /// Runs the given tasks of `trainer` on one shared forward and returns the weighted loss and
    /// every student gradient, restoring the tasks' state afterwards.
    private func gradients(_ trainer: Trainer, tasks: [Int], views: [Tensor]) -> (loss: Double, gradients: [String: Tensor]) {
        let saved = trainer.tasks.flatMap { $0.task.state.map { ($0.tensor, $0.tensor.copy()) } }
        defer { for (tensor, copy) in saved { tensor.assign(copy) } }
        let forward = SharedForward(views: views, globalViewCount: 2, student: trainer.backbone, teacher: trainer.teacherBackbone)
        for index in tasks { trainer.tasks[index].task.prepare(forward) }
        let step = TaskStep(forward: forward, epoch: 0, iteration: 0)
        let total = tasks.map { index in
            trainer.tasks[index].task.loss(step).total * Float(trainer.tasks[index].weight.value(at: 0))
        }.reduce(Tensor(scalar: 0), +)
        trainer.student.clearGradients()
        total.backward()
        var result: [String: Tensor] = [:]
        for (name, parameter) in trainer.student.trainableParameters() {
            result[name] = parameter.gradient ?? Tensor.zeros(parameter.shape)
        }
        return (Double(total.scalar), result)
    }

    func testWeightedMixEqualsTheWeightedSumOfTasksAlone() throws {
        let recipe = microRecipe(tasks: [TaskSelection(name: "dino"), TaskSelection(name: "selfpatch", weight: 0.1)])
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        trainer.backbone.setTraining(false)  // no stochastic depth: the passes must see the same network
        let inputs = views(recipe)
        let mixed = gradients(trainer, tasks: [0, 1], views: inputs)
        let dino = gradients(trainer, tasks: [0], views: inputs)
        let selfPatch = gradients(trainer, tasks: [1], views: inputs)
        XCTAssertEqual(mixed.loss, dino.loss + selfPatch.loss, accuracy: 1e-5 * abs(mixed.loss))
        for (name, gradient) in mixed.gradients {
            let expected = dino.gradients[name]! + selfPatch.gradients[name]!
            if expected.elements.allSatisfy({ $0 == 0 }) {
                XCTAssertTrue(gradient.elements.allSatisfy { $0 == 0 }, name)
            } else {
                assertRelativeError(gradient, expected, below: 1e-5, name)
            }
        }
        XCTAssertTrue(mixed.gradients.keys.contains("selfpatch.p_head.mlp.0.weight"))
        XCTAssertTrue(mixed.gradients.keys.contains("dino.head.mlp.0.weight"))
    }

    func testTrainerStepsAndLogsEveryNamedTerm() throws {
        let recipe = microRecipe(tasks: [TaskSelection(name: "dino"), TaskSelection(name: "selfpatch", weight: 0.1),
                                         TaskSelection(name: "moco", options: ["dim": "8", "mlp-dim": "16"])])
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 4)
        let before = trainer.backbone.blocks[0].attn.qkv.weight.copy()
        let report = try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 0)
        for key in ["dino.loss", "selfpatch.loss", "moco.loss", "moco.ctr_12", "dino.teacher_temperature", "dino.teacher_entropy", "dino.teacher_kl_uniform", "dino.embedding_std"] {
            XCTAssertNotNil(report.terms[key], key)
        }
        let expected = report.terms["dino.loss"]! + 0.1 * report.terms["selfpatch.loss"]! + report.terms["moco.loss"]!
        XCTAssertEqual(report.loss, expected, accuracy: 1e-5 * abs(expected))
        XCTAssertEqual(report.learningRate, 0, "the warm-up starts at 0")
        _ = try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 1)
        XCTAssertNotEqual(trainer.backbone.blocks[0].attn.qkv.weight.elements, before.elements, "the backbone trains")
    }

    func testNonFiniteLossStopsWithAClearError() throws {
        let recipe = microRecipe(tasks: [TaskSelection(name: "dino")])
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        var inputs = views(recipe)
        inputs[0] = inputs[0] * Float.nan
        XCTAssertThrowsError(try trainer.step(views: inputs, epoch: 0, iterationInEpoch: 0)) { error in
            XCTAssertTrue("\(error)".contains("not finite"), "\(error)")
            XCTAssertTrue("\(error)".contains("dino.loss"), "names the term: \(error)")
        }
    }

    func testIncompatibleCombinationsFailBeforeTraining() {
        var tooSmall = microRecipe(tasks: [TaskSelection(name: "selfpatch")])
        tooSmall.views.localSize = 16  // a 2×2 patch grid has no 8 distinct neighbours
        XCTAssertThrowsError(try tooSmall.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("3×3"), "\(error)")
        }
        var oneGlobal = microRecipe(tasks: [TaskSelection(name: "dino")])
        oneGlobal.views.globalCount = 1
        XCTAssertThrowsError(try oneGlobal.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("2 global crops"), "\(error)")
        }
        var noClassToken = microRecipe(tasks: [TaskSelection(name: "dino")])
        noClassToken.backbone.classToken = false
        XCTAssertThrowsError(try noClassToken.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("no class token"), "\(error)")
        }
        XCTAssertThrowsError(try microRecipe(tasks: [TaskSelection(name: "dino"), TaskSelection(name: "dino")])
            .makeTrainer(registry: .builtIn, iterationsPerEpoch: 1))
        XCTAssertThrowsError(try microRecipe(tasks: [TaskSelection(name: "rotation")])
            .makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("Available tasks"), "\(error)")
        }
    }

    func testOriginalSelfPatchNeedsNoClassTokenWhenItProvidesTheEmbedding() throws {
        var recipe = microRecipe(tasks: [TaskSelection(name: "dino", options: ["center-all-crops": "true"]),
                                         TaskSelection(name: "selfpatch", weight: 0.1, options: ["image-embedding": "true"])])
        recipe.backbone.classToken = false
        recipe.backbone.finalNorm = false
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        XCTAssertNoThrow(try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 0))
    }
}
