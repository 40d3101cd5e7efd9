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
        ] + locals.enumerated().map { view, crops in
            crops.enumerated().map { image, local in
                guard let square = local.square else { return local.crop }
                var pasted = local.crop.pasted(top: square.top, left: square.left, side: square.side, canvasSize: 24)
                pasted.canvasPictures = canvasPictures(view: view, image: image)
                return pasted
            }
        }
    }

    /// The picture map of a pasted local crop: the view on its pasted square; under and around it
    /// the distractor ``distractor(view:image:)`` on the left half of the canvas, background elsewhere.
    private func canvasPictures(view: Int, image: Int) -> CanvasPictures {
        var pictures = CanvasPictures(side: 24)
        let square = locals[view][image].square!
        for row in 0..<24 {
            for column in 0..<24 {
                if (square.left..<(square.left + square.side)).contains(column) && (square.top..<(square.top + square.side)).contains(row) {
                    pictures[column, row] = .view
                } else if column < 12 {
                    pictures[column, row] = .distractor(distractor(view: view, image: image))
                }
            }
        }
        return pictures
    }

    /// The batch position of the distractor on a pasted local crop: another image of the batch,
    /// or in one crop the image itself (a batch may paste an image among its own copies).
    private func distractor(view: Int, image: Int) -> Int { view == 1 && image == 2 ? 2 : (image + 1) % 3 }

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

    /// As above with `scene` pooling: every patch on any garment of a canvas on its own, toward the
    /// global crops of the image it shows (the pasted one on its square, the distractor's on the
    /// left half, none on the background); every patch of the crop that was not pasted toward its
    /// own image. Reading every patch as the crop's own image gives another loss.
    func testScenePoolingDistilsEveryGarmentsPatchesTowardTheirOwnImage() throws {
        try assertTheLossIsRecomputedByHand(pooling: "scene")
    }

    private func assertTheLossIsRecomputedByHand(pooling: String) throws {
        let perPatch = pooling != "garment"
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
        /// The loss when the local crop `view` of `image` pools the groups `pooled(view, image)`,
        /// each a set of its patches and the image whose global crops it is distilled toward.
        func expectedLoss(pooling pooled: (Int, Int) -> [(patches: [Int], target: Int)]) -> Double {
            var losses: [Double] = []
            for globalCrop in 0..<2 {
                let teacherLogits = task.distillation.teacherHead(teacherTokens[globalCrop]).elements
                let width = teacherLogits.count / 3
                for view in 0..<2 {
                    let tokens = studentTokens[view].elements
                    for image in 0..<3 {
                        for group in pooled(view, image) {
                            let targets = logSoftmax(
                                Array(teacherLogits[(group.target * width)..<((group.target + 1) * width)]), temperature: 0.04
                            ).map { exp($0) }
                            let mean = (0..<24).map { index in
                                group.patches.map { tokens[(image * 36 + $0) * 24 + index] }.reduce(0, +) / Float(group.patches.count)
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
        /// The groups of patches `patches` of `image`: one, or one per patch.
        func groups(_ patches: [Int], of image: Int) -> [(patches: [Int], target: Int)] {
            guard !patches.isEmpty else { return [] }
            return perPatch ? patches.map { ([$0], image) } : [(patches, image)]
        }
        /// The patches of a pasted crop on its distractor: centre on the left half, off the square.
        func distractorPatches(view: Int, image: Int) -> [Int] {
            let onSquare = Set(patches(in: locals[view][image].square))
            return (0..<36).filter { $0 % 6 < 3 && !onSquare.contains($0) }
        }

        let pooled: (Int, Int) -> [(patches: [Int], target: Int)] = { view, image in
            var pooled = groups(self.patches(in: self.locals[view][image].square), of: image)
            if pooling == "scene" && self.locals[view][image].square != nil {
                pooled += distractorPatches(view: view, image: image).map { ([$0], self.distractor(view: view, image: image)) }
            }
            return pooled
        }
        let expected = expectedLoss(pooling: pooled)
        let loss = try XCTUnwrap(step.terms["pastedino.loss"])
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected, "pastedino loss")
        let wrong = expectedLoss { view, image in
            pooling == "scene"
                ? pooled(view, image).map { ($0.patches, image) }
                : groups(view == 0 && image == 1 ? [] : Array(0..<36), of: image)
        }
        XCTAssertGreaterThan(abs(loss - wrong), 1e-3 * expected, "the pooled patches and their targets matter")

        XCTAssertEqual(step.terms["pastedino.pasted_crop_fraction"], 5.0 / 6)
        // With `scene` pooling the crop whose square holds no patch centre still shows a distractor.
        let pooledCrops = pooling == "scene" ? 6.0 : 5.0
        XCTAssertEqual(step.terms["pastedino.pooled_crop_fraction"], pooledCrops / 6)
        let distractorCount = pooling == "scene"
            ? [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)].map { distractorPatches(view: $0.0, image: $0.1).count }.reduce(0, +) : 0
        XCTAssertEqual(
            try XCTUnwrap(step.terms["pastedino.pooled_patches"]), Double(9 + 36 + 12 + 9 + 36 + distractorCount) / pooledCrops,
            accuracy: 1e-12)
        XCTAssertGreaterThan(trainer.backbone.blocks[0].attn.qkv.weight.gradient?.sumOfSquares ?? 0, 0)
    }

    /// `pasteembed`: every patch that `scene` pooling distils (on the pasted square toward the
    /// crop's image, on a distractor toward that image, every patch of a crop that was not pasted
    /// toward its own image) is compared by cosine with the teacher's class token of each global
    /// crop of that image; the loss is one minus the mean. Taking the crop's own image for every
    /// patch gives another loss.
    func testPastedEmbeddingPullsEachGarmentsPatchesTowardItsImagesTeacherEmbedding() throws {
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 4, imageSize: 16)
        let recipe = TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 16, localCount: 2, localSize: 24),
            tasks: [TaskSelection(name: "pasteembed")], epochs: 1, batchSize: 3)
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        // Each image's views get an offset of their own, so that the images' class tokens differ.
        var generator = RandomGenerator(seed: 5)
        let offsets = Tensor(shape: [3, 1, 1, 1], elements: [-2, 0, 2])
        let views = recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) + offsets }
        let teacherTokens = try views.prefix(2).map { try XCTUnwrap(trainer.teacherBackbone!.features($0).classToken).elements }
        let studentTokens = views.suffix(2).map { trainer.backbone.features($0).outputPatches.elements }
        let step = try trainer.lossAndGradients(views: views, geometry: geometry, epoch: 0, iteration: 0)

        func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
            let dot = zip(a, b).map { Double($0) * Double($1) }.reduce(0, +)
            let norms = (a.map { Double($0 * $0) }.reduce(0, +) * b.map { Double($0 * $0) }.reduce(0, +)).squareRoot()
            return dot / norms
        }
        /// One minus the mean cosine over (global crop, patch) pairs, each patch of local crop
        /// (view, image) compared with the class token of image `target(view, image, patch)`.
        func expectedLoss(target: (Int, Int, Int) -> Int?) -> (loss: Double, patches: Int) {
            var similarities: [Double] = []
            for teacher in teacherTokens {
                for (view, tokens) in studentTokens.enumerated() {
                    for image in 0..<3 {
                        for patch in 0..<36 {
                            guard let target = target(view, image, patch) else { continue }
                            let row = (image * 36 + patch) * 24
                            similarities.append(cosine(tokens[row..<(row + 24)], teacher[(target * 24)..<((target + 1) * 24)]))
                        }
                    }
                }
            }
            return (1 - similarities.reduce(0, +) / Double(similarities.count), similarities.count / 2)
        }
        let shown: (Int, Int, Int) -> Int? = { view, image, patch in
            let local = self.locals[view][image]
            guard local.square != nil else { return image }
            if self.patches(in: local.square).contains(patch) { return image }
            return patch % 6 < 3 ? self.distractor(view: view, image: image) : nil
        }
        let expected = expectedLoss(target: shown)
        let loss = try XCTUnwrap(step.terms["pasteembed.loss"])
        XCTAssertEqual(loss, expected.loss, accuracy: 1e-5, "pasteembed loss")
        let ownImage = expectedLoss { view, image, patch in shown(view, image, patch).map { _ in image } }
        XCTAssertGreaterThan(abs(loss - ownImage.loss), 1e-3, "each patch is compared with the image it shows")
        XCTAssertEqual(try XCTUnwrap(step.terms["pasteembed.aligned_patches_per_crop"]), Double(expected.patches) / 6, accuracy: 1e-12)
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
