import Foundation
import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// Interrupting and resuming real `ssl-run` processes (issue: exact resume).
final class ResumeTests: XCTestCase {
    /// SIGTERM mid-epoch finishes the step, writes a checkpoint and exits 143; resuming gives
    /// the same weights and losses as a run that was never interrupted.
    func testSIGTERMMidEpochThenResumeIsBitIdentical() throws {
        let root = try CommandLine.temporaryFolder("resume")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = "\(root)/straight", interrupted = "\(root)/interrupted"
        let arguments = CommandLine.tinyRun + ["--subset", "512", "--epochs", "2"]
        XCTAssertEqual(try CommandLine.run(arguments + ["--output", straight]).status, 0)

        let (process, pipe) = try CommandLine.start(arguments + ["--output", interrupted])
        // Wait until a few steps of the first epoch are logged, then interrupt.
        let metrics = "\(interrupted)/metrics.jsonl"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let lines = (try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0
            if lines >= 3 { break }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGTERM)
        _ = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 128 + SIGTERM, "the conventional status for SIGTERM")
        let stopped = try HDF5File(path: "\(interrupted)/checkpoint.h5")
        let stoppedAt = (epoch: try stopped.numericAttribute("epoch"), step: try stopped.numericAttribute("step_in_epoch"))
        stopped.close()
        XCTAssertTrue(stoppedAt.epoch < 2, "stopped before the end (epoch \(stoppedAt.epoch), step \(stoppedAt.step))")

        let resumed = try CommandLine.run(["--resume", interrupted])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        for group in ["student", "teacher"] {
            let a = try CommandLine.network("\(straight)/checkpoint.h5", group)
            let b = try CommandLine.network("\(interrupted)/checkpoint.h5", group)
            XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
            for (key, values) in a { XCTAssertEqual(values, b[key], "\(group) \(key)") }
        }
        let lastLoss = { (folder: String) -> [Double] in
            let lines = (try? String(contentsOfFile: "\(folder)/metrics.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
            guard let line = lines.last(where: { $0.contains("\"loss\"") }),
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else { return [] }
            return ["step", "loss", "dino.loss", "selfpatch.loss"].compactMap { (object[$0] as? NSNumber)?.doubleValue }
        }
        XCTAssertEqual(lastLoss(straight).count, 4)
        XCTAssertEqual(lastLoss(straight), lastLoss(interrupted), "the last logged step and its losses are identical")
    }

    /// SIGKILL at any moment (including while a checkpoint is written) leaves a loadable
    /// checkpoint, never a torn one.
    func testSIGKILLNeverLeavesATornCheckpoint() throws {
        let root = try CommandLine.temporaryFolder("kill")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Tiny epochs: a checkpoint is written every step.
        let arguments = CommandLine.tinyRun + ["--subset", "16", "--epochs", "1000", "--output", root]
        for delay in [0, 200_000, 400_000] as [useconds_t] {
            let started = Date()
            let (process, pipe) = try CommandLine.start(arguments)
            // Count from this process's first checkpoint, however long start-up takes on a busy machine.
            let deadline = started.addingTimeInterval(60)
            func checkpointIsNew() -> Bool {
                let modified = (try? FileManager.default.attributesOfItem(atPath: "\(root)/checkpoint.h5"))?[.modificationDate] as? Date
                return modified.map { $0 >= started } ?? false
            }
            while process.isRunning && Date() < deadline && !checkpointIsNew() { usleep(1_000) }
            usleep(delay)
            kill(process.processIdentifier, SIGKILL)
            _ = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let path = "\(root)/checkpoint.h5"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let recipe = try Checkpoint.recipe(at: path)
            let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1)
            XCTAssertNoThrow(try Checkpoint.restore(trainer, from: path), "checkpoint after SIGKILL at \(delay) µs")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(root)/checkpoint.h5"), "at least one checkpoint was written")
    }
}
