import Foundation
import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// DINOv2's Sinkhorn-Knopp targets and KoLeo regulariser against the official code
/// (facebookresearch/dinov2 at the commit pinned in `tools/reference/make_dinov2_fixtures.py`).
final class DINOv2FixtureTests: XCTestCase {
    private func sinkhornCases(_ file: HDF5File) throws -> [(temperature: Double, targets: Tensor)] {
        let targets = try file.readTensor("sinkhorn/targets")
        let rows = targets.shape[1], prototypes = targets.shape[2]
        return try file.readDoubles("sinkhorn/temperatures").enumerated().map { index, temperature in
            (temperature, targets.sliced(index..<(index + 1)).reshaped([rows, prototypes]))
        }
    }

    func testSinkhornKnoppTargetsOnOneProcess() throws {
        let file = try Fixtures.open("dinov2_micro.h5")
        let logits = try file.readTensor("sinkhorn/logits")
        let centering = CenteredTargets(outputDimension: logits.shape[1], momentum: 0.9, centering: .sinkhorn)
        for (temperature, expected) in try sinkhornCases(file) {
            let targets = centering.probabilities(of: logits, temperature: temperature, collective: SingleProcessCollective())
            assertRelativeError(targets, expected, below: 1e-5, "targets at τ \(temperature)")
            assertClose(targets, expected, absoluteTolerance: 1e-7, relativeTolerance: 1e-5, "targets at τ \(temperature)")
        }
        XCTAssertEqual(centering.center.elements, [Float](repeating: 0, count: logits.shape[1]), "no centre is kept")
    }

    /// Two ranks holding half the rows each reduce through their collective, as `dist.all_reduce`
    /// in the official code: each rank's targets are its rows of the official 2-process result.
    func testSinkhornKnoppTargetsReduceOverProcesses() throws {
        let file = try Fixtures.open("dinov2_micro.h5")
        let logits = try file.readTensor("sinkhorn/logits")
        let expected = try file.readTensor("sinkhorn/targets_world2")
        let rows = logits.shape[0] / 2, prototypes = logits.shape[1]
        for (index, temperature) in try file.readDoubles("sinkhorn/temperatures").enumerated() {
            let group = InProcessGroup(worldSize: 2)
            let parts = try group.run { rank in
                let centering = CenteredTargets(outputDimension: prototypes, momentum: 0.9, centering: .sinkhorn)
                return centering.probabilities(
                    of: logits.sliced((rank * rows)..<((rank + 1) * rows)), temperature: temperature,
                    collective: group.collective(rank: rank))
            }
            let reference = expected.sliced(index..<(index + 1)).reshaped([2 * rows, prototypes])
            assertRelativeError(Tensor.concatenate(parts), reference, below: 1e-5, "2 ranks at τ \(temperature)")
            let single = CenteredTargets(outputDimension: prototypes, momentum: 0.9, centering: .sinkhorn)
                .probabilities(of: logits.sliced(0..<rows), temperature: temperature, collective: SingleProcessCollective())
            XCTAssertGreaterThan(maximumDifference(single, reference.sliced(0..<rows)), 1e-3, "the reduction matters")
        }
    }

