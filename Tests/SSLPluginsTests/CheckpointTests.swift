import Foundation
import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// Checkpoints: exact resume of the full training state, atomic replacement, and clear errors
/// for damaged or mismatched files.
final class CheckpointTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-tests-\(getpid())-\(name.hashValue)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private var recipe: TrainingRecipe {
        var backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 2, heads: 2, patchSize: 8, imageSize: 32)
        backbone.dropPathRate = 0.2
        let head = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8", "freeze-last-layer": "1"]
        return TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 32, localCount: 2, localSize: 24),
            tasks: [TaskSelection(name: "dino", options: head), TaskSelection(name: "selfpatch", weight: 0.1, options: head)],
            epochs: 2, batchSize: 2, seed: 3)
    }

    private func views(step: Int) -> [Tensor] {
        var generator = RandomGenerator(seed: 9, path: [UInt64(step)])
        return recipe.views.sizes.map { Tensor.randomNormal([2, 3, $0, $0], generator: &generator) }
    }

    private func run(_ trainer: Trainer, steps: Range<Int>, iterations: Int) throws -> [Double] {
        try steps.map { step in try trainer.step(views: views(step: step), epoch: step / iterations, iterationInEpoch: step % iterations).loss }
    }

    func testResumeContinuesBitForBit() throws {
        let iterations = 2
        let straight = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: iterations)
        let straightLosses = try run(straight, steps: 0..<4, iterations: iterations)

        let first = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: iterations)
        _ = try run(first, steps: 0..<2, iterations: iterations)
        let path = "\(folder!)/checkpoint.h5"
        try Checkpoint.save(first, recipe: recipe, progress: TrainingProgress(epoch: 1, stepInEpoch: 0), to: path)

        let resumed = try Checkpoint.recipe(at: path).makeTrainer(registry: .builtIn, iterationsPerEpoch: iterations)
        let progress = try Checkpoint.restore(resumed, from: path)
        XCTAssertEqual(progress, TrainingProgress(epoch: 1, stepInEpoch: 0))
        let resumedLosses = try run(resumed, steps: 2..<4, iterations: iterations)
        XCTAssertEqual(resumedLosses, Array(straightLosses[2...]), "identical losses after resuming")
        for ((name, a), (_, b)) in zip(straight.student.stateDictionary(), resumed.student.stateDictionary()) {
            XCTAssertEqual(a.elements, b.elements, "student \(name)")
        }
        for ((name, a), (_, b)) in zip(straight.teacher!.stateDictionary(), resumed.teacher!.stateDictionary()) {
            XCTAssertEqual(a.elements, b.elements, "teacher \(name)")
        }
    }

    func testLayoutIsReadableByKey() throws {
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        _ = try run(trainer, steps: 0..<1, iterations: 2)
        let path = "\(folder!)/checkpoint.h5"
        try Checkpoint.save(trainer, recipe: recipe, progress: TrainingProgress(epoch: 0, stepInEpoch: 1), to: path)
        let file = try HDF5File(path: path)
        XCTAssertEqual(try file.shape(of: "teacher/backbone/blocks.0.attn.qkv.weight"), [72, 24])
        XCTAssertTrue(file.contains("student/dino/head.last_layer.weight_v"))
        XCTAssertTrue(file.contains("teacher/selfpatch/ca_head.norm.weight"))
        XCTAssertFalse(file.contains("teacher/selfpatch/ca_head.cls_token"), "generalised SelfPatch averages, no class attention")
        XCTAssertTrue(file.contains("tasks/dino/center"))
        XCTAssertTrue(file.contains("tasks/selfpatch/patch_center"))
        XCTAssertTrue(file.contains("optimizer/exp_avg/backbone/pos_embed"))
        XCTAssertEqual(try file.numericAttribute("step", of: "optimizer/exp_avg/backbone/pos_embed"), 1)
        XCTAssertEqual(try Checkpoint.recipe(at: path), recipe)
        let hidden = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") }
        XCTAssertEqual(hidden, [], "no temporary file left behind")
    }

    func testDamagedFilesAreReportedAndNothingIsApplied() throws {
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        let path = "\(folder!)/checkpoint.h5"
        try Checkpoint.save(trainer, recipe: recipe, progress: TrainingProgress(), to: path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))

        let truncated = "\(folder!)/truncated.h5"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try Checkpoint.restore(trainer, from: truncated)) { error in
            XCTAssertTrue("\(error)".contains(truncated), "\(error)")
        }

        // Flip bytes inside the largest dataset's data: its Fletcher-32 checksum must catch it.
        let file = try HDF5File(path: path)
        let target = try file.readTensor("student/dino/head.last_layer.weight_v")
        file.close()
        let needle = target.withElements { Data(buffer: UnsafeBufferPointer(start: $0.baseAddress! + 10, count: 8)) }
        let range = try XCTUnwrap(bytes.range(of: needle))
        bytes[range.lowerBound] ^= 0xFF
        let corrupt = "\(folder!)/corrupt.h5"
        try bytes.write(to: URL(fileURLWithPath: corrupt))
        try assertRestoreAppliesNothing(from: corrupt, naming: ["head.last_layer.weight_v", "checksum"])
    }

    /// Restores the checkpoint at `path` into a trainer of other weights, so that anything
    /// applied would show, and checks that it fails with a message containing `naming` and
    /// leaves every student tensor as it was.
    private func assertRestoreAppliesNothing(from path: String, naming: [String], line: UInt = #line) throws {
        var otherSeed = recipe
        otherSeed.seed = 4
        let other = try otherSeed.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        let before = other.student.stateDictionary().map { $0.tensor.copy() }
        XCTAssertThrowsError(try Checkpoint.restore(other, from: path), line: line) { error in
            for text in naming { XCTAssertTrue("\(error)".contains(text), "names \(text): \(error)", line: line) }
        }
        for ((name, after), before) in zip(other.student.stateDictionary(), before) {
            XCTAssertEqual(after.elements, before.elements, "nothing applied: \(name)", line: line)
        }
    }

    /// A mismatch found only in the teacher leaves the student (read first) unchanged too.
    func testAMismatchInTheTeacherAppliesNothing() throws {
        let path = "\(folder!)/checkpoint.h5"
        try Checkpoint.save(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2), recipe: recipe, progress: TrainingProgress(), to: path)
        let file = try HDF5File(path: path, mode: .readWrite)
        try file.write(Tensor.zeros([2]), at: "teacher/backbone/unexpected")
        file.close()
        try assertRestoreAppliesNothing(from: path, naming: ["backbone.unexpected"])
    }

    /// The pictures outline as many neighbours as the run's patch-level task takes.
    func testThePatchNeighbourCountComesFromTheRunsTasks() throws {
        var recipe = recipe
        XCTAssertEqual(try recipe.patchNeighborCount(registry: .builtIn), 4)
        recipe.tasks[1].options["k-num"] = "2"
        XCTAssertEqual(try recipe.patchNeighborCount(registry: .builtIn), 2)
        recipe.tasks.removeLast()
        XCTAssertNil(try recipe.patchNeighborCount(registry: .builtIn))
    }

    func testArchitectureMismatchListsTheKeys() throws {
        let path = "\(folder!)/checkpoint.h5"
        try Checkpoint.save(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2), recipe: recipe, progress: TrainingProgress(), to: path)
        var wider = recipe
        wider.backbone.embedDimension = 32
        let other = try wider.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        XCTAssertThrowsError(try Checkpoint.restore(other, from: path)) { error in
            XCTAssertTrue("\(error)".contains("Size mismatch for backbone.pos_embed"), "\(error)")
        }
    }
}

