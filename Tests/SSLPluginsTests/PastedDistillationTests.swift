import Foundation
import SSLCore
@testable import SSLPlugins
import XCTest

/// The `pastedino` task: its loss recomputed by hand from the backbones' tokens, and its requirements.
final class PastedDistillationTests: XCTestCase {
    /// Two global crops of 16 pixels (4 × 4 patches of 4) and two local canvases of 24 (6 × 6), larger
    /// than the global crops as pasting wants them.
    private func recipe(localCount: Int = 2, pooling: String = "garment") -> TrainingRecipe {
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 4, imageSize: 16)
        let options = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8", "pooling": pooling]
        return TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 16, localCount: localCount, localSize: 24),
            tasks: [TaskSelection(name: "pastedino", options: options)], epochs: 1, batchSize: 3)
    }

    /// A pasted square of a local canvas: its top row, left column and side, in pixels.
    private typealias Square = (top: Int, left: Int, side: Int)

    /// The local crops, `[view][image]`: how each was cut from its image, and the square it was
    /// pasted into (`nil`: not pasted), its edges between patch centres (pixels 2, 6, … 22).
    private let locals: [[(crop: CropGeometry, square: Square?)]] = [
        [
            (.wholeImage, (top: 3, left: 7, side: 13)),
            // Too small to hold a patch centre: skipped.
            (CropGeometry(left: 0.1, top: 0.2, right: 0.7, bottom: 0.9, isFlipped: true), (top: 3, left: 3, side: 2)),
            (CropGeometry(left: 0.25, top: 0, right: 0.75, bottom: 0.5), nil),
        ],
        [
            (CropGeometry(left: 0.3, top: 0.3, right: 0.9, bottom: 0.8), (top: 9, left: 3, side: 15)),
            (CropGeometry(left: 0.1, top: 0.2, right: 0.7, bottom: 0.9, isFlipped: true), (top: 5, left: 9, side: 11)),
            (.wholeImage, (top: 0, left: 0, side: 24)),
        ],
    ]

    private var geometry: [[CropGeometry]] {
        [
            Array(repeating: CropGeometry.wholeImage, count: 3),
            Array(repeating: CropGeometry(left: 0, top: 0, right: 1, bottom: 1, isFlipped: true), count: 3),
        ] + locals.map { view in
            view.map { local in
                local.square.map { local.crop.pasted(top: $0.top, left: $0.left, side: $0.side, canvasSize: 24) } ?? local.crop
            }
        }
    }

    /// The patches of a 6 × 6 grid of 4-pixel patches whose centre pixel lies in `square`: all of
    /// them when there is none.
    private func patches(in square: Square?) -> [Int] {
        (0..<36).filter { patch in
            guard let square else { return true }
            let x = (patch % 6) * 4 + 2, y = (patch / 6) * 4 + 2
            return (square.left..<(square.left + square.side)).contains(x) && (square.top..<(square.top + square.side)).contains(y)
        }
    }

    /// The step's loss, recomputed by hand: for every global crop and every local crop of an image
    /// with patches on its pasted square, the student's tokens averaged over those patches against
    /// the teacher's class token of the global crop, through the heads; cross-entropy of the
    /// student's softmax at 0.1 against the teacher's at 0.04 (the centre is zero at the first
    /// step), averaged over the 2 × 5 such triples. Pooling over the wrong patches (all of them)
    /// gives another loss.
    func testTheLossIsTheCrossEntropyOfPooledPastedPatchesAgainstTheGlobalClassTokens() throws {
        try assertTheLossIsRecomputedByHand(pooling: "garment")
    }

    /// As above with `patch` pooling: every patch on a pasted square on its own, the mean over
    /// the 2 × (9 + 36 + 12 + 9 + 36) (global crop, patch) pairs.
    func testPatchPoolingDistilsEveryPatchOnTheGarmentOnItsOwn() throws {
        try assertTheLossIsRecomputedByHand(pooling: "patch")
    }

    private func assertTheLossIsRecomputedByHand(pooling: String) throws {
        let perPatch = pooling == "patch"
        let recipe = recipe(pooling: pooling)
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        let task = try XCTUnwrap(trainer.tasks[0].task as? PastedDistillationTask)
        var generator = RandomGenerator(seed: 5)
        let views = recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) }
        let teacherTokens = try views.prefix(2).map { try XCTUnwrap(trainer.teacherBackbone!.features($0).classToken) }
        let studentTokens = views.suffix(2).map { trainer.backbone.features($0).outputPatches }
        let step = try trainer.lossAndGradients(views: views, geometry: geometry, epoch: 0, iteration: 0)

        func logSoftmax(_ row: [Float], temperature: Double) -> [Double] {
            let scaled = row.map { Double($0) / temperature }, largest = scaled.max()!
            let logTotal = log(scaled.map { exp($0 - largest) }.reduce(0, +)) + largest
            return scaled.map { $0 - logTotal }
        }
        /// The loss when the local crop `view` of `image` pools `pooled(view, image)`.
        func expectedLoss(pooling pooled: (Int, Int) -> [Int]) -> Double {
            var losses: [Double] = []
            for target in 0..<2 {
                let teacherLogits = task.distillation.teacherHead(teacherTokens[target]).elements
                let width = teacherLogits.count / 3
                for view in 0..<2 {
                    let tokens = studentTokens[view].elements
                    for image in 0..<3 {
                        let patches = pooled(view, image)
                        guard !patches.isEmpty else { continue }
                        let groups = perPatch ? patches.map { [$0] } : [patches]
                        let targets = logSoftmax(Array(teacherLogits[(image * width)..<((image + 1) * width)]), temperature: 0.04)
                            .map { exp($0) }
                        for group in groups {
                            let mean = (0..<24).map { index in
                                group.map { tokens[(image * 36 + $0) * 24 + index] }.reduce(0, +) / Float(group.count)
                            }
                            let studentLogits = task.distillation.head(Tensor(shape: [1, 24], elements: mean)).elements
                            let student = logSoftmax(studentLogits, temperature: 0.1)
                            losses.append(-zip(targets, student).map { $0 * $1 }.reduce(0, +))
                        }
                    }
                }
            }
            if !perPatch { XCTAssertEqual(losses.count, 10, "2 global crops × 5 local crops with pasted patches") }
            return losses.reduce(0, +) / Double(losses.count)
        }

        let expected = expectedLoss { view, image in self.patches(in: self.locals[view][image].square) }
        let loss = try XCTUnwrap(step.terms["pastedino.loss"])
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected, "pastedino loss")
        let wrong = expectedLoss { view, image in view == 0 && image == 1 ? [] : Array(0..<36) }
        XCTAssertGreaterThan(abs(loss - wrong), 1e-3 * expected, "the pooled patches matter")

        XCTAssertEqual(step.terms["pastedino.pasted_crop_fraction"], 5.0 / 6)
        XCTAssertEqual(step.terms["pastedino.pooled_crop_fraction"], 5.0 / 6)
        XCTAssertEqual(try XCTUnwrap(step.terms["pastedino.pooled_patches"]), Double(9 + 36 + 12 + 9 + 36) / 5, accuracy: 1e-12)
        XCTAssertGreaterThan(trainer.backbone.blocks[0].attn.qkv.weight.gradient?.sumOfSquares ?? 0, 0)
    }

    func testTheHeadHasItsOwnDefaultsAndTheDistillationsOptionNames() throws {
        let defaults = PastedDistillationTask.Configuration().distillation
        XCTAssertEqual(
            [defaults.outputDimension, defaults.hiddenDimension, defaults.bottleneckDimension], [256, 512, 128])
        XCTAssertEqual(defaults.lastLayerFreeze, .epochs(0))
        let options = try TaskRegistry.builtIn.entry(named: "pastedino").defaults.map(\.key)
        XCTAssertEqual(Set(options), Set(DistillationSettings.help.keys).union(["pooling", "shared-head"]))
        XCTAssertEqual(PastedDistillationTask.Configuration().pooling, .garment)
    }

    /// With `--pastedino.shared-head true` the garment's tokens go through `dino`'s head, which
    /// the loss then trains, and the task keeps only its own centre.
    func testASharedHeadIsDINOsAndTrainedByTheLoss() throws {
        var recipe = recipe()
        recipe.tasks = [
            TaskSelection(name: "dino", options: ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]),
            TaskSelection(name: "pastedino", options: ["shared-head": "true"]),
        ]
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        let dino = try XCTUnwrap(trainer.tasks[0].task as? DINOTask)
        let pasted = try XCTUnwrap(trainer.tasks[1].task as? PastedDistillationTask)
        XCTAssertTrue(pasted.distillation.head === dino.distillation.head)
        XCTAssertTrue(pasted.distillation.teacherHead === dino.distillation.teacherHead)
        XCTAssertTrue(pasted.heads.members.isEmpty)
        XCTAssertEqual(pasted.state.map(\.name), ["center"])
        XCTAssertFalse(pasted.distillation.targets.center === dino.distillation.targets.center)

        // dino's weight 0: whatever reaches dino's head comes from pastedino's loss.
        recipe.tasks[0].weight = 0
        let alone = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        var generator = RandomGenerator(seed: 5)
        let views = recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) }
        let step = try alone.lossAndGradients(views: views, geometry: geometry, epoch: 0, iteration: 0)
        XCTAssertNotNil(step.terms["pastedino.loss"])
        let head = try XCTUnwrap((alone.tasks[0].task as? DINOTask)?.distillation.head)
        XCTAssertGreaterThan(head.namedParameters().map { $0.tensor.gradient?.sumOfSquares ?? 0 }.reduce(0, +), 0)
    }

    func testASharedHeadNeedsDINO() {
        var recipe = recipe()
        recipe.tasks = [TaskSelection(name: "pastedino", options: ["shared-head": "true"])]
        XCTAssertThrowsError(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("--pastedino.shared-head true shares dino's head"), "\(error)")
        }
    }

    func testRefusesARunWithoutLocalCrops() {
        XCTAssertThrowsError(try recipe(localCount: 0).makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)) { error in
            XCTAssertTrue("\(error)".contains("'pastedino' needs at least 1 local crops"), "\(error)")
        }
    }
}
