import XCTest

@testable import SSLCore
import SSLTestSupport

// What a task declares (heads, teacher copies, requirements) is checked when the trainer is
// built. Two former silent failures cannot be written any more, so they have no test here:
//
// - A teacher head under another key than its student head: a teacher is declared beside its
//   head, in the same `TaskHeads.Member`, under the head's one key.
// - `let teacherHeads: Module` or `var state: [(String, Tensor)]` (unlabelled) shadowed by a
//   protocol default: `PretextTask` has no `teacherHeads`, and `heads: TaskHeads` and
//   `state: [(name: String, tensor: Tensor)]` have no default, so a declaration of another type
//   does not conform and does not compile.
final class TaskDeclarationTests: XCTestCase {
    /// A task of one linear head, with the teacher and requirements a test gives it; its loss
    /// is the mean of the head's output on the student's class tokens, and it records the
    /// first draw of the step's generator and whether its head still had a gradient.
    final class ProbeTask: PretextTask {
        struct Configuration: TaskConfiguration {
            static let help: [String: String] = [:]
        }
        static let name = "probe"
        static let summary = "A test task."
        nonisolated(unsafe) static var makeTeacher: (Linear) -> Module? = { _ in nil }
        nonisolated(unsafe) static var declared = TaskRequirements()

        let head: Linear
        let heads: TaskHeads
        let state: [(name: String, tensor: Tensor)] = []
        var draws: [UInt64] = []
        var headHadGradient: [Bool] = []

        init(configuration: Configuration, setup: TaskSetup) throws {
            var generator = setup.generator(for: Self.name)
            head = Linear(inputFeatures: setup.backbone.embedDimension, outputFeatures: 4, generator: &generator)
            heads = TaskHeads([.head("head", head, teacher: Self.makeTeacher(head))])
        }

        var requirements: TaskRequirements { Self.declared }

        func loss(_ step: TaskStep) -> TaskLoss {
            var generator = step.generator()
            draws.append(generator.next())
            headHadGradient.append(head.weight.gradient != nil)
            return TaskLoss(total: head(step.forward.student(0).classToken!).mean())
        }
    }

    private let backbone = VisionTransformerConfiguration(embedDimension: 8, depth: 1, heads: 2, patchSize: 4, imageSize: 16)

    override func tearDown() {
        ProbeTask.makeTeacher = { _ in nil }
        ProbeTask.declared = TaskRequirements()
    }

    private func setup(views: ViewPlan = ViewPlan(globalCount: 1, globalSize: 16)) -> TaskSetup {
        TaskSetup(backbone: backbone, views: views, epochs: 1, iterationsPerEpoch: 4, seed: 3)
    }

    private func makeTrainer(
        views: ViewPlan = ViewPlan(globalCount: 1, globalSize: 16), layerDecay: Double = 1
    ) throws -> (Trainer, ProbeTask) {
        let setup = setup(views: views)
        let task = try ProbeTask(configuration: .init(), setup: setup)
        var optimization = OptimizationConfiguration()
        optimization.layerDecay = layerDecay
        optimization.warmup = .epochs(0)
        optimization.teacherMomentum = 0.5
        optimization.finalTeacherMomentum = 0.5
        let trainer = try Trainer(
            backbone: VisionTransformer(backbone, seed: 1), tasks: [WeightedTask(task)], optimization: optimization,
            setup: setup, globalBatchSize: 2)
        return (trainer, task)
    }

    private func assertRefused(_ message: String, views: ViewPlan = ViewPlan(globalCount: 1, globalSize: 16), line: UInt = #line) {
        XCTAssertThrowsError(try makeTrainer(views: views), line: line) { error in
            XCTAssertTrue("\(error)".contains(message), "\(error)", line: line)
            XCTAssertFalse("\(error)".contains("\n"), "one line: \(error)", line: line)
        }
    }

    private func images(_ views: ViewPlan = ViewPlan(globalCount: 1, globalSize: 16)) -> [Tensor] {
        var generator = RandomGenerator(seed: 9)
        return views.sizes.map { Tensor.randomNormal([2, 3, $0, $0], generator: &generator) }
    }