final class PartialInitializationTests: XCTestCase {
    /// A DINO run continued as DINO + SelfPatch: the backbone and the DINO head load, the
    /// SelfPatch heads start fresh, and the teacher starts equal to the loaded weights.
    func testContinueDINOAsDINOPlusSelfPatch() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("init-from-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        let head = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]
        let views = ViewPlan(globalCount: 2, globalSize: 32, localCount: 2, localSize: 24)
        let dinoRecipe = TrainingRecipe(backbone: backbone, views: views, tasks: [TaskSelection(name: "dino", options: head)], epochs: 1, batchSize: 2)
        let dino = try dinoRecipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        var generator = RandomGenerator(seed: 4)
        _ = try dino.step(views: views.sizes.map { Tensor.randomNormal([2, 3, $0, $0], generator: &generator) }, epoch: 0, iterationInEpoch: 0)
        let path = "\(folder)/dino.h5"
        try Checkpoint.save(dino, recipe: dinoRecipe, progress: TrainingProgress(epoch: 1), to: path)

        var mixedRecipe = dinoRecipe
        mixedRecipe.tasks.append(TaskSelection(name: "selfpatch", weight: 0.1, options: head))
        mixedRecipe.seed = 99
        let mixed = try mixedRecipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        let freshPatchHead = mixed.student.stateDictionary().first { $0.name == "selfpatch.p_head.mlp.0.weight" }!.tensor.copy()
        let report = mixed.initialize(from: try Checkpoint.initializationState(from: path))
        XCTAssertTrue(report.loaded.contains("backbone.blocks.0.attn.qkv.weight"))
        XCTAssertTrue(report.loaded.contains("dino.head.last_layer.weight_v"))
        XCTAssertTrue(report.fresh.contains("selfpatch.p_head.mlp.0.weight"))
        XCTAssertTrue(report.skipped.isEmpty, "\(report.skipped)")
        let teacherSource = try Checkpoint.networkState(at: path, network: "teacher")
        for network in [mixed.student, mixed.teacher!] {
            let state = Dictionary(uniqueKeysWithValues: network.stateDictionary().map { ($0.name, $0.tensor) })
            XCTAssertEqual(state["backbone.pos_embed"]!.elements, teacherSource["backbone.pos_embed"]!.elements)
        }
        XCTAssertEqual(mixed.student.stateDictionary().first { $0.name == "selfpatch.p_head.mlp.0.weight" }!.tensor.elements,
                       freshPatchHead.elements, "new heads keep their initialisation")

        var wider = mixedRecipe
        wider.backbone.embedDimension = 32
        let mismatch = try wider.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
            .initialize(from: try Checkpoint.initializationState(from: path))
        XCTAssertTrue(mismatch.skipped.contains { $0.hasPrefix("backbone.pos_embed (") }, "\(mismatch.skipped)")
    }
}

