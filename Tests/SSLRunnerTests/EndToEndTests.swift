import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// `ssl-run` as a user runs it: training, evaluation, report, export, and the files it leaves.
final class EndToEndTests: XCTestCase {
    func testTrainEvaluateReportAndExport() throws {
        let (folder, evaluation) = try CommandLine.trainAndEvaluateTinyRun("end-to-end")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertTrue(evaluation.contains("knn/top1@20"), evaluation)

        // The checkpoint opens and holds both networks.
        let checkpoint = try HDF5File(path: "\(folder)/checkpoint.h5")
        XCTAssertTrue(checkpoint.contains("teacher/backbone/pos_embed"))
        XCTAssertEqual(try checkpoint.numericAttribute("epoch"), 2)
        // Every metrics line is a JSON object with a step.
        let lines = try String(contentsOfFile: "\(folder)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertGreaterThanOrEqual(lines.count, 8)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertNotNil(object?["step"], String(line))
        }
        XCTAssertTrue(lines.contains { $0.contains("\"selfpatch.loss\"") })
        // The pictures decode, the summary parses, the report embeds charts.
        for name in ["trained-attention", "trained-pca", "trained-similarity", "random-pca"] {
            let image = try ImageDecoder.decode(contentsOf: "\(folder)/\(name).png")
            XCTAssertGreaterThan(image.width, 8, name)
        }
        // The probes and pictures are in the run's TensorBoard events too, as scalars and images.
        let events = try TensorBoardFile.events(at: try XCTUnwrap(TensorBoardEventWriter.eventFiles(in: folder).first))
        XCTAssertNotNil(events.last { !$0.scalars.isEmpty }?.scalars["eval/trained/knn/top1@20"])
        XCTAssertTrue(events.contains { $0.imageTags.contains("trained: first three principal components of the patch features") })
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(folder)/summary.json"))) as? [String: Any]
        XCTAssertNotNil((summary?["metrics"] as? [String: Any])?["trained/knn/top1@20"])
        let report = try String(contentsOfFile: "\(folder)/report.html", encoding: .utf8)
        XCTAssertTrue(report.contains("<svg"))
        XCTAssertTrue(report.contains("data:image/png;base64,"))

        // Export writes a backbone file with PyTorch keys that loads back.
        let exported = "\(folder)/vit.h5"
        let export = try CommandLine.run(["export", "--checkpoint", "\(folder)/checkpoint.h5", "--from", "teacher", "--output", exported])
        XCTAssertEqual(export.status, 0, export.output)
        let backbone = try BackboneFile.load(exported)
        XCTAssertEqual(try HDF5File(path: exported).shape(of: "blocks.0.attn.qkv.weight"), [144, 48])
        let stored = try Checkpoint.networkState(at: "\(folder)/checkpoint.h5", network: "teacher")
        XCTAssertEqual(backbone.positionTable.elements, stored["backbone.pos_embed"]!.elements)

        // A checkpoint interpolated with itself keeps its weights; the output's folder is made.
        let interpolated = "\(folder)/interpolated/checkpoint.h5"
        let interpolate = try CommandLine.run(
            ["interpolate", "\(folder)/checkpoint.h5", "\(folder)/checkpoint.h5", "--weight", "0.5", "--output", interpolated])
        XCTAssertEqual(interpolate.status, 0, interpolate.output)
        XCTAssertEqual(try Checkpoint.networkState(at: interpolated)["backbone.pos_embed"]!.elements, stored["backbone.pos_embed"]!.elements)

        // Features of a sample of the training split name each image's index in the data set.
        let featuresFile = "\(folder)/features.h5"
        let features = try CommandLine.run(
            ["features", "--checkpoint", exported, "--split", "train", "--count", "12", "--output", featuresFile])
        XCTAssertEqual(features.status, 0, features.output)
        let written = try HDF5File(path: featuresFile)
        XCTAssertEqual(try written.shape(of: "image_features"), [12, 48])
        let indices = try written.readIntegers("dataset_indices"), labels = try written.readIntegers("labels")
        let training = try FashionMNISTDataset(split: .train)
        XCTAssertEqual(labels, indices.map { training.label(at: $0) ?? -1 })
        XCTAssertGreaterThan(Set(indices).count, 1)
    }

    /// The original SelfPatch recipe has no backbone class token: its image feature is the
    /// aggregation head's class token, which the probes read through the task.
    func testOriginalSelfPatchRunIsProbedThroughItsAggregationHead() throws {
        let folder = try CommandLine.temporaryFolder("original-selfpatch")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let arguments = CommandLine.tinyRun.map { $0 == "fashion-mnist" ? "selfpatch-original" : $0 } + ["--patch-size", "4", "--epochs", "1", "--output", folder]
        let train = try CommandLine.run(arguments)
        XCTAssertEqual(train.status, 0, train.output)
        XCTAssertFalse(try HDF5File(path: "\(folder)/checkpoint.h5").contains("teacher/backbone/cls_token"))
        let evaluation = try CommandLine.run(CommandLine.tinyEvaluation(of: folder))
        XCTAssertEqual(evaluation.status, 0, evaluation.output)
        XCTAssertTrue(evaluation.output.contains("knn/top1@20"), evaluation.output)
    }

