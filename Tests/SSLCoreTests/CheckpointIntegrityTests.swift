import Foundation
@testable import SSLCore
import SSLTestSupport
import XCTest

/// The pieces that keep a run folder whole: atomic files, stale temporary files, the folder
/// lock, checksummed run attributes, typed HDF5 images and image-folder scanning.
final class CheckpointIntegrityTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("ssl-integrity-\(getpid())-\(name.hashValue)").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func testAtomicCopyReplacesTheTargetAndLeavesNoTemporaryFile() throws {
        try AtomicFile.write(Array("new contents".utf8), to: "\(folder!)/source")
        try AtomicFile.write(Array("old".utf8), to: "\(folder!)/copy")
        try AtomicFile.copy(from: "\(folder!)/source", to: "\(folder!)/copy")
        XCTAssertEqual(try String(contentsOfFile: "\(folder!)/copy", encoding: .utf8), "new contents")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["copy", "source"])
    }

    func testAFailedWriteKeepsTheOldFileAndRemovesTheTemporaryOne() throws {
        let path = "\(folder!)/file"
        try AtomicFile.write(Array("old".utf8), to: path)
        struct Failure: Error {}
        XCTAssertThrowsError(try AtomicFile.write(to: path) { temporary in
            try Data("half".utf8).write(to: URL(fileURLWithPath: temporary))
            throw Failure()
        })
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "old")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["file"])
    }

    func testStaleTemporaryFilesOfDeadProcessesAreRemoved() throws {
        // A process id that cannot run: beyond the kernel's limit (4194304).
        let dead = ".checkpoint.h5.tmp-99999999", live = ".checkpoint.h5.tmp-1", own = ".config.json.tmp-\(getpid())"
        for name in [dead, live, own, "checkpoint.h5"] { XCTAssertTrue(FileManager.default.createFile(atPath: "\(folder!)/\(name)", contents: nil)) }
        XCTAssertEqual(AtomicFile.removeStaleTemporaryFiles(in: folder), [dead])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), [own, live, "checkpoint.h5"].sorted())
    }

    func testASecondLockOnAFolderIsRefusedNamingTheHolder() throws {
        var first: RunFolderLock? = try RunFolderLock(folder: folder)
        XCTAssertThrowsError(try RunFolderLock(folder: folder)) { error in
            XCTAssertTrue("\(error)".contains("process \(getpid())"), "\(error)")
        }
        first = nil
        XCTAssertNil(first)
        XCTAssertNoThrow(try RunFolderLock(folder: folder), "released with its owner")
    }

    func testChangedRunAttributesFailTheChecksum() throws {
        let path = "\(folder!)/checkpoint.h5"
        try HDF5File.writeAtomically(to: path) { file in
            var attributes = RunAttributes()
            attributes.numbers["format_version"] = Double(Checkpoint.formatVersion)
            attributes.numbers["epoch"] = 1
            attributes.texts["configuration"] = "{\"optimization\":{\"learningRate\":0.0005}}"
            try attributes.write(to: file)
        }
        let file = try HDF5File(path: path, mode: .readWrite)
        try file.setAttribute("configuration", "{\"optimization\":{\"learningRate\":0.0006}}")
        file.close()
        XCTAssertThrowsError(try Checkpoint.recipe(at: path)) { error in
            XCTAssertTrue("\(error)".contains("do not match their checksum"), "\(error)")
        }
    }

    func testMissingOrEmptyCheckpointsAreNamedAsSuch() throws {
        XCTAssertThrowsError(try Checkpoint.recipe(at: "\(folder!)/missing.h5")) { error in
            XCTAssertTrue("\(error)".contains("No such file or directory"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: "\(folder!)/empty.h5", contents: nil))
        XCTAssertThrowsError(try Checkpoint.recipe(at: "\(folder!)/empty.h5")) { error in
            XCTAssertTrue("\(error)".contains("is empty"), "\(error)")
        }
    }

    func testFloatImagesAreRefusedNamingTheirTypeAndShape() throws {
        let path = "\(folder!)/images.h5"
        let file = try HDF5File(path: path, mode: .create)
        try file.write(Tensor(shape: [4, 2, 2, 3], elements: Array(repeating: 0.5, count: 48)), at: "images")
        file.close()
        XCTAssertEqual(try HDF5File(path: path).elementType(of: "images"), "float32")
        XCTAssertThrowsError(try HDF5ImageDataset(path: path)) { error in
            XCTAssertTrue("\(error)".contains("holds float32 values of shape [4, 2, 2, 3]"), "\(error)")
        }
    }

    func testImageFolderSkipsJunkLoopsFIFOsAndNonUTF8Names() throws {
        // Four junk files that sort first, then good images.
        for name in ["0.jpg", "1.jpg", "2.png", "3.jpeg"] {
            XCTAssertTrue(FileManager.default.createFile(atPath: "\(folder!)/\(name)", contents: Data("junk".utf8)))
        }
        for index in 0..<6 {
            try ImageEncoder.writePNG(Image(width: 4, height: 4, pixels: Array(repeating: UInt8(index), count: 48)), to: "\(folder!)/image\(index).png")
        }
        XCTAssertEqual(symlink(".", "\(folder!)/self"), 0)
        XCTAssertEqual(mkfifo("\(folder!)/pipe.jpg", 0o644), 0)
        let invalidName = "\(folder!)/" + "bad\u{FF}.png"
        // A file whose name is the bytes "bad", 0xFF, ".png" (not UTF-8).
        var bytes = Array("\(folder!)/bad".utf8) + [0xFF] + Array(".png".utf8) + [0]
        let descriptor = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { open($0, O_CREAT | O_WRONLY, 0o644) }
        }
        XCTAssertGreaterThanOrEqual(descriptor, 0, invalidName)
        close(descriptor)
        let dataset = try ImageFolderDataset(path: folder)
        XCTAssertEqual(dataset.count, 10, "4 junk + 6 images, each once; no FIFO, no link loop, no non-UTF-8 name")
    }

    /// A fuzzing finding (tools/fuzz): an HDF5 file declaring an images dataset of 2^64 − 1
    /// elements made the reader allocate until the process died; it is now refused by name.
    func testADeclaredShapeBeyondMemoryIsRefused() {
        XCTAssertThrowsError(try HDF5ImageDataset(path: "\(Fixtures.folder)/hdf5_huge_shape.h5")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("hdf5_huge_shape.h5") && message.contains("images"), message)
            XCTAssertTrue(message.contains("impossible shape") || message.contains("more than this machine's"), message)
        }
    }
}
