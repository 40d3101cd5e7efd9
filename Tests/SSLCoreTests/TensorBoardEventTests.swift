import Foundation
@testable import SSLCore
import XCTest

/// TensorBoard event files: CRC-32C, TFRecord framing, the Event encoding, and a resumed run
/// that drops the records past its checkpoint.
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
        XCTAssertEqual(try TFRecord.records(in: file, path: "f"), records)
        XCTAssertEqual(file.count, records.reduce(0) { $0 + $1.count + 16 })
        // A torn last record (a killed writer) is left out; a flipped byte is an error.
        XCTAssertEqual(try TFRecord.records(in: file.dropLast(3), path: "f"), Array(records.prefix(2)))
        var damaged = file
        damaged[damaged.startIndex + 14] ^= 0x01
        XCTAssertThrowsError(try TFRecord.records(in: damaged, path: "f")) { error in
            XCTAssertTrue("\(error)".contains("damaged record"), "\(error)")
        }
    }

    func testScalarEventEncoding() throws {
        let event = TensorBoardEvent(wallTime: 1.5, step: 300, content: .scalars([(tag: "loss", value: 2)]))
        // wall_time (1, double) = 1.5, step (2, varint) = 300, summary (5) { value (1) { tag (1), simple_value (2) } }
        let expected: [UInt8] = [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, 0x10, 0xAC, 0x02, 0x2A, 0x0D, 0x0A, 0x0B,
                                 0x0A, 0x04] + Array("loss".utf8) + [0x15, 0, 0, 0, 0x40]
        XCTAssertEqual(Array(event.encoded), expected)
        XCTAssertEqual(try TensorBoardEvent.step(of: event.encoded), 300)
    }

    func testResumedRunDropsRecordsPastItsCheckpoint() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tensorboard-\(getpid())").path
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let writer = try TensorBoardEventWriter(folder: folder)
            for step in 0..<10 { try writer.addScalars(["loss": Double(step), "nan": .nan], step: step) }
            try writer.addImage(tag: "pca", png: Data([0x89, 0x50]), width: 2, height: 1, step: 9)
        }
        try TensorBoardEventWriter.truncate(folder: folder, after: 5)
        do {
            let writer = try TensorBoardEventWriter(folder: folder)
            try writer.addScalars(["loss": 6], step: 6)
        }
        let files = try TensorBoardEventWriter.eventFiles(in: folder)
        XCTAssertEqual(files.count, 1)
        let records = try TFRecord.records(in: try Data(contentsOf: URL(fileURLWithPath: files[0])), path: files[0])
        XCTAssertEqual(try records.map(TensorBoardEvent.step(of:)), [0, 0, 1, 2, 3, 4, 5, 6], "version record, steps 0–5, then 6")
        var reader = ProtocolBufferReader(records[0])
        var version: Data?
        while let (field, value) = try reader.next() { if field == 3, case .bytes(let bytes) = value { version = bytes } }
        XCTAssertEqual(version.map { String(decoding: $0, as: UTF8.self) }, "brain.Event:2")
    }
}
