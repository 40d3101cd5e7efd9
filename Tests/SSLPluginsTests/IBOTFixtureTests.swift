import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// The `ibot` task against bytedance/ibot (`main_ibot.py` `iBOTLoss`, `loader.py`
/// `ImageFolderMask`, at the commit pinned in `tools/reference/make_dinov2_fixtures.py`).
final class IBOTFixtureTests: XCTestCase {
    private func microSetup(globalSize: Int = 32) -> TaskSetup {
        TaskSetup(
            backbone: VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32),
            views: ViewPlan(globalCount: 2, globalSize: globalSize, localCount: 2, localSize: 16), epochs: 5,
            iterationsPerEpoch: 1, seed: 0)
    }

    /// An ibot task with `prototypes` patch prototypes, a micro head and `options`.
    private func microTask(prototypes: Int, options: [String: String]) throws -> IBOTTask {
        let head = ["out-dim": "\(prototypes)", "hidden-dim": "16", "bottleneck-dim": "8"]
        return try XCTUnwrap(
            try TaskRegistry.builtIn.makeTask(named: "ibot", options: head.merging(options) { $1 }, setup: microSetup()) as? IBOTTask)
    }

    /// The masked-patch term of `iBOTLoss` (`patch`), its gradient and the patch centre after the
    /// update, through the task's own targets (temperature schedule, centre) and loss.
    func testMaskedPatchLossGradientAndCentreMatchIBOT() throws {
        let file = try Fixtures.open("dinov2_micro.h5")
        let student = try file.readTensor("ibot/student_patch")
        student.requiresGradient = true
        let teacher = try file.readTensor("ibot/teacher_patch")
        let (images, patches, prototypes) = (student.shape[0], student.shape[1], student.shape[2])
        let task = try microTask(prototypes: prototypes, options: ["warmup-teacher-temp-epochs": "3"])
        let epoch = Int(try file.numericAttribute("epoch", of: "ibot"))
        XCTAssertEqual(
            task.distillation.teacherTemperature(iteration: epoch), try file.numericAttribute("teacher_patch_temperature", of: "ibot"),
            accuracy: 1e-12)
        task.distillation.targets.center.assign(try file.readTensor("ibot/center_before"))
        let teacherRows = teacher.reshaped([-1, prototypes])
        let targets = task.distillation.teacherTargets(teacherRows, iteration: epoch, collective: SingleProcessCollective())
        let hidden = Tensor(shape: [images, patches], elements: try file.readIntegers("ibot/masks").map(Float.init))
        let loss = IBOTTask.maskedPatchLoss(
            studentLogits: student, targets: targets.reshaped([images, patches, prototypes]), hidden: hidden, crops: 2,
            studentTemperature: task.distillation.settings.studentTemperature)
        let expected = try file.readDoubles("ibot/patch_loss")[0]
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5 * abs(expected))
        loss.backward()
        assertRelativeError(student.gradient!, try file.readTensor("ibot/gradient"), below: 1e-5, "d loss / d student logits")
        task.distillation.targets.update(with: teacherRows, collective: SingleProcessCollective())
        assertClose(task.distillation.targets.center, try file.readTensor("ibot/center_after"), absoluteTolerance: 1e-7,
                    relativeTolerance: 1e-6, "patch centre after")
    }

    /// DINOv2's Sinkhorn-Knopp targets over the hidden patches only (`iBOTPatchLoss`
    /// `sinkhorn_knopp_teacher`), on one process and on two holding unequal numbers of hidden
    /// patches, and `forward_masked`'s loss and gradient through them.
    func testSinkhornTargetsOverHiddenPatchesMatchDINOv2() throws {
        let file = try Fixtures.open("dinov2_micro.h5")
        let student = try file.readTensor("ibot/student_patch")
        student.requiresGradient = true
        let teacher = try file.readTensor("ibot/teacher_patch")
        let (images, patches, prototypes) = (student.shape[0], student.shape[1], student.shape[2])
        let hidden = try file.readIntegers("ibot/masks").map { $0 != 0 }
        let temperature = try file.numericAttribute("teacher_temperature", of: "ibot_sinkhorn")
        let task = try microTask(
            prototypes: prototypes,
            options: ["centering": "sinkhorn", "teacher-temp": "\(temperature)", "warmup-teacher-temp": "\(temperature)"])
        let logits = teacher.reshaped([-1, prototypes])
        let targets = IBOTTask.patchTargets(
            logits, hidden: hidden, distillation: task.distillation, iteration: 0, collective: SingleProcessCollective())
        let hiddenRows = hidden.indices.filter { hidden[$0] }
        assertRelativeError(targets.gatherRows(hiddenRows), try file.readTensor("ibot_sinkhorn/targets"), below: 1e-5, "1 rank")
        XCTAssertEqual(targets.gatherRows(hidden.indices.filter { !hidden[$0] }).elements.map(abs).max(), 0, "visible patches get none")

        let group = InProcessGroup(worldSize: 2)
        let rowsPerRank = images / 2 * patches
        let parts = try group.run { rank in
            let rows = (rank * rowsPerRank)..<((rank + 1) * rowsPerRank)
            let own = IBOTTask.patchTargets(
                logits.sliced(rows), hidden: Array(hidden[rows]), distillation: task.distillation, iteration: 0,
                collective: group.collective(rank: rank))
            return own.gatherRows(rows.filter { hidden[$0] }.map { $0 - rows.lowerBound })
        }
        assertRelativeError(
            Tensor.concatenate(parts), try file.readTensor("ibot_sinkhorn/targets_world2"), below: 1e-5, "2 ranks, unequal hidden patches")

        let loss = IBOTTask.maskedPatchLoss(
            studentLogits: student, targets: targets.reshaped([images, patches, prototypes]),
            hidden: Tensor(shape: [images, patches], elements: hidden.map { $0 ? 1 : 0 }), crops: 2,
            studentTemperature: task.distillation.settings.studentTemperature)
        let expected = try file.readDoubles("ibot_sinkhorn/loss")[0]
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5 * abs(expected))
        loss.backward()
        assertRelativeError(student.gradient!, try file.readTensor("ibot_sinkhorn/gradient"), below: 1e-5, "d loss / d student logits")

        let none = IBOTTask.patchTargets(
            logits, hidden: hidden.map { _ in false }, distillation: task.distillation, iteration: 0,
            collective: SingleProcessCollective())
        XCTAssertEqual(none.elements.map(abs).max(), 0, "no hidden patch, no targets (before pred-start-epoch)")
    }

    /// `ImageFolderMask`'s block masks on a 14×14 grid, compared in distribution (the random
    /// streams differ): the mean number of hidden patches and the share of empty masks within 6
    /// standard errors of the difference of two 4,000-draw means.
    func testBlockMasksFollowTheOfficialDistribution() throws {
        let file = try Fixtures.open("dinov2_micro.h5")
        for setting in ["default", "vit_small"] {
            let group = "ibot/masks_\(setting)"
            let draws = Int(try file.numericAttribute("draws", of: group)), grid = Int(try file.numericAttribute("grid", of: group))
            let ratios = try file.readDoubles("\(group)/pred_ratio"), spreads = try file.readDoubles("\(group)/pred_ratio_var")
            let masking = BlockMasking(ratios: ratios, spreads: spreads, aspectRatio: 0.3, startEpoch: 0)
            var generator = RandomGenerator(seed: 11)
            let counts = (0..<draws).map { _ in
                Double(masking.mask(height: grid, width: grid, epoch: 0, generator: &generator).filter { $0 }.count)
            }
            let most = (ratios.indices.map { ratios[$0] + spreads[$0] }.max()! * Double(grid * grid)).rounded(.down)
            XCTAssertLessThanOrEqual(counts.max()!, most, "\(setting): never more than the largest ratio")
            let mean = counts.reduce(0, +) / Double(draws)
            let deviation = (counts.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(draws)).squareRoot()
            let officialMean = try file.readDoubles("\(group)/count_mean")[0]
            let officialDeviation = try file.readDoubles("\(group)/count_std")[0]
            let standardError = ((deviation * deviation + officialDeviation * officialDeviation) / Double(draws)).squareRoot()
            XCTAssertEqual(mean, officialMean, accuracy: 6 * standardError, "\(setting): mean hidden patches")
            let empty = Double(counts.filter { $0 == 0 }.count) / Double(draws)
            let officialEmpty = try file.readDoubles("\(group)/fraction_empty")[0]
            let emptyError = ((empty * (1 - empty) + officialEmpty * (1 - officialEmpty)) / Double(draws)).squareRoot()
            XCTAssertEqual(empty, officialEmpty, accuracy: max(6 * emptyError, 1e-12), "\(setting): empty masks")
        }
        let late = BlockMasking(ratios: [0.3], spreads: [0], aspectRatio: 0.3, startEpoch: 2)
        var generator = RandomGenerator(seed: 1)
        XCTAssertFalse(late.mask(height: 14, width: 14, epoch: 1, generator: &generator).contains(true), "no masks before pred-start-epoch")
    }

    /// Hidden patches enter the backbone as the mask token: with every patch hidden, two
    /// different images give the same output; with none hidden, the plain pass.
    func testMaskedPassReplacesHiddenPatchEmbeddings() {
        let backbone = VisionTransformer(microSetup().backbone, seed: 2)
        var generator = RandomGenerator(seed: 4)
        let images = Tensor.randomNormal([2, 3, 32, 32], generator: &generator)
        let token = Tensor.randomNormal([1, 1, 24], generator: &generator)
        let all = backbone.features(images, masking: (Tensor(shape: [2, 16, 1], repeating: 1), token)).output
        assertClose(all.sliced(0..<1), all.sliced(1..<2), absoluteTolerance: 1e-6, "fully masked images look alike")
        let none = backbone.features(images, masking: (Tensor.zeros([2, 16, 1]), token)).output
        assertClose(none, backbone(images), absoluteTolerance: 1e-6, "no mask, no change")
    }

    func testTrainsTheMaskTokenAndHeadWithDINO() throws {
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        let head = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8", "freeze-last-layer": "0"]
        let recipe = TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 32, localCount: 2, localSize: 16),
            tasks: [TaskSelection(name: "dino", options: head), TaskSelection(name: "ibot", options: head.merging(["pred-ratio": "[0.5]"]) { $1 })],
            epochs: 1, batchSize: 2)
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        var generator = RandomGenerator(seed: 5)
        let views = recipe.views.sizes.map { Tensor.randomNormal([2, 3, $0, $0], generator: &generator) }
        let token = (trainer.tasks[1].task as! IBOTTask).maskToken.token
        let before = token.elements
        let report = try trainer.step(views: views, epoch: 0, iterationInEpoch: 0)
        XCTAssertGreaterThan(report.terms["ibot.loss"] ?? 0, 0)
        XCTAssertEqual(report.terms["ibot.masked_fraction"] ?? 0, 0.5, accuracy: 0.26, "half of each 4×4 grid, at most")
        _ = try trainer.step(views: views, epoch: 0, iterationInEpoch: 1)  // step 0 has learning rate 0
        XCTAssertNotEqual(token.elements, before, "the mask token is trained")

        var unmasked = recipe
        unmasked.tasks[1].options["pred-ratio"] = "[0]"
        let quiet = try unmasked.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        XCTAssertEqual(try quiet.step(views: views, epoch: 0, iterationInEpoch: 0).terms["ibot.loss"], 0, "no hidden patch, no loss")
    }

    /// `--ibot.shared-head true` (iBOT's `shared_head`): the patch logits are dino's head's, so
    /// the head is trained by ibot's loss even when dino's own weight is 0, and has no copy
    /// under ibot; the centre stays ibot's, of dino's width.
    func testSharedHeadIsDINOsHead() throws {
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        let head = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8", "freeze-last-layer": "0"]
        func trainer(sharedHead: Bool, tasks: [String] = ["ibot", "dino"]) throws -> Trainer {
            let selections = tasks.map { name in
                name == "dino"
                    ? TaskSelection(name: "dino", weight: 0, options: head)
                    : TaskSelection(name: "ibot", options: head.merging(["pred-ratio": "[0.5]", "out-dim": "48", "shared-head": "\(sharedHead)"]) { $1 })
            }
            let recipe = TrainingRecipe(
                backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 32), tasks: selections, epochs: 1, batchSize: 2)
            return try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        }
        var generator = RandomGenerator(seed: 8)
        let views = (0..<2).map { _ in Tensor.randomNormal([2, 3, 32, 32], generator: &generator) }
        let lastLayer = "dino.head.last_layer.weight_v"
        for sharedHead in [false, true] {
            let run = try trainer(sharedHead: sharedHead)
            let names = run.student.namedParameters().map(\.name)
            XCTAssertEqual(names.contains { $0.hasPrefix("ibot.head.") }, !sharedHead, "ibot's own head only when not shared")
            let ibot = try XCTUnwrap(run.tasks.first { $0.name == "ibot" }?.task as? IBOTTask)
            let dino = try XCTUnwrap(run.tasks.first { $0.name == "dino" }?.task as? DINOTask)
            XCTAssertEqual(ibot.distillation.head === dino.distillation.head, sharedHead)
            XCTAssertEqual(ibot.distillation.teacherHead === dino.distillation.teacherHead, sharedHead)
            XCTAssertEqual(ibot.state.first?.tensor.shape, [1, sharedHead ? 32 : 48], "ibot's own centre, as wide as its head")
            let result = try run.lossAndGradients(views: views, epoch: 0, iteration: 0)
            XCTAssertGreaterThan(result.terms["ibot.loss"] ?? 0, 0)
            let gradient = run.student.namedParameters().first { $0.name == lastLayer }?.tensor.gradient
            XCTAssertEqual((gradient?.elements.map(abs).max() ?? 0) > 0, sharedHead, "dino's head is trained by ibot's loss when shared")
        }
        XCTAssertThrowsError(try trainer(sharedHead: true, tasks: ["ibot"])) { error in
            XCTAssertTrue("\(error)".contains("--ibot.shared-head true shares dino's head"), "\(error)")
        }
    }

    func testRefusesSettingsThatCannotWork() {
        let registry = TaskRegistry.builtIn
        for (options, message) in [
            (["pred-ratio": "[0.3, 0.1]"], "same, non-zero number"),
            (["pred-ratio-var": "[0.5]"], "spread"),
        ] {
            XCTAssertThrowsError(try registry.makeTask(named: "ibot", options: options, setup: microSetup())) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        XCTAssertThrowsError(try registry.makeTask(named: "ibot", setup: microSetup(globalSize: 16))) { error in
            XCTAssertTrue("\(error)".contains("smaller than 3×3"), "\(error)")
        }
    }
}
