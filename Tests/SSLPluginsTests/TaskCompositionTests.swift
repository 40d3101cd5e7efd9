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

    /// The forward and backward half of `trainer`'s first step on `views`: the weighted loss,
    /// every student gradient and the norm of the gradient each task sends into the backbone, by
    /// task name. Restores the tasks' state afterwards.
    private func gradients(
        _ trainer: Trainer, views: [Tensor]
    ) throws -> (loss: Double, gradients: [String: Tensor], backboneGradientNorms: [String: Double]) {
        let saved = trainer.tasks.flatMap { $0.task.state.map { ($0.tensor, $0.tensor.copy()) } }
        defer { for (tensor, copy) in saved { tensor.assign(copy) } }
        let result = try trainer.lossAndGradients(views: views, epoch: 0, iteration: 0)
        var gradients: [String: Tensor] = [:]
        for (name, parameter) in trainer.student.trainableParameters() {
            gradients[name] = parameter.gradient ?? Tensor.zeros(parameter.shape)
        }
        var norms: [String: Double] = [:]
        for entry in trainer.tasks { norms[entry.name] = result.terms["\(entry.name).backbone_gradient_norm"] }
        return (result.loss, gradients, norms)
    }

    private func assertSameGradients(_ actual: [String: Tensor], _ expected: [String: Tensor], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(actual.keys), Set(expected.keys), file: file, line: line)
        for (name, gradient) in actual {
            guard let wanted = expected[name] else { continue }
            if wanted.elements.allSatisfy({ $0 == 0 }) {
                XCTAssertTrue(gradient.elements.allSatisfy { $0 == 0 }, name, file: file, line: line)
            } else {
                assertRelativeError(gradient, wanted, below: 1e-5, name, file: file, line: line)
            }
        }
    }

    /// A mix, and the same tasks each in a run of its own (the same seed gives the same
    /// backbone and heads).
    private func mixAndAlone() throws -> (mixed: Trainer, dino: Trainer, selfPatch: Trainer, views: [Tensor]) {
        let dino = TaskSelection(name: "dino"), selfPatch = TaskSelection(name: "selfpatch", weight: 0.1)
        let recipe = microRecipe(tasks: [dino, selfPatch])
        return (try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1),
                try microRecipe(tasks: [dino]).makeTrainer(registry: .builtIn, iterationsPerEpoch: 1),
                try microRecipe(tasks: [selfPatch]).makeTrainer(registry: .builtIn, iterationsPerEpoch: 1),
                views(recipe))
    }

    func testWeightedMixEqualsTheWeightedSumOfTasksAlone() throws {
        let (mixedTrainer, dinoTrainer, selfPatchTrainer, inputs) = try mixAndAlone()
        let mixed = try gradients(mixedTrainer, views: inputs)
        let dino = try gradients(dinoTrainer, views: inputs)
        let selfPatch = try gradients(selfPatchTrainer, views: inputs)
        XCTAssertEqual(mixed.loss, dino.loss + selfPatch.loss, accuracy: 1e-5 * abs(mixed.loss))
        assertSameGradients(mixed.gradients, dino.gradients.merging(selfPatch.gradients) { $0 + $1 })
        XCTAssertTrue(mixed.gradients.keys.contains("selfpatch.p_head.mlp.0.weight"))
        XCTAssertTrue(mixed.gradients.keys.contains("dino.head.mlp.0.weight"))
    }

    func testEveryTrainableParameterGetsAGradient() throws {
        // Generalised SelfPatch has no class attention to train (the neighbours are averaged);
        // the original trains it through the image embedding it gives DINO.
        var original = microRecipe(tasks: [TaskSelection(name: "dino", options: ["center-all-crops": "true"]),
                                           TaskSelection(name: "selfpatch", weight: 0.1, options: ["image-embedding": "true"])])
        original.backbone.classToken = false
        original.backbone.finalNorm = false
        let generalised = microRecipe(tasks: [TaskSelection(name: "dino"), TaskSelection(name: "selfpatch", weight: 0.1)])
        for (mode, recipe) in [("generalised", generalised), ("original", original)] {
            let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
            let result = try gradients(trainer, views: views(recipe))
            for (name, gradient) in result.gradients {
                XCTAssertTrue(gradient.elements.contains { $0 != 0 }, "\(mode): \(name) gets no gradient")
            }
            XCTAssertEqual(result.gradients.keys.contains("selfpatch.ca_head.cls_blocks.0.attn.q.weight"), mode == "original")
        }
    }

    func testEachTaskSendsTheGradientItSendsAloneIntoTheBackbone() throws {
        let (mixedTrainer, dinoTrainer, selfPatchTrainer, inputs) = try mixAndAlone()
        let measured = try gradients(mixedTrainer, views: inputs).backboneGradientNorms
        let dino = try XCTUnwrap(try gradients(dinoTrainer, views: inputs).backboneGradientNorms["dino"])
        let selfPatch = try XCTUnwrap(try gradients(selfPatchTrainer, views: inputs).backboneGradientNorms["selfpatch"])
        XCTAssertEqual(try XCTUnwrap(measured["dino"]), dino, accuracy: 1e-6 * dino)
        XCTAssertEqual(try XCTUnwrap(measured["selfpatch"]), selfPatch, accuracy: 1e-6 * selfPatch)
        XCTAssertGreaterThan(dino, 0)
        XCTAssertGreaterThan(selfPatch, 0)
        XCTAssertNotEqual(dino, selfPatch, accuracy: 1e-9)
    }

    func testDINOOnGlobalStudentCropsIgnoresTheLocalCrops() throws {
        // With `student-crops global` the local crops change nothing: the loss and every
        // gradient equal those of a run that has no local crops at all.
        let globalOnly = microRecipe(tasks: [TaskSelection(name: "dino", options: ["student-crops": "global"])])
        var withoutLocalCrops = microRecipe(tasks: [TaskSelection(name: "dino")])
        withoutLocalCrops.views = ViewPlan(globalCount: 2, globalSize: 32, localCount: 0, localSize: 24)
        let inputs = views(globalOnly)
        let measured = try gradients(try globalOnly.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1), views: inputs)
        let expected = try gradients(try withoutLocalCrops.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1),
                                     views: Array(inputs.prefix(2)))
        XCTAssertEqual(measured.loss, expected.loss, accuracy: 1e-6 * abs(expected.loss))
        assertSameGradients(measured.gradients, expected.gradients)
        let allCrops = try gradients(try microRecipe(tasks: [TaskSelection(name: "dino")]).makeTrainer(registry: .builtIn, iterationsPerEpoch: 1),
                                     views: inputs)
        XCTAssertNotEqual(allCrops.loss, measured.loss, accuracy: 1e-4 * abs(measured.loss))
    }

    func testTrainerStepsAndLogsEveryNamedTerm() throws {
        let recipe = microRecipe(tasks: [TaskSelection(name: "dino"), TaskSelection(name: "selfpatch", weight: 0.1),
                                         TaskSelection(name: "moco", options: ["dim": "8", "mlp-dim": "16"])])
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 4)
        let before = trainer.backbone.blocks[0].attn.qkv.weight.copy()
        let report = try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 0)
        for key in ["dino.loss", "selfpatch.loss", "moco.loss", "moco.ctr_12", "dino.teacher_temperature", "dino.teacher_entropy",
                    "dino.teacher_kl_uniform", "dino.embedding_std", "dino.backbone_gradient_norm", "selfpatch.backbone_gradient_norm",
                    "moco.backbone_gradient_norm", "backbone_gradient_norm"] {
            XCTAssertNotNil(report.terms[key], key)
        }
        let expected = report.terms["dino.loss"]! + 0.1 * report.terms["selfpatch.loss"]! + report.terms["moco.loss"]!
        XCTAssertEqual(report.loss, expected, accuracy: 1e-5 * abs(expected))
        XCTAssertEqual(report.learningRate, 0, "the warm-up starts at 0")
        _ = try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 1)
        XCTAssertNotEqual(trainer.backbone.blocks[0].attn.qkv.weight.elements, before.elements, "the backbone trains")
    }

    /// A scheduled weight is logged per step, and a task at weight 0 is skipped: no loss, no
    /// gradient for its heads, no change to its state.
    func testTaskAtWeightZeroIsSkippedAndWeightsAreLogged() throws {
        let recipe = microRecipe(tasks: [TaskSelection(name: "dino"),
                                         TaskSelection(name: "selfpatch", weight: try TaskWeight(parsing: "0@0:0.2@2 steps"))])
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 4)
        let selfPatch = trainer.tasks[1].task
        let heads = selfPatch.heads.namedParameters().map { ($0.name, $0.tensor.copy()) }
        let state = selfPatch.state.map { ($0.name, $0.tensor.copy()) }
        let first = try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 0)
        XCTAssertEqual(first.terms["selfpatch.weight"], 0)
        XCTAssertEqual(first.terms["dino.weight"], 1)
        XCTAssertNil(first.terms["selfpatch.loss"], "a skipped task computes no loss")
        XCTAssertNil(first.terms["selfpatch.backbone_gradient_norm"])
        XCTAssertEqual(first.loss, first.terms["dino.loss"]!, accuracy: 1e-9)
        for ((name, before), (_, after)) in zip(heads, selfPatch.heads.namedParameters().map { ($0.name, $0.tensor) }) {
            XCTAssertEqual(after.elements, before.elements, "\(name) is not trained at weight 0")
        }
        for ((name, before), (_, after)) in zip(state, selfPatch.state.map { ($0.name, $0.tensor) }) {
            XCTAssertEqual(after.elements, before.elements, "\(name) is not updated at weight 0")
        }
        let second = try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 1)
        XCTAssertEqual(second.terms["selfpatch.weight"]!, 0.1, accuracy: 1e-12)
        let expected = second.terms["dino.loss"]! + 0.1 * second.terms["selfpatch.loss"]!
        XCTAssertEqual(second.loss, expected, accuracy: 1e-5 * abs(expected))
    }

    func testAStepOutsideTheTrainersEpochLengthIsRefused() throws {
        let recipe = microRecipe(tasks: [TaskSelection(name: "dino")])
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        XCTAssertThrowsError(try trainer.step(views: views(recipe), epoch: 0, iterationInEpoch: 2)) { error in
            XCTAssertTrue("\(error)".contains("batchesPerEpoch"), "\(error)")
        }
    }

    func testAStepWhereEveryWeightIsZeroIsRefusedBeforeTraining() throws {
        let recipe = microRecipe(tasks: [TaskSelection(name: "dino", weight: try TaskWeight(parsing: "1@0:0@2 steps:1@3 steps"))])
        XCTAssertThrowsError(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 4)) { error in
            XCTAssertTrue("\(error)".contains("weight is 0 at iteration 2"), "\(error)")
        }
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
