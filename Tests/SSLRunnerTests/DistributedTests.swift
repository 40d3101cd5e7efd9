import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// Data-parallel training with `mpirun`: two processes with half the batch each must compute
/// what one process computes on the whole batch (gradients, centres, batch-norm statistics).
final class DistributedTests: XCTestCase {
    private static let mpirun = "/usr/bin/mpirun"

    func testDINOAndSelfPatchOnTwoRanksMatchOneRank() throws {
        try compareRanks(
            CommandLine.tinyRun,
            groups: ["optimizer/exp_avg/backbone", "optimizer/exp_avg/dino", "optimizer/exp_avg/selfpatch", "tasks/dino", "tasks/selfpatch"],
            minimumCompared: 25)
    }

    /// MoCo v3 gathers keys across ranks (labels offset by rank) and synchronises batch norm.
    func testMoCoOnTwoRanksMatchesOneRank() throws {
        let arguments = [
            "--preset", "small", "--tasks", "moco", "--arch", "48x1", "--heads", "2", "--global-size", "16",
            "--local-crops", "0", "--subset", "64", "--epochs", "2", "--eval-every", "0", "--loader-threads", "1",
            "--moco.dim", "16", "--moco.mlp-dim", "32",
        ]
        try compareRanks(
            arguments, groups: ["optimizer/exp_avg/backbone", "optimizer/exp_avg/moco", "student/moco", "teacher/moco"],
            minimumCompared: 30)
    }

    /// Runs one step of `arguments` as 1 rank × 16 images and 2 ranks × 8 images and compares
    /// the datasets of `groups` (Adam moments after one step are 0.1 × the gradients).
    private func compareRanks(_ arguments: [String], groups: [String], minimumCompared: Int) throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.mpirun), "OpenMPI is not installed")
        let root = try CommandLine.temporaryFolder("distributed-\(name.hashValue)")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let common = arguments + ["--drop-path-rate", "0", "--max-steps", "1"]
        let single = try CommandLine.run(common + ["--batch-size", "16", "--output", "\(root)/one"])
        XCTAssertEqual(single.status, 0, single.output)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun)
        process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", CommandLine.executable]
            + common + ["--batch-size", "8", "--output", "\(root)/two"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)

        let one = try HDF5File(path: "\(root)/one/checkpoint.h5"), two = try HDF5File(path: "\(root)/two/checkpoint.h5")
        var compared = 0
        for group in groups where one.contains(group) {
            for name in try one.members(of: group) where !name.hasSuffix("num_batches_tracked") {
                let path = "\(group)/\(name)"
                let a = try two.readTensor(path).elements, b = try one.readTensor(path).elements
                // Relative agreement, with an absolute floor for tensors that are zero up to
                // rounding (a bias after batch norm, the running mean of batch-normalised inputs).
                let difference = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
                let reference = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                XCTAssertLessThanOrEqual(difference, 1e-4 * reference + 1e-6 * Double(b.count).squareRoot(), path)
                compared += 1
            }
        }
        XCTAssertGreaterThanOrEqual(compared, minimumCompared, "every trained tensor and statistic compared")
    }
}

final class DistributedResumeTests: XCTestCase {
    /// A 2-rank run interrupted with SIGTERM (which mpirun forwards to both ranks) and resumed
    /// with mpirun again ends with the same weights as an uninterrupted 2-rank run.
    func testTwoRankRunInterruptedAndResumedContinuesExactly() throws {
        let mpirun = "/usr/bin/mpirun"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: mpirun), "OpenMPI is not installed")
        let root = try CommandLine.temporaryFolder("distributed-resume")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Enough steps that the interruption lands mid-run.
        let arguments = CommandLine.tinyRun + ["--subset", "512", "--batch-size", "8"]
        // Output goes to a file: mpirun stalls its ranks while a pipe it writes to is not read.
        func launch(_ extra: [String]) throws -> (Process, String) {
            let log = "\(root)/mpirun-\(UUID().uuidString).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: mpirun)
            process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", CommandLine.executable] + extra
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = FileHandle(forWritingAtPath: log)
            process.standardInput = FileHandle.nullDevice
            try process.run()
            return (process, log)
        }
        func finish(_ launched: (Process, String)) -> (Int32, String) {
            launched.0.waitUntilExit()
            return (launched.0.terminationStatus, (try? String(contentsOfFile: launched.1, encoding: .utf8)) ?? "")
        }
        let straight = finish(try launch(arguments + ["--output", "\(root)/straight"]))
        XCTAssertEqual(straight.0, 0, straight.1)

        let interrupted = try launch(arguments + ["--output", "\(root)/interrupted"])
        let metrics = "\(root)/interrupted/metrics.jsonl"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3 {
            usleep(20_000)
        }
        kill(interrupted.0.processIdentifier, SIGTERM)
        let stopped = finish(interrupted)
        XCTAssertNotEqual(stopped.0, 0, "the interrupted job reports the signal")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(root)/interrupted/checkpoint.h5"), stopped.1)
        let stoppedEpoch = try HDF5File(path: "\(root)/interrupted/checkpoint.h5").numericAttribute("epoch")
        XCTAssertLessThan(stoppedEpoch, 2, "stopped before the end")

        let resumed = finish(try launch(["--resume", "\(root)/interrupted"]))
        XCTAssertEqual(resumed.0, 0, resumed.1)
        for group in ["student", "teacher"] {
            let a = try CommandLine.network("\(root)/straight/checkpoint.h5", group)
            let b = try CommandLine.network("\(root)/interrupted/checkpoint.h5", group)
            for (key, values) in a { XCTAssertEqual(values, b[key], "\(group) \(key)") }
        }
    }
}

final class DistributedFailureTests: XCTestCase {
    /// When one rank dies, the whole job stops with an error instead of the other rank waiting
    /// forever in a collective.
    func testAKilledRankStopsTheWholeJob() throws {
        let mpirun = "/usr/bin/mpirun"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: mpirun), "OpenMPI is not installed")
        let root = try CommandLine.temporaryFolder("distributed-failure")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let output = "\(root)/run"
        let log = "\(root)/mpirun.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun)
        process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", CommandLine.executable]
            + CommandLine.tinyRun + ["--subset", "4096", "--batch-size", "8", "--output", output]
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let metrics = "\(output)/metrics.jsonl"
        var deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3 {
            usleep(20_000)
        }
        // Kill one of the two ranks (the processes training into this run folder).
        let ranks = try runningRanks(writingTo: output)
        XCTAssertEqual(ranks.count, 2, "two ranks found")
        guard let victim = ranks.last else { return }
        kill(victim, SIGKILL)
        deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        XCTAssertFalse(process.isRunning, "mpirun stopped the job within a minute")
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0, "the job reports the failure")
        XCTAssertEqual(try runningRanks(writingTo: output), [], "no rank is left waiting")
    }

    /// The process ids of `ssl-run` processes whose command line names `folder`.
    private func runningRanks(writingTo folder: String) throws -> [pid_t] {
        var result: [pid_t] = []
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = pid_t(entry),
                let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { continue }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if arguments.first?.hasSuffix("ssl-run") == true && arguments.contains(folder) { result.append(pid) }
        }
        return result.sorted()
    }
}