    func testTrainingUsesTheProcessorsBLASKernels() throws {
        let flags = Set(((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
            .split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        guard ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains),
            ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil
        else { throw XCTSkip("needs an AVX-512 processor and no OPENBLAS_CORETYPE set") }
        let folder = try CommandLine.temporaryFolder("kernels")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (status, output) = try CommandLine.run(CommandLine.tinyRun + ["--max-steps", "1", "--output", folder])
        XCTAssertEqual(status, 0, output)
        let family = output.components(separatedBy: "OpenBLAS kernels ").last?.prefix { !$0.isWhitespace } ?? ""
        XCTAssertTrue(["SkylakeX", "Cooperlake", "SapphireRapids"].contains(String(family)), output)
    }

    func testTensorBoardEventsMatchTheMetricsAcrossAResume() throws {
        let folder = try CommandLine.temporaryFolder("tensorboard")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try CommandLine.run(CommandLine.tinyRun + ["--max-steps", "3", "--output", folder])
        XCTAssertEqual(first.status, 0, first.output)
        // A record logged after the checkpoint by a run that was then killed.
        let events = try XCTUnwrap(TensorBoardEventWriter.eventFiles(in: folder).first)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: events))
        try handle.seekToEnd()
        let contents = try Data(contentsOf: URL(fileURLWithPath: events))
        let last = try XCTUnwrap(TensorBoardFile.records(in: contents).last)
        try handle.write(contentsOf: contents.suffix(last.count + 16))
        try handle.close()
        let resumed = try CommandLine.run(["--resume", folder])
        XCTAssertEqual(resumed.status, 0, resumed.output)

        // Values parsed from their text with Double(_:), which is exact (Foundation's JSON
        // reader can land one ulp away), then rounded to float as the event file stores them.
        var expected: [String: Float] = [:]
        for line in try String(contentsOfFile: "\(folder)/metrics.jsonl", encoding: .utf8).split(separator: "\n") {
            let fields = line.dropFirst().dropLast().split(separator: ",").map { $0.split(separator: ":") }
            let step = try XCTUnwrap(fields.first { $0[0] == "\"step\"" }.flatMap { Int($0[1]) })
            for field in fields where !["\"step\"", "\"epoch\""].contains(field[0]) {
                guard let value = Double(field[1]) else { continue }
                expected["\(step)/\(field[0].dropFirst().dropLast())"] = Float(value)
            }
        }
        var found: [String: Float] = [:]
        for event in try TensorBoardFile.events(at: events) {
            for (tag, value) in event.scalars {
                XCTAssertNil(found["\(event.step)/\(tag)"], "step \(event.step) of \(tag) logged twice")
                found["\(event.step)/\(tag)"] = value
            }
        }
        XCTAssertEqual(found, expected, "every scalar of metrics.jsonl, once, in the event file")
        XCTAssertEqual(try TensorBoardEventWriter.eventFiles(in: folder).count, 1)
    }

    func testACollapsingRunSaysSoAndMarksTheStretch() throws {
        let folder = try CommandLine.temporaryFolder("collapse")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // A teacher temperature of 10 flattens every target: the uniform collapse.
        let (status, output) = try CommandLine.run(
            CommandLine.tinyRun + ["--subset", "256", "--epochs", "1", "--dino.teacher-temp", "10",
                                   "--dino.warmup-teacher-temp", "10", "--output", folder])
        XCTAssertEqual(status, 0, output)
        let warnings = output.split(separator: "\n").filter { $0.hasPrefix("Warning: dino's teacher has been nearly uniform") }
        XCTAssertEqual(warnings.count, 1, output)
        let metrics = try String(contentsOfFile: "\(folder)/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"collapse/dino.uniform_teacher\":1"), "the stretch is marked in metrics.jsonl")

        let healthy = try CommandLine.run(CommandLine.tinyRun + ["--output", folder + "/healthy"])
        XCTAssertEqual(healthy.status, 0, healthy.output)
        XCTAssertFalse(healthy.output.contains("Warning:"), healthy.output)
    }

    func testClearErrorsBeforeTraining() throws {
        let missing = try CommandLine.run(CommandLine.tinyRun + ["--data", "/nonexistent/images", "--output", "/tmp/unused-\(getpid())"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("/nonexistent/images"), missing.output)
        let unknown = try CommandLine.run(["--tasks", "dino,rotation"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.output.contains("Unknown task 'rotation'"), unknown.output)
        let badWeights = try CommandLine.run(["--tasks", "dino", "--weights", "dino=-1"])
        XCTAssertTrue(badWeights.output.contains("--weights"), badWeights.output)
    }
}
