import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// Runs the built `ssl-run` executable.
enum CommandLine {
    /// The debug build of `ssl-run` next to the test bundle.
    static let executable: String = {
        var components = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)  // Tests/SSLRunnerTests/CommandLineSupport.swift
        return components.joined(separator: "/") + "/.build/debug/ssl-run"
    }()

    /// A tiny DINO + SelfPatch configuration that trains in seconds in a debug build.
    static let tinyRun = [
        "--preset", "fashion-mnist", "--tasks", "dino,selfpatch", "--arch", "48x1", "--heads", "2", "--patch-size", "4", "--global-size", "16", "--local-size", "12",
        "--local-crops", "2", "--batch-size", "16", "--subset", "64", "--epochs", "2", "--eval-every", "0",
        "--log-every", "1", "--loader-threads", "1",
        "--dino.out-dim", "64", "--dino.hidden-dim", "32", "--dino.bottleneck-dim", "16",
        "--selfpatch.out-dim", "32", "--selfpatch.hidden-dim", "32", "--selfpatch.bottleneck-dim", "16",
    ]

    /// The arguments of `ssl-run eval` probing the checkpoint in `folder` on small sets.
    static func tinyEvaluation(of folder: String) -> [String] {
        ["eval", "--checkpoint", "\(folder)/checkpoint.h5", "--train-count", "64", "--test-count", "32", "--scene-count", "16"]
    }

    /// Trains ``tinyRun`` into a new temporary folder for the test `name` and probes it with
    /// ``tinyEvaluation(of:)``, failing the test when either command fails; returns the folder
    /// (the caller removes it) and the output of `eval`.
    static func trainAndEvaluateTinyRun(
        _ name: String, file: StaticString = #filePath, line: UInt = #line
    ) throws -> (folder: String, evaluationOutput: String) {
        let folder = try temporaryFolder(name)
        let train = try run(tinyRun + ["--output", folder])
        XCTAssertEqual(train.status, 0, train.output, file: file, line: line)
        let evaluation = try run(tinyEvaluation(of: folder))
        XCTAssertEqual(evaluation.status, 0, evaluation.output, file: file, line: line)
        return (folder, evaluation.output)
    }

    /// Starts `ssl-run` with `arguments`, output captured.
    static func start(_ arguments: [String]) throws -> (process: Process, output: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return (process, output)
    }

    /// `mpirun` from OpenMPI, when installed.
    static let mpirun = "/usr/bin/mpirun"

    /// Runs `ssl-run` under `mpirun` to completion and returns its exit status and output.
    static func runWithMPI(processes: Int = 2, _ arguments: [String], log: String) throws -> (status: Int32, output: String) {
        let job = try startWithMPI(ranks: Array(repeating: arguments, count: processes), log: log)
        job.waitUntilExit()
        return (job.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// Starts an `mpirun` job with one process per element of `ranks`, each running `ssl-run`
    /// with its own arguments. (Output goes to a file: mpirun stalls its ranks while a pipe it
    /// writes to is not read.)
    static func startWithMPI(ranks: [[String]], log: String) throws -> Process {
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: log])
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun)
        let programs = ranks.map { ["-np", "1", executable] + $0 }
        process.arguments = ["--allow-run-as-root", "--oversubscribe"] + Array(programs.joined(separator: [":"]))
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits at most `seconds` for `process` to exit; returns whether it did (it is killed
    /// otherwise).
    static func waitForExit(_ process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        guard process.isRunning else { return true }
        process.terminate()
        process.waitUntilExit()
        return false
    }

    /// The process ids of `ssl-run` processes whose arguments contain `marker` and that run as
    /// MPI rank `rank`.
    static func processes(withArgument marker: String, rank: Int) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let arguments = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
                arguments.hasPrefix(executable), arguments.contains(marker),
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { return false }
            return String(decoding: environment, as: UTF8.self).split(separator: "\0").contains("OMPI_COMM_WORLD_RANK=\(rank)")
        }
    }

    /// Runs `ssl-run` to completion and returns its exit status and output.
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let (process, pipe) = try start(arguments)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A new empty folder for a test's runs.
    static func temporaryFolder(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ssl-run-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Every dataset of a network group in a checkpoint, by name.
    static func network(_ path: String, _ group: String) throws -> [String: [Float]] {
        try Checkpoint.networkState(at: path, network: group).mapValues(\.elements)
    }
}