    func testTheTrainerCopiesAndUpdatesADeclaredTeacherEvenWithoutNeedsTeacher() throws {
        var generator = RandomGenerator(seed: 42)
        ProbeTask.makeTeacher = { _ in Linear(inputFeatures: 8, outputFeatures: 4, generator: &generator) }
        let (trainer, task) = try makeTrainer()
        let teacher = try XCTUnwrap(task.heads.members[0].teacher as? Linear)
        XCTAssertEqual(teacher.weight.elements, task.head.weight.elements, "the teacher starts as a copy of its head")
        XCTAssertFalse(teacher.weight.requiresGradient, "the teacher is not trained")
        XCTAssertTrue(task.head.weight.requiresGradient, "the head is")
        XCTAssertNotNil(trainer.teacher, "a declared teacher gives the run a teacher without needsTeacher")
        XCTAssertEqual(trainer.teacher!.namedParameters().map(\.name).filter { $0.hasPrefix("probe.") }, ["probe.head.weight", "probe.head.bias"])
        _ = try trainer.step(views: images(), epoch: 0, iterationInEpoch: 0)
        _ = try trainer.step(views: images(), epoch: 0, iterationInEpoch: 1)
        XCTAssertNotEqual(task.head.weight.elements, teacher.weight.elements, "the head trains")
        let before = teacher.weight.elements
        _ = try trainer.step(views: images(), epoch: 0, iterationInEpoch: 2)
        XCTAssertNotEqual(teacher.weight.elements, before, "the EMA moves the teacher")
    }

    /// The last step's gradients are gone before the next forward pass, so they do not add to
    /// its peak memory, and each step leaves its own for inspection.
    func testGradientsAreClearedBeforeTheForwardPass() throws {
        let (trainer, task) = try makeTrainer()
        for iteration in 0..<2 {
            _ = try trainer.step(views: images(), epoch: 0, iterationInEpoch: iteration)
            XCTAssertNotNil(task.head.weight.gradient, "step \(iteration) leaves its gradient")
        }
        XCTAssertEqual(task.headHadGradient, [false, false])
    }

    /// With layer decay the trainer's groups give the patch embedding, the block and the task's
    /// head their own rates; without it every rate is the optimizer's.
    func testTheTrainerAppliesLayerDecay() throws {
        func rates(layerDecay: Double) throws -> [String: Double] {
            let (trainer, _) = try makeTrainer(layerDecay: layerDecay)
            var rates: [String: Double] = [:]
            for group in trainer.optimizer.groups {
                for parameter in group.parameters { rates[parameter.name] = group.learningRateMultiplier }
            }
            return rates
        }
        let decayed = try rates(layerDecay: 0.5)
        XCTAssertEqual(decayed["backbone.patch_embed.proj.weight"], 0.25)
        XCTAssertEqual(decayed["backbone.cls_token"], 0.25)
        XCTAssertEqual(decayed["backbone.blocks.0.mlp.fc1.weight"], 0.5)
        XCTAssertEqual(decayed["probe.head.weight"], 1)
        XCTAssertEqual(Set(try rates(layerDecay: 1).values), [1])
    }

    func testAHeadThatIsItsOwnTeacherIsRefused() {
        ProbeTask.makeTeacher = { $0 }
        assertRefused("itself as its teacher")
    }

    func testATeacherSharingATensorWithTheHeadIsRefused() {
        ProbeTask.makeTeacher = { head in ModuleDictionary([("shared", head)]) }
        assertRefused("shares the tensor 'shared.weight'")
    }

    func testATeacherOfAnotherArchitectureIsRefused() {
        var generator = RandomGenerator(seed: 1)
        ProbeTask.makeTeacher = { _ in Linear(inputFeatures: 8, outputFeatures: 5, generator: &generator) }
        assertRefused("does not match its head")
    }

