import Foundation
@testable import SSLCore

/// Reads back the event files the writer makes (TFRecord framing checked against its CRCs).
public enum TensorBoardFile {
    public struct Event {
        public var step = 0
        public var fileVersion: String?
        public var scalars: [String: Float] = [:]
        public var imageTags: [String] = []
    }

    public static func events(at path: String) throws -> [Event] {
        try records(in: try Data(contentsOf: URL(fileURLWithPath: path))).map(decode)
    }

    /// The records of a framed file; a torn last record (a run killed while writing it) is left out.
    public static func records(in data: Data) throws -> [Data] {
        var records: [Data] = []
        var offset = data.startIndex
        func word<Integer: FixedWidthInteger>(_ type: Integer.Type, at position: Int) -> Integer {
            Integer(littleEndian: data[position..<position + MemoryLayout<Integer>.size].withUnsafeBytes { $0.loadUnaligned(as: Integer.self) })
        }
        while data.endIndex - offset >= 12 {
            let length = Int(word(UInt64.self, at: offset))
            guard word(UInt32.self, at: offset + 8) == CRC32C.masked(Data(data[offset..<offset + 8])) else {
                throw TensorBoardFileError.damaged(offset - data.startIndex)
            }
            let start = offset + 12
            guard data.endIndex - start >= length + 4 else { break }
            let record = Data(data[start..<start + length])
            guard word(UInt32.self, at: start + length) == CRC32C.masked(record) else {
                throw TensorBoardFileError.damaged(offset - data.startIndex)
            }
            records.append(record)
            offset = start + length + 4
        }
        return records
    }

    /// The fields of one `Event` that the writer sets.
    public static func decode(_ record: Data) throws -> Event {
        var event = Event()
        for (field, value) in try fields(record) {
            switch (field, value) {
            case (2, .varint(let step)): event.step = Int(Int64(bitPattern: step))
            case (3, .bytes(let version)): event.fileVersion = String(decoding: version, as: UTF8.self)
            case (5, .bytes(let summary)):
                for case (1, .bytes(let valueMessage)) in try fields(summary) {
                    var tag = "", scalar: Float?, isImage = false
                    for (valueField, content) in try fields(valueMessage) {
                        switch (valueField, content) {
                        case (1, .bytes(let bytes)): tag = String(decoding: bytes, as: UTF8.self)
                        case (2, .fixed32(let bits)): scalar = Float(bitPattern: bits)
                        case (4, .bytes): isImage = true
                        default: break
                        }
                    }
                    if let scalar { event.scalars[tag] = scalar }
                    if isImage { event.imageTags.append(tag) }
                }
            default: break
            }
        }
        return event
    }

    public enum Value {
        case varint(UInt64), fixed64(UInt64), bytes(Data), fixed32(UInt32)
    }

    /// Every field of a protocol-buffer message, in order.
    public static func fields(_ message: Data) throws -> [(Int, Value)] {
        var result: [(Int, Value)] = []
        var offset = message.startIndex
        func varint() throws -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while offset < message.endIndex, shift < 64 {
                let byte = message[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            throw TensorBoardFileError.malformed
        }
        func fixed<Integer: FixedWidthInteger>(_ type: Integer.Type) throws -> Integer {
            let size = MemoryLayout<Integer>.size
            guard message.endIndex - offset >= size else { throw TensorBoardFileError.malformed }
            defer { offset += size }
            return Integer(littleEndian: message[offset..<offset + size].withUnsafeBytes { $0.loadUnaligned(as: Integer.self) })
        }
        while offset < message.endIndex {
            let key = try varint()
            switch key & 7 {
            case 0: result.append((Int(key >> 3), .varint(try varint())))
            case 1: result.append((Int(key >> 3), .fixed64(try fixed(UInt64.self))))
            case 2:
                let length = Int(try varint())
                guard message.endIndex - offset >= length else { throw TensorBoardFileError.malformed }
                result.append((Int(key >> 3), .bytes(Data(message[offset..<offset + length]))))
                offset += length
            case 5: result.append((Int(key >> 3), .fixed32(try fixed(UInt32.self))))
            default: throw TensorBoardFileError.malformed
            }
        }
        return result
    }
}

public enum TensorBoardFileError: Error {
    case damaged(Int)
    case malformed
}
