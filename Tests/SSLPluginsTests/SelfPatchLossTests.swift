import Foundation
import SSLCore
import SSLPlugins
import XCTest

/// SelfPatch's loss is the mean over views of each view's mean over its patches, with targets
/// made view by view: views of different sizes count alike, and Sinkhorn-Knopp normalises each
/// view's rows on their own.
final class SelfPatchLossTests: XCTestCase {
    /// Global crops of 4 × 4 patches and local crops of 3 × 3, so views hold different numbers
    /// of rows.
    private func recipe(centering: String) -> TrainingRecipe {
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        let options = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8", "centering": centering]
        return TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 32, localCount: 2, localSize: 24),
            tasks: [TaskSelection(name: "selfpatch", weight: 1, options: options)], epochs: 1, batchSize: 3)
    }

    func testTheLossIsTheMeanOverViewsWithDINOsCentre() throws {
        try assertTheLossIsRecomputedViewByView(centering: "ema")
    }

    /// Sinkhorn-Knopp makes each view's targets an equipartition of that view's rows; over all
    /// views' rows together it gives other targets and another loss.
    func testSinkhornKnoppNormalisesEachViewOnItsOwn() throws {
        try assertTheLossIsRecomputedViewByView(centering: "sinkhorn")
    }

    private func assertTheLossIsRecomputedViewByView(centering: String) throws {
        let recipe = recipe(centering: centering)
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        let task = try XCTUnwrap(trainer.tasks[0].task as? SelfPatchTask)
        var generator = RandomGenerator(seed: 11)
        let views = recipe.views.sizes.map { Tensor.randomNormal([recipe.batchSize, 3, $0, $0], generator: &generator) }
        let collective = SingleProcessCollective()

        // Each view's teacher logits (its patches' chosen neighbours, summarised) and student logits.
        var teacherLogits: [Tensor] = [], studentLogits: [Tensor] = []
        for view in views {
            let teacherPatches = trainer.teacherBackbone!.features(view).lastBlockPatches
            let side = Int(Double(teacherPatches.shape[1]).squareRoot()), dimension = teacherPatches.shape[2]
            let chosen = NeighborTable(height: side, width: side).mostSimilarNeighbors(teacherPatches, count: 4)
            let neighbors = teacherPatches.reshaped([-1, dimension]).gatherRows(chosen).reshaped([-1, 4, dimension])
            teacherLogits.append(task.distillation.teacherHead(task.teacherAggregator.summary(of: neighbors)))
            let studentPatches = trainer.backbone.features(view).lastBlockPatches
            studentLogits.append(task.distillation.head(task.aggregator.norm(studentPatches.reshaped([-1, dimension]))))
        }
        func logSoftmax(_ row: ArraySlice<Float>, temperature: Double) -> [Double] {
            let scaled = row.map { Double($0) / temperature }, largest = scaled.max()!
            let logTotal = log(scaled.map { exp($0 - largest) }.reduce(0, +)) + largest
            return scaled.map { $0 - logTotal }
        }
        /// The mean over views of each view's mean cross-entropy, with `targets[view]`.
        func expectedLoss(targets: [Tensor]) -> Double {
            var total = 0.0
            for (student, target) in zip(studentLogits, targets) {
                let rows = student.shape[0], width = student.shape[1]
                let logits = student.elements, probabilities = target.elements
                var viewTotal = 0.0
                for row in 0..<rows {
                    let logProbabilities = logSoftmax(logits[(row * width)..<((row + 1) * width)], temperature: 0.1)
                    for column in 0..<width {
                        viewTotal -= Double(probabilities[row * width + column]) * logProbabilities[column]
                    }
                }
                total += viewTotal / Double(rows)
            }
            return total / Double(views.count)
        }
        let perView = teacherLogits.map { task.distillation.teacherTargets($0, iteration: 0, collective: collective) }
        let expected = expectedLoss(targets: perView)
        let allRows = task.distillation.teacherTargets(Tensor.concatenate(teacherLogits), iteration: 0, collective: collective)
        let pooledTargets = expectedLoss(targets: allRows.split(sizes: teacherLogits.map { $0.shape[0] }))

        let step = try trainer.lossAndGradients(views: views, epoch: 0, iteration: 0)
        let loss = try XCTUnwrap(step.terms["selfpatch.loss"])
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected, "selfpatch loss, centring \(centering)")
        // Weighting every row alike (instead of every view) gives another loss.
        let rows = studentLogits.map { Double($0.shape[0]) }, total = rows.reduce(0, +)
        let perViewLosses = (0..<views.count).map { view in
            expectedLoss(targets: perView.enumerated().map { $0.offset == view ? $0.element : Tensor.zeros($0.element.shape) })
                * Double(views.count)
        }
        let rowWeighted = zip(perViewLosses, rows).map { $0 * $1 }.reduce(0, +) / total
        XCTAssertGreaterThan(abs(loss - rowWeighted), 1e-4 * expected, "views count alike, not rows")
        if centering == "sinkhorn" {
            XCTAssertGreaterThan(abs(loss - pooledTargets), 1e-4 * expected, "each view's rows are normalised on their own")
        } else {
            XCTAssertEqual(pooledTargets, expected, accuracy: 1e-6 * expected, "DINO's centre treats each row on its own")
        }
    }
}