    /// The `dino` task with `--dino.centering sinkhorn` on `dino_micro.h5`'s networks gives
    /// DINOv2's loss (`SSLMetaArch.forward_backward` with `train.centering: sinkhorn_knopp`).
    func testDINOTaskWithSinkhornKnoppMatchesDINOv2() throws {
        let micro = try Fixtures.open("dino_micro.h5")
        let file = try Fixtures.open("dinov2_micro.h5")
        let backbone = VisionTransformer(try FixtureLoading.backbone(micro))
        let batch = Int(try micro.numericAttribute("batch"))
        let views = ViewPlan(
            globalCount: 2, globalSize: Int(try micro.numericAttribute("global_size")),
            localCount: Int(try micro.numericAttribute("num_crops")) - 2, localSize: Int(try micro.numericAttribute("local_size")))
        let setup = TaskSetup(backbone: backbone.configuration, views: views, epochs: 1, iterationsPerEpoch: 1, seed: 0)
        let temperature = "\(try micro.numericAttribute("teacher_temp"))"
        let task = try TaskRegistry.builtIn.makeTask(
            named: "dino",
            options: ["out-dim": "\(Int(try micro.numericAttribute("out_dim")))",
                      "hidden-dim": "\(Int(try micro.numericAttribute("hidden_dim")))",
                      "bottleneck-dim": "\(Int(try micro.numericAttribute("bottleneck_dim")))",
                      "teacher-temp": temperature, "warmup-teacher-temp": temperature, "centering": "sinkhorn"],
            setup: setup) as! DINOTask
        let trainer = try Trainer(
            backbone: backbone, tasks: [WeightedTask(task)], optimization: OptimizationConfiguration(), setup: setup,
            globalBatchSize: batch)
        try FixtureLoading.loadNetworks(micro, into: trainer, task: "dino")
        let inputs = try (0..<views.count).map { try micro.readTensor("inputs/crop\($0)") }

        let targets = task.distillation.teacherTargets(
            try micro.readTensor("teacher_output"), iteration: 0, collective: SingleProcessCollective())
        assertRelativeError(targets, try file.readTensor("dino_sinkhorn/targets"), below: 1e-5, "targets of the global crops")
        let loss = try trainer.lossAndGradients(views: inputs, epoch: 0, iteration: 0).loss
        let expected = try file.readDoubles("dino_sinkhorn/loss")[0]
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * abs(expected))
        XCTAssertTrue(task.distillation.targets.center.elements.allSatisfy { $0 == 0 }, "Sinkhorn-Knopp keeps no centre")
    }

    func testSinkhornIsAnOptionOfBothDistillationTasks() throws {
        let registry = TaskRegistry.builtIn
        for name in ["dino", "selfpatch"] {
            let option = try registry.entry(named: name).defaults.first { $0.key == "centering" }
            XCTAssertEqual(option?.value, "ema", name)
            XCTAssertFalse(option?.help.isEmpty ?? true, name)
        }
        let setup = TaskSetup(
            backbone: VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32),
            views: ViewPlan(globalSize: 32), epochs: 1, iterationsPerEpoch: 1, seed: 0)
        let selfPatch = try registry.makeTask(
            named: "selfpatch", options: ["out-dim": "16", "hidden-dim": "8", "bottleneck-dim": "8", "centering": "sinkhorn"],
            setup: setup) as! SelfPatchTask
        XCTAssertEqual(selfPatch.distillation.targets.centering, .sinkhorn)
        XCTAssertThrowsError(try registry.makeTask(named: "dino", options: ["centering": "swav"], setup: setup)) { error in
            XCTAssertTrue("\(error)".contains("--dino.centering"), "\(error)")
        }
    }

    func testKoLeoLossAndGradientMatchDINOv2() throws {
        let file = try Fixtures.open("dinov2_micro.h5")
        XCTAssertEqual(try file.numericAttribute("weight", of: "koleo"), KoLeoTask.defaultWeight)
        let embeddings = try file.readTensor("koleo/embeddings")
        embeddings.requiresGradient = true
        let crops = embeddings.chunked(2)
        let neighbors = try file.readIntegers("koleo/neighbors")
        let expectedTerms = try file.readDoubles("koleo/loss_per_crop")
        var terms: [Tensor] = []
        for (index, crop) in crops.enumerated() {
            let rows = crop.shape[0]
            XCTAssertEqual(
                KoLeoTask.nearestNeighbors(crop.l2Normalized(epsilon: KoLeoTask.epsilon)),
                Array(neighbors[(index * rows)..<((index + 1) * rows)]), "neighbours of crop \(index)")
            let term = KoLeoTask.regularizer(crop)
            XCTAssertEqual(Double(term.scalar), expectedTerms[index], accuracy: 1e-5 * abs(expectedTerms[index]), "crop \(index)")
            terms.append(term)
        }
        let loss = (terms[0] + terms[1]) * Float(KoLeoTask.defaultWeight)
        let expected = try file.readDoubles("koleo/loss")[0]
        XCTAssertEqual(Double(loss.scalar), expected, accuracy: 1e-5 * abs(expected))
        loss.backward()
        assertRelativeError(embeddings.gradient!, try file.readTensor("koleo/gradient"), below: 1e-5, "d loss / d embeddings")
    }

    private func maximumDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.elements, b.elements).map { abs($0 - $1) }.max() ?? 0
    }
}

/// Ranks run on threads of this process; their reductions meet at a barrier (also used by
/// `IBOTFixtureTests`).
final class InProcessGroup: @unchecked Sendable {
    let worldSize: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var round = 0
    private var partialSum: [Float] = []
    private var finishedSum: [Float] = []

    init(worldSize: Int) { self.worldSize = worldSize }

    /// Runs `body` once per rank, each on its own thread, and returns the results in rank order.
    func run<Result>(_ body: @escaping (Int) -> Result) throws -> [Result] {
        let results = ResultSlots<Result>(count: worldSize)
        let work = UncheckedSendable(body)
        let done = DispatchGroup()
        for rank in 0..<worldSize {
            done.enter()
            Thread {
                results.set(rank, work.value(rank))
                done.leave()
            }.start()
        }
        guard done.wait(timeout: .now() + 60) == .success else { throw XCTSkip("ranks did not finish") }
        return results.values
    }

    func collective(rank: Int) -> Collective { Member(group: self, rank: rank) }

    /// Every rank's `values` summed, once all ranks have arrived.
    fileprivate func sum(_ values: [Float]) -> [Float] {
        condition.lock()
        defer { condition.unlock() }
        let myRound = round
        partialSum = arrived == 0 ? values : zip(partialSum, values).map { $0 + $1 }
        arrived += 1
        if arrived == worldSize {
            arrived = 0
            finishedSum = partialSum
            round += 1
            condition.broadcast()
        } else {
            while round == myRound { condition.wait() }
        }
        return finishedSum
    }

    private final class Member: Collective {
        let group: InProcessGroup
        let rank: Int
        init(group: InProcessGroup, rank: Int) {
            self.group = group
            self.rank = rank
        }
        var worldSize: Int { group.worldSize }
        func allReduceSum(_ tensor: Tensor) {
            let sum = group.sum(tensor.elements)
            tensor.withMutableElements { elements in for index in elements.indices { elements[index] = sum[index] } }
        }
        func allGather(_ tensor: Tensor) -> Tensor {
            preconditionFailure("Sinkhorn-Knopp only all-reduces.")
        }
    }

    /// The ranks' work, handed to their threads (each rank only touches its own tensors).
    private struct UncheckedSendable<Value>: @unchecked Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    private final class ResultSlots<Result>: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [Result?]
        init(count: Int) { slots = Array(repeating: nil, count: count) }
        func set(_ index: Int, _ value: Result) { lock.withLock { slots[index] = value } }
        var values: [Result] { lock.withLock { slots.map { $0! } } }
    }
}