final class CheckpointInteroperabilityTests: XCTestCase {
    private func savedCheckpoint(_ folder: String) throws -> String {
        let recipe = TrainingRecipe(
            backbone: VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32),
            views: ViewPlan(globalCount: 2, globalSize: 32),
            tasks: [TaskSelection(name: "dino", options: ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"])],
            epochs: 1, batchSize: 2)
        let path = "\(folder)/checkpoint.h5"
        try Checkpoint.save(try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1), recipe: recipe,
                            progress: TrainingProgress(), to: path)
        return path
    }

    /// HDF5's own tools read what we write, with the Fletcher-32 filter on every dataset.
    func testHDF5ToolsReadOurCheckpoints() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("h5tools-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = try savedCheckpoint(folder)
        func run(_ tool: String, _ arguments: [String]) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/\(tool)")
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(tool) \(arguments)")
            return output
        }
        let listing = try run("h5ls", ["-r", path])
        XCTAssertTrue(listing.contains("/teacher/backbone/blocks.0.attn.qkv.weight Dataset {72, 24}"), listing)
        let header = try run("h5dump", ["-H", "-p", "-d", "/student/dino/head.last_layer.weight_v", path])
        XCTAssertTrue(header.contains("H5T_IEEE_F32LE"), header)
        XCTAssertTrue(header.contains("CHECKSUM FLETCHER32"), header)
        let attribute = try run("h5dump", ["-a", "/format_version", path])
        XCTAssertTrue(attribute.contains("(0): 1"), attribute)
    }

    func testAnotherFormatVersionIsRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("version-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = try savedCheckpoint(folder)
        do {
            let file = try HDF5File(path: path, mode: .readWrite)
            try file.setAttribute("format_version", 2)
        }
        XCTAssertThrowsError(try Checkpoint.recipe(at: path)) { error in
            XCTAssertTrue("\(error)".contains("format version 2"), "\(error)")
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }
}

/// The networks probes read: a trainer's, and the same loaded from its checkpoint without a trainer.
final class FeatureNetworkTests: XCTestCase {
    /// The original SelfPatch recipe: no class token, so the image embedding is SelfPatch's.
    private var recipe: TrainingRecipe {
        var backbone = VisionTransformerConfiguration(embedDimension: 24, depth: 1, heads: 2, patchSize: 8, imageSize: 32)
        backbone.classToken = false
        let head = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]
        return TrainingRecipe(
            backbone: backbone, views: ViewPlan(globalCount: 2, globalSize: 32),
            tasks: [TaskSelection(name: "dino", options: head),
                    TaskSelection(name: "selfpatch", weight: 0.1, options: head.merging(["image-embedding": "true"]) { $1 })],
            epochs: 1, batchSize: 2, seed: 3)
    }

    func testACheckpointGivesTheTrainersNetworkWithItsEmbeddingHead() throws {
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2)
        var generator = RandomGenerator(seed: 1)
        let views = recipe.views.sizes.map { Tensor.randomNormal([2, 3, $0, $0], generator: &generator) }
        for step in 0..<2 { _ = try trainer.step(views: views, epoch: 0, iterationInEpoch: step) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("feature-network-\(getpid()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint.save(trainer, recipe: recipe, progress: TrainingProgress(epoch: 1), to: path)
        let images = views[0]
        for role in [NetworkRole.teacher, .student] {
            let trained = trainer.featureNetwork(role)
            let loaded = try FeatureNetwork(checkpoint: path, network: role, registry: .builtIn)
            XCTAssertNotNil(loaded.embeddingHead, "\(role)")
            let expected = trained.extractFeatures(images).images
            XCTAssertEqual(loaded.extractFeatures(images).images.elements, expected.elements, "\(role)")
        }
        XCTAssertNotEqual(
            trainer.featureNetwork(.teacher).extractFeatures(images).images.elements,
            trainer.featureNetwork(.student).extractFeatures(images).images.elements, "the roles differ after training")
        let random = try FeatureNetwork(randomlyInitialized: recipe, registry: .builtIn)
        XCTAssertNotNil(random.embeddingHead)
        let fresh = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 2).featureNetwork(.student)
        XCTAssertEqual(random.extractFeatures(images).images.elements, fresh.extractFeatures(images).images.elements,
                       "a random network is the recipe's initialisation")
    }
}

