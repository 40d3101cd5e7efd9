import Foundation
import SSLCore
import SSLPlugins
import SSLTestSupport
import XCTest

/// Faults a hostile but ordinary user causes, through the real `ssl-run`: kills during writes,
/// two runs on one folder, link loops and FIFOs, float images, altered checkpoints, a full
/// disk and values that used to trap. Every run is bounded, so a regression fails instead of
/// hanging.
final class RobustnessTests: XCTestCase {
    /// The tiny DINO recipe of the Makefile's test target.
    static let tiny = [
        "--tasks", "dino", "--arch", "48x1", "--heads", "2", "--patch-size", "4", "--global-size", "16", "--local-crops", "0",
        "--batch-size", "16", "--eval-every", "0", "--loader-threads", "1",
        "--dino.out-dim", "64", "--dino.hidden-dim", "32", "--dino.bottleneck-dim", "16",
    ]

    // MARK: Data loss

    /// SIGKILL while a per-epoch copy or the checkpoint is being written leaves every kept
    /// file whole; the resumed run removes the dead process's temporary file and logs each
    /// step once.
    func testSIGKILLDuringWritesLeavesWholeFilesAndResumesCleanly() throws {
        let folder = try CommandLine.temporaryFolder("kill-write")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // One step per epoch: every step writes the checkpoint and an epoch copy.
        let arguments = Self.tiny + ["--subset", "16", "--epochs", "100000", "--save-every", "1", "--log-every", "1", "--output", folder]
        for prefix in [".checkpoint-epoch", ".checkpoint.h5.tmp-"] {
            var landed = false
            for _ in 0..<6 where !landed {
                landed = try Self.killWhileWriting(arguments, folder: folder, temporaryPrefix: prefix)
                try Self.assertKeptCheckpointsAreWhole(in: folder)
            }
            XCTAssertTrue(landed, "a SIGKILL landed while a \(prefix) file was written")
        }
        let resumed = try CommandLine.runBounded(["--resume", folder, "--max-steps", "2"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(Self.temporaryFiles(in: folder), [], "stale temporary files are removed at start")
        let records = try Self.metricsRecords(folder)
        let keys = records.map { "\($0.step)/\($0.values["loss"] == nil ? "epoch" : "step")" }
        XCTAssertEqual(keys.count, Set(keys).count, "every step is logged once after kills and a resume")
    }

    /// A second run on a folder in use is refused naming the running process; a lock left by a
    /// killed run does not block.
    func testSecondRunOnTheSameFolderIsRefused() throws {
        let folder = try CommandLine.temporaryFolder("lock")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let arguments = Self.tiny + ["--subset", "16", "--epochs", "100000", "--log-every", "1", "--output", folder]
        let first = try CommandLine.startQuietly(arguments)
        defer { kill(first.processIdentifier, SIGKILL); first.waitUntilExit() }
        XCTAssertTrue(Self.waitFor(seconds: 60) { (try? Self.metricsRecords(folder).count) ?? 0 > 0 }, "the first run logs")
        let second = try CommandLine.runBounded(arguments)
        XCTAssertEqual(second.status, 1)
        XCTAssertTrue(second.output.contains("in use by another ssl-run (process \(first.processIdentifier))"), second.output)
        Self.assertOneErrorLine(second)

        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let third = try CommandLine.runBounded(["--resume", folder, "--max-steps", "1"])
        XCTAssertEqual(third.status, 0, "a dead run's lock does not block: \(third.output)")
    }

    /// Float images are refused naming the type and shape instead of becoming black.
    func testFloatHDF5ImagesAreRefused() throws {
        let folder = try CommandLine.temporaryFolder("float")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = "\(folder)/images.h5"
        let file = try HDF5File(path: path, mode: .create)
        try file.write(Tensor(shape: [20, 8, 8, 3], elements: (0..<3840).map { Float($0 % 100) / 100 }), at: "images")
        file.close()
        let result = try CommandLine.runBounded(Self.tiny + ["--data", path, "--output", "\(folder)/run"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("float32") && result.output.contains("[20, 8, 8, 3]"), result.output)
        Self.assertOneErrorLine(result)
    }

    /// One changed digit of the stored configuration is detected on resume.
    func testAlteredCheckpointConfigurationIsRefused() throws {
        let folder = try CommandLine.temporaryFolder("flip")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trained = try CommandLine.runBounded(Self.tiny + ["--subset", "16", "--epochs", "2", "--output", folder])
        XCTAssertEqual(trained.status, 0, trained.output)
        let path = "\(folder)/checkpoint.h5"
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let pattern = Data("\"epochs\":2".utf8)
        let range = try XCTUnwrap(bytes.range(of: pattern), "the configuration attribute is stored as text")
        bytes[range.upperBound - 1] = UInt8(ascii: "7")
        try bytes.write(to: URL(fileURLWithPath: path))
        let resumed = try CommandLine.runBounded(["--resume", folder])
        XCTAssertEqual(resumed.status, 1)
        XCTAssertTrue(resumed.output.contains("checksum"), resumed.output)
        Self.assertOneErrorLine(resumed)
    }

    /// Symbolic-link loops and a FIFO named like an image neither hang nor inflate the count.
    func testLinkLoopsAndFIFOsInADataFolder() throws {
        let folder = try CommandLine.temporaryFolder("loops")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images = "\(folder)/images"
        try FileManager.default.createDirectory(atPath: "\(images)/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(images)/b", withIntermediateDirectories: true)
        var generator = RandomGenerator(seed: 1)
        for index in 0..<16 {
            let pixels = (0..<(16 * 16 * 3)).map { _ in UInt8(generator.nextUniform() * 255) }
            try ImageEncoder.writePNG(Image(width: 16, height: 16, pixels: pixels), to: "\(images)/\(index).png")
        }
        XCTAssertEqual(symlink(".", "\(images)/self"), 0)
        XCTAssertEqual(symlink("../b", "\(images)/a/to-b"), 0)
        XCTAssertEqual(symlink("../a", "\(images)/b/to-a"), 0)
        XCTAssertEqual(mkfifo("\(images)/x.jpg", 0o644), 0)
        let result = try CommandLine.runBounded(Self.tiny + ["--data", images, "--max-steps", "1", "--output", "\(folder)/run"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains(": 16 images"), result.output)
    }

    /// A full disk stops the run with the system's reason, keeps the previous checkpoint and
    /// leaves no temporary file.
    func testFullDiskStopsCleanlyAndKeepsTheCheckpoint() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let mountPoint = try CommandLine.temporaryFolder("full")
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        guard Self.shell("mount -t tmpfs -o size=2m tmpfs '\(mountPoint)'") == 0 else { throw XCTSkip("tmpfs cannot be mounted here") }
        defer { _ = Self.shell("umount '\(mountPoint)'") }
        let folder = "\(mountPoint)/run"
        let result = try CommandLine.runBounded(
            Self.tiny + ["--subset", "16", "--epochs", "1000", "--save-every", "1", "--output", folder])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("No space left on device"), result.output)
        Self.assertOneErrorLine(result)
        XCTAssertEqual(Self.temporaryFiles(in: folder), [])
        try Self.assertKeptCheckpointsAreWhole(in: folder)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/checkpoint.h5"))
    }

    /// An output folder on a read-only file system is refused with the system's reason.
    func testReadOnlyOutputIsRefusedWithItsReason() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a read-only tmpfs needs root") }
        let mountPoint = try CommandLine.temporaryFolder("read-only")
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        guard Self.shell("mount -t tmpfs -o ro tmpfs '\(mountPoint)'") == 0 else { throw XCTSkip("tmpfs cannot be mounted here") }
        defer { _ = Self.shell("umount '\(mountPoint)'") }
        let result = try CommandLine.runBounded(Self.tiny + ["--subset", "16", "--output", "\(mountPoint)/run"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("\(mountPoint)/run: cannot be created (Read-only file system)"), result.output)
        Self.assertOneErrorLine(result)
    }

    // MARK: Traps become errors

    /// Every value that used to trap or hang is refused with one error line and status 1 (64
    /// for the argument parser's usage errors).
    func testValuesThatUsedToTrapAreRefused() throws {
        let folder = try CommandLine.temporaryFolder("traps")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = "\(folder)/zero-batch.json"
        let printed = try CommandLine.runBounded(Self.tiny + ["--print-config"])
        try printed.output.replacingOccurrences(of: "\"batchSize\" : 16", with: "\"batchSize\" : 0")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let cases: [[String]] = [
            ["--batch-size", "0"], ["--batch-size", "-16"], ["--patch-size", "5"], ["--patch-size", "0"], ["--heads", "5"],
            ["--heads", "0"], ["--dino.out-dim", "0"], ["--dino.out-dim", "-5"], ["--dino.out-dim", "1.5"],
            ["--global-crops", "0"], ["--global-size", "100000"], ["--log-every", "0"], ["--loader-threads", "0"],
            ["--loader-threads", "100000"], ["--epochs", "9223372036854775807"], ["--config", config, "--preset", "bogus"],
            ["--dino.hidden-dim", "10000000000"], ["--lr", "nan"], ["--lr", "-1"], ["--max-steps", "0"],
            ["--teacher-momentum", "2"], ["--drop-path-rate", "5"], ["--weights", "dino=0"], ["--weights", "dino=1,dino=2"],
            ["--layer-decay", "0"], ["--layer-decay", "1.5"],
        ]
        for extra in cases {
            let result = try CommandLine.runBounded(Self.tiny + ["--subset", "16", "--output", "\(folder)/run"] + extra, seconds: 60)
            XCTAssertTrue([1, 64].contains(result.status), "\(extra): \(result.output)")
            Self.assertOneErrorLine(result, "\(extra)")
        }
        let zeroBatch = try CommandLine.runBounded(["--config", config, "--output", "\(folder)/run"])
        XCTAssertTrue(zeroBatch.output.contains("--batch-size must be positive, got 0"), zeroBatch.output)
    }

    // MARK: Resume

    /// A resumed run may be extended and given a new learning rate (reported), keeps its
    /// save interval, and refuses changes to what defines it.
    func testResumeAcceptsExtensionsAndRefusesOtherChanges() throws {
        let folder = try CommandLine.temporaryFolder("extend")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try CommandLine.runBounded(Self.tiny + ["--subset", "16", "--epochs", "1", "--save-every", "1", "--output", folder])
        XCTAssertEqual(first.status, 0, first.output)
        let refused = try CommandLine.runBounded(["--resume", folder, "--arch", "tiny"])
        XCTAssertEqual(refused.status, 64, "a usage error")
        XCTAssertTrue(refused.output.contains("--arch cannot change it"), refused.output)
        let extended = try CommandLine.runBounded(["--resume", folder, "--epochs", "2", "--lr", "0.001"])
        XCTAssertEqual(extended.status, 0, extended.output)
        XCTAssertTrue(extended.output.contains("with changes: --epochs 1 → 2, --lr 0.002 → 0.001"), extended.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/checkpoint-epoch0002.h5"), "--save-every is kept")
        XCTAssertEqual(try Checkpoint.recipe(at: "\(folder)/checkpoint.h5").epochs, 2)
    }

    // MARK: Messages

    /// Mistakes that used to give misleading messages name the file, flag or line.
    func testMisleadingCasesGetClearMessages() throws {
        let folder = try CommandLine.temporaryFolder("messages")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let trained = try CommandLine.runBounded(Self.tiny + ["--subset", "16", "--epochs", "1", "--output", "\(folder)/run"])
        XCTAssertEqual(trained.status, 0, trained.output)
        _ = FileManager.default.createFile(atPath: "\(folder)/file", contents: Data())
        let unknownKey = "\(folder)/unknown.json", fraction = "\(folder)/fraction.json"
        let config = try String(contentsOfFile: "\(folder)/run/config.json", encoding: .utf8)
        try config.replacingOccurrences(of: "\"epochs\" : 1", with: "\"epochs\" : 1, \"epocs\" : 3")
            .write(toFile: unknownKey, atomically: true, encoding: .utf8)
        try config.replacingOccurrences(of: "\"epochs\" : 1", with: "\"epochs\" : 1.5")
            .write(toFile: fraction, atomically: true, encoding: .utf8)
        let metrics = "\(folder)/run/metrics.jsonl"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: metrics))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"step\":9,\"lo".utf8))
        try handle.close()
        let lines = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n").count

