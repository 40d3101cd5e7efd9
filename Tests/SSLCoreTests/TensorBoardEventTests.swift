import Foundation
@testable import SSLCore
import SSLTestSupport
import XCTest

/// TensorBoard event files: CRC-32C, TFRecord framing, the Event encoding, and the writer.
final class TensorBoardEventTests: XCTestCase {
    func testCRC32CKnownValues() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        XCTAssertEqual(CRC32C.checksum(Data("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum(Data(repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum(Data(repeating: 0xFF, count: 32)), 0x62A8_AB43)
    }

    func testFramingRoundTripsAndCatchesDamage() throws {
        let records = [Data("first".utf8), Data(), Data((0..<300).map { UInt8($0 % 256) })]
        var file = Data()
        for record in records { file.append(TFRecord.frame(record)) }
        XCTAssertEqual(try TensorBoardFile.records(in: file), records)
        XCTAssertEqual(file.count, records.reduce(0) { $0 + $1.count + 16 })
        // A torn last record (a killed writer) is left out; a flipped byte is an error.
        XCTAssertEqual(try TensorBoardFile.records(in: file.dropLast(3)), Array(records.prefix(2)))
        var damaged = file
        damaged[damaged.startIndex + 14] ^= 0x01
        XCTAssertThrowsError(try TensorBoardFile.records(in: damaged))
    }

    func testScalarEventEncoding() throws {
        let event = TensorBoardEvent(wallTime: 1.5, step: 300, content: .scalars([(tag: "loss", value: 2)]))
        // wall_time (1, double) = 1.5, step (2, varint) = 300, summary (5) { value (1) { tag (1), simple_value (2) } }
        let expected: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0xAC, 0x02, 0x2A, 0x0D, 0x0A, 0x0B,
                                 0x0A, 0x04] + Array("loss".utf8) + [0x15, 0, 0, 0, 0x40]
        XCTAssertEqual(Array(event.encoded), expected)
        XCTAssertEqual(try TensorBoardFile.decode(event.encoded).step, 300)
    }

    func testWriterStartsWithTheFileVersionAndAppends() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tensorboard-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let writer = try TensorBoardEventWriter(folder: folder)
            for step in 0..<3 { try writer.addScalars(["loss": Double(step), "nan": .nan], step: step) }
        }
        do {
            let writer = try TensorBoardEventWriter(folder: folder)
            try writer.addImage(tag: "pca", png: Data([0x89, 0x50]), width: 2, height: 1, step: 3)
        }
        let files = try TensorBoardEventWriter.eventFiles(in: folder)
        XCTAssertEqual(files.count, 1, "a reopened run appends to its file")
        let events = try TensorBoardFile.events(at: files[0])
        XCTAssertEqual(events.map(\.step), [0, 0, 1, 2, 3])
        XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
        XCTAssertEqual(events[1].scalars, ["loss": 0], "non-finite values are left out")
        XCTAssertEqual(events[4].imageTags, ["pca"])
    }
}