/// Weight-space interpolation of a run's checkpoint with the one it started from.
final class CheckpointInterpolationTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("interpolation-\(getpid())-\(name.hashValue)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private let head = ["out-dim": "32", "hidden-dim": "16", "bottleneck-dim": "8"]

    private func recipe(tasks: [String], embedDimension: Int = 24) -> TrainingRecipe {
        TrainingRecipe(
            backbone: VisionTransformerConfiguration(embedDimension: embedDimension, depth: 1, heads: 2, patchSize: 8, imageSize: 32),
            views: ViewPlan(globalCount: 2, globalSize: 32, localCount: 2, localSize: 24),
            tasks: tasks.map { TaskSelection(name: $0, weight: $0 == "dino" ? 1 : 0.1, options: head) }, epochs: 1, batchSize: 2)
    }

    /// Trains `recipe` for one step from `initial` (when given) and saves it as `name`.
    private func checkpoint(_ recipe: TrainingRecipe, named name: String, from initial: String? = nil, seed: UInt64) throws -> String {
        let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
        if let initial { _ = trainer.initialize(from: try Checkpoint.initializationState(from: initial)) }
        var generator = RandomGenerator(seed: seed)
        _ = try trainer.step(views: recipe.views.sizes.map { Tensor.randomNormal([2, 3, $0, $0], generator: &generator) }, epoch: 0, iterationInEpoch: 0)
        let path = "\(folder!)/\(name).h5"
        try Checkpoint.save(trainer, recipe: recipe, progress: TrainingProgress(epoch: 1), to: path)
        return path
    }

    func testEveryNetworkTensorLiesBetweenTheTwoAndTheRestIsTheSecondRuns() throws {
        let first = try checkpoint(recipe(tasks: ["dino"]), named: "first", seed: 1)
        let second = try checkpoint(recipe(tasks: ["dino", "selfpatch"]), named: "second", from: first, seed: 2)
        let output = "\(folder!)/interpolated.h5"
        try Checkpoint.interpolate(from: first, to: second, weight: 0.75, output: output)
        for network in ["student", "teacher"] {
            let start = try Checkpoint.networkState(at: first, network: network)
            let end = try Checkpoint.networkState(at: second, network: network)
            let result = try Checkpoint.networkState(at: output, network: network)
            XCTAssertEqual(Set(result.keys), Set(end.keys))
            for (key, tensor) in result {
                if let initial = start[key] {
                    let expected = zip(initial.elements, end[key]!.elements).map { 0.25 * $0 + 0.75 * $1 }
                    for (value, wanted) in zip(tensor.elements, expected) {
                        XCTAssertEqual(value, wanted, accuracy: 1e-6 * max(1, abs(wanted)), "\(network) \(key)")
                    }
                } else {
                    XCTAssertTrue(key.hasPrefix("selfpatch."), key)
                    XCTAssertEqual(tensor.elements, end[key]!.elements, "\(network) \(key) kept from the second run")
                }
            }
            XCTAssertNotEqual(start["backbone.pos_embed"]!.elements, end["backbone.pos_embed"]!.elements, "the runs differ")
        }
        let endFile = try HDF5File(path: second), resultFile = try HDF5File(path: output)
        XCTAssertEqual(try resultFile.readTensor("optimizer/exp_avg/backbone/pos_embed").elements,
                       try endFile.readTensor("optimizer/exp_avg/backbone/pos_embed").elements)
        XCTAssertEqual(try resultFile.readTensor("tasks/dino/center").elements, try endFile.readTensor("tasks/dino/center").elements)
        XCTAssertEqual(try Checkpoint.recipe(at: output), try Checkpoint.recipe(at: second))
        XCTAssertTrue(try resultFile.stringAttribute("interpolation").hasPrefix("0.75 × \(second) + 0.25 × \(first)"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") }, [],
                       "no temporary file left behind")
    }

    func testTheDepthProfileRaisesTheSecondsShareBlockByBlock() throws {
        var twoBlocks = recipe(tasks: ["dino"])
        twoBlocks.backbone.depth = 2
        let first = try checkpoint(twoBlocks, named: "first", seed: 1)
        let second = try checkpoint(twoBlocks, named: "second", from: first, seed: 2)
        let output = "\(folder!)/interpolated.h5"
        try Checkpoint.interpolate(from: first, to: second, weight: 0.4, profile: .depth, output: output)
        let start = try Checkpoint.networkState(at: first), end = try Checkpoint.networkState(at: second)
        let result = try Checkpoint.networkState(at: output)
        // Input side 0.4; block 0 halfway from 0.4 to 1; block 1, the final norm and the head 1.
        let shares = ["backbone.pos_embed": 0.4, "backbone.cls_token": 0.4, "backbone.patch_embed.proj.weight": 0.4,
                      "backbone.blocks.0.attn.qkv.weight": 0.7, "backbone.blocks.0.norm1.bias": 0.7,
                      "backbone.blocks.1.mlp.fc2.weight": 1, "backbone.norm.weight": 1, "dino.head.mlp.0.weight": 1]
        for (key, share) in shares {
            let expected = zip(start[key]!.elements, end[key]!.elements).map { Float(1 - share) * $0 + Float(share) * $1 }
            for (value, wanted) in zip(result[key]!.elements, expected) {
                XCTAssertEqual(value, wanted, accuracy: 1e-6 * max(1, abs(wanted)), key)
            }
        }
        for key in ["backbone.pos_embed", "backbone.blocks.0.attn.qkv.weight", "backbone.blocks.1.mlp.fc2.weight", "dino.head.mlp.0.weight"] {
            XCTAssertNotEqual(start[key]!.elements, end[key]!.elements, "\(key) differs between the runs")
        }
    }

    func testTheEndsGiveEitherCheckpointsWeights() throws {
        let first = try checkpoint(recipe(tasks: ["dino"]), named: "first", seed: 1)
        let second = try checkpoint(recipe(tasks: ["dino"]), named: "second", from: first, seed: 2)
        for (weight, source) in [(0.0, first), (1.0, second)] {
            let output = "\(folder!)/ends/at-\(weight).h5"  // the folder is created
            try Checkpoint.interpolate(from: first, to: second, weight: weight, output: output)
            let expected = try Checkpoint.networkState(at: source, network: "teacher")
            for (key, tensor) in try Checkpoint.networkState(at: output, network: "teacher") {
                XCTAssertEqual(tensor.elements, expected[key]!.elements, "weight \(weight): \(key)")
            }
        }
    }

    func testMismatchesAndOverwritingAnInputAreRefusedWithoutWriting() throws {
        let first = try checkpoint(recipe(tasks: ["dino"]), named: "first", seed: 1)
        let second = try checkpoint(recipe(tasks: ["dino"]), named: "second", from: first, seed: 2)
        let wider = try checkpoint(recipe(tasks: ["dino"], embedDimension: 32), named: "wider", seed: 3)
        let output = "\(folder!)/blend/interpolated.h5"
        XCTAssertThrowsError(try Checkpoint.interpolate(from: wider, to: second, weight: 0.5, output: output)) { error in
            XCTAssertTrue("\(error)".contains("another backbone architecture"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.interpolate(from: first, to: second, weight: 1.5, output: output)) { error in
            XCTAssertTrue("\(error)".contains("must lie between 0 and 1"), "\(error)")
        }
        let backboneFile = "\(folder!)/backbone.h5"
        try BackboneFile.write(try BackboneFile.load(first), to: backboneFile)
        XCTAssertThrowsError(try Checkpoint.interpolate(from: backboneFile, to: second, weight: 0.5, output: output)) { error in
            XCTAssertTrue("\(error)".contains("holds no student network"), "\(error)")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: second))
        XCTAssertThrowsError(try Checkpoint.interpolate(from: first, to: second, weight: 0.5, output: "\(folder!)/./second.h5")) { error in
            XCTAssertTrue("\(error)".contains("would be overwritten"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: second)), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder!)/blend"), "no output folder left behind")
    }
}