        let expectations: [([String], String)] = [
            (["--resume", "\(folder)/missing"], "there is no \(folder)/missing/checkpoint.h5"),
            (["--config", "\(folder)/missing.json"], "--config \(folder)/missing.json: cannot be read (No such file or directory)"),
            (["--config", unknownKey], "unknown key 'epocs'"),
            (["--config", fraction], "'epochs' must be a whole number, got 1.5"),
            (Self.tiny + ["--output", "\(folder)/file/run"], "\(folder)/file: is a file, not a folder"),
            (["report", "\(folder)/missing"], "no such run folder"),
            (["report", "\(folder)/run"], "metrics.jsonl line \(lines): not a metrics record"),
            (["export", "--checkpoint", "\(folder)/run/checkpoint.h5", "--from", "bogus", "--output", "\(folder)/x.h5"],
             "invalid for '--from <from>'. Please provide one of 'teacher' and 'student'"),
            (["interpolate", "\(folder)/run/checkpoint.h5", metrics, "--weight", "0.5", "--output", "\(folder)/x.h5"],
             "Checkpoint \(metrics) is not a readable HDF5 file"),
            (["interpolate", "\(folder)/run/checkpoint.h5", "\(folder)/run/checkpoint.h5", "--weight", "2", "--output", "\(folder)/x.h5"],
             "--weight must lie between 0 and 1, got 2.0"),
            (Self.tiny + ["--arch", "64x1", "--subset", "16", "--init-from", "\(folder)/run/checkpoint.h5", "--output", "\(folder)/other"],
             "has no backbone tensor of this run's shapes"),
        ]
        for (arguments, expected) in expectations {
            let result = try CommandLine.runBounded(arguments)
            XCTAssertTrue([1, 64].contains(result.status), "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains(expected), "\(arguments): expected '\(expected)' in \(result.output)")
            Self.assertOneErrorLine(result, "\(arguments)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder)/missing"), "report does not create a missing folder")
    }

