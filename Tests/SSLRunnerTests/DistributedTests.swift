import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// Data-parallel training with `mpirun`: two processes with half the batch each must compute
/// what one process computes on the whole batch.
final class DistributedTests: XCTestCase {
    private static let mpirun = "/usr/bin/mpirun"

    func testTwoRanksWithHalfBatchesMatchOneRankWithTheWholeBatch() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.mpirun), "OpenMPI is not installed")
        let root = try CommandLine.temporaryFolder("distributed")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // One step without stochastic depth; the Adam moments after it are 0.1 × the gradients.
        let arguments = CommandLine.tinyRun + ["--drop-path-rate", "0", "--max-steps", "1"]
        let single = try CommandLine.run(arguments + ["--batch-size", "16", "--output", "\(root)/one"])
        XCTAssertEqual(single.status, 0, single.output)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun)
        process.arguments = ["--allow-run-as-root", "--oversubscribe", "-np", "2", CommandLine.executable]
            + arguments + ["--batch-size", "8", "--output", "\(root)/two"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)

        let one = try HDF5File(path: "\(root)/one/checkpoint.h5"), two = try HDF5File(path: "\(root)/two/checkpoint.h5")
        var compared = 0
        for group in ["optimizer/exp_avg/backbone", "optimizer/exp_avg/dino", "optimizer/exp_avg/selfpatch", "tasks/dino", "tasks/selfpatch"]
        where one.contains(group) {
            for name in try one.members(of: group) {
                let path = "\(group)/\(name)"
                assertRelativeError(try two.readTensor(path), try one.readTensor(path), below: 1e-4, path)
                compared += 1
            }
        }
        XCTAssertGreaterThan(compared, 25, "gradients of every trained tensor and both centres compared")
    }
}