    func testAHeadKeyDeclaredTwiceIsRefused() throws {
        var generator = RandomGenerator(seed: 1)
        let heads = TaskHeads([
            .head("head", Linear(inputFeatures: 2, outputFeatures: 2, generator: &generator)),
            .head("head", Linear(inputFeatures: 2, outputFeatures: 2, generator: &generator)),
        ])
        XCTAssertThrowsError(try heads.validate(task: "probe")) { error in
            XCTAssertTrue("\(error)".contains("declares the head 'head' twice"), "\(error)")
        }
    }

    func testPatchTokensNeedAPatchGridOfTheDeclaredSide() throws {
        ProbeTask.declared = TaskRequirements(minimumPatchGrid: 3)
        assertRefused(
            "reads patch grids of at least 3×3; a crop of 8 pixels with patch size 4 gives 2×2",
            views: ViewPlan(globalCount: 1, globalSize: 16, localCount: 1, localSize: 8))
        ProbeTask.declared = TaskRequirements(needsPatchTokens: true)
        assertRefused("reads patch grids of at least 1×1; a crop of 2 pixels", views: ViewPlan(globalCount: 1, globalSize: 2))
        ProbeTask.declared = TaskRequirements(needsPatchTokens: true, minimumPatchGrid: 3)
        XCTAssertNoThrow(try makeTrainer(views: ViewPlan(globalCount: 1, globalSize: 16, localCount: 1, localSize: 12)))
    }

    func testATaskReadingCropGeometryNeedsItInEveryStep() throws {
        ProbeTask.declared = TaskRequirements(needsCropGeometry: true)
        let (trainer, _) = try makeTrainer()
        XCTAssertThrowsError(try trainer.step(views: images(), epoch: 0, iterationInEpoch: 0)) { error in
            XCTAssertTrue("\(error)".contains("reads crop geometry, but the step has none"), "\(error)")
        }
        let geometry = [[CropGeometry.wholeImage, CropGeometry(left: 0, top: 0, right: 0.5, bottom: 0.5, isFlipped: true)]]
        XCTAssertNoThrow(try trainer.step(views: images(), geometry: geometry, epoch: 0, iterationInEpoch: 0))
    }

    func testTheStepGeneratorFollowsSeedTaskIterationAndRank() throws {
        let forward = SharedForward(views: images(), globalViewCount: 1, student: FeatureNetwork(backbone: VisionTransformer(backbone, seed: 1)), teacher: nil)
        func draw(task: String = "probe", iteration: Int = 5, seed: UInt64 = 3, rank: Int = 0, stream: UInt64 = 0) -> [UInt64] {
            let step = TaskStep(
                forward: forward, epoch: 0, iteration: iteration, taskName: task, seed: seed, collective: RankOnly(rank: rank))
            var generator = step.generator(stream: stream)
            return (0..<4).map { _ in generator.next() }
        }
        XCTAssertEqual(draw(), draw(), "same seed, task, iteration and rank: same draws")
        for other in [draw(iteration: 6), draw(rank: 1), draw(task: "probe2"), draw(seed: 4), draw(stream: 1)] {
            XCTAssertNotEqual(other, draw())
        }
        // Through a trainer: the step at iteration 1 draws the same after a restart.
        let (first, firstTask) = try makeTrainer()
        _ = try first.step(views: images(), epoch: 0, iterationInEpoch: 0)
        _ = try first.step(views: images(), epoch: 0, iterationInEpoch: 1)
        let (resumed, resumedTask) = try makeTrainer()
        _ = try resumed.step(views: images(), epoch: 0, iterationInEpoch: 1)
        XCTAssertEqual(firstTask.draws[1], resumedTask.draws[0])
        XCTAssertNotEqual(firstTask.draws[0], firstTask.draws[1])
        XCTAssertEqual(firstTask.draws[1], draw(iteration: 1).first)
    }
}

/// A single process that reports another rank, for the generator's rank component.
private final class RankOnly: Collective {
    let rank: Int
    var worldSize: Int { rank + 1 }
    init(rank: Int) { self.rank = rank }
    func allReduceSum(_ tensor: Tensor) {}
    func allGather(_ tensor: Tensor) -> Tensor { tensor }
}