    // MARK: Helpers

    /// Starts a run, SIGKILLs it as soon as a temporary file starting with `temporaryPrefix`
    /// exists, and returns whether the kill left one behind (it landed inside the write).
    private static func killWhileWriting(_ arguments: [String], folder: String, temporaryPrefix: String) throws -> Bool {
        let process = try CommandLine.startQuietly(arguments)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline {
            if temporaryFiles(in: folder).contains(where: { $0.hasPrefix(temporaryPrefix) && $0.hasSuffix("-\(process.processIdentifier)") }) {
                break
            }
            usleep(50)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return temporaryFiles(in: folder).contains { $0.hasPrefix(temporaryPrefix) }
    }

    private static func assertKeptCheckpointsAreWhole(in folder: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names where name.hasPrefix("checkpoint") && name.hasSuffix(".h5") {
            let path = "\(folder)/\(name)"
            XCTAssertNoThrow(
                try Checkpoint.restore(
                    try Checkpoint.recipe(at: path).makeTrainer(registry: .builtIn, iterationsPerEpoch: 1), from: path),
                "\(name) is whole", file: file, line: line)
        }
    }

    static func temporaryFiles(in folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.contains(".tmp-") }.sorted()
    }

    private static func metricsRecords(_ folder: String) throws -> [MetricsRecord] {
        let text = try String(contentsOfFile: "\(folder)/metrics.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { try MetricsRecord(jsonLine: String($0)) }
    }

    private static func waitFor(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return false
    }

    /// The output holds exactly one `Error:` line and no sign of a trap.
    static func assertOneErrorLine(
        _ result: (status: Int32, output: String), _ context: String = "", file: StaticString = #filePath, line: UInt = #line
    ) {
        let errors = result.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
        XCTAssertEqual(errors.count, 1, "one error line \(context): \(result.output)", file: file, line: line)
        for sign in ["Fatal error", "Program crashed", "Backtrac", "NSCocoaErrorDomain", "Optional("] {
            XCTAssertFalse(result.output.contains(sign), "\(sign) \(context): \(result.output)", file: file, line: line)
        }
    }

    private static func shell(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

extension CommandLine {
    /// Starts `ssl-run` with its output discarded (a pipe nobody reads would stall it).
    static func startQuietly(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs `ssl-run` for at most `seconds` and returns its status and output; a run that
    /// does not finish in time is killed and fails the calling test; one that ends by a
    /// signal (a trap) reports 128 + the signal.
    static func runBounded(
        _ arguments: [String], seconds: Double = 120, file: StaticString = #filePath, line: UInt = #line
    ) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("ssl-run-output-\(getpid())-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        if !waitForExit(process, seconds: seconds) {
            XCTFail("ssl-run \(arguments.joined(separator: " ")) did not finish in \(Int(seconds)) s", file: file, line: line)
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return (status, text)
    }
}
