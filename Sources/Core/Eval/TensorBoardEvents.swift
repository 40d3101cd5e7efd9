import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes a run's scalars and pictures as TensorBoard event files, so `tensorboard --logdir
/// runs` shows them beside runs of PyTorch frameworks.
///
/// A file `events.out.tfevents.<seconds>.<host>` holds TFRecord records (a little-endian
/// 64-bit length, its masked CRC-32C, the bytes, their masked CRC-32C), each one `Event`
/// protocol buffer (tensorflow/core/util/event.proto): a first one naming the file version,
/// then one per logged step with a `Summary` of `simple_value`s or encoded PNG images. Every
/// record is written through at once, so a killed run keeps what it logged; a resumed run cuts
/// the file back to its length at the checkpoint (as `metrics.jsonl`) and appends after it.
public final class TensorBoardEventWriter {
    /// The event file's path.
    public let path: String
    private let handle: FileHandle

    /// Opens the event file of the run in `folder`: the newest one there, appended to, or a new one.
    public init(folder: String) throws {
        let existing = try Self.eventFiles(in: folder)
        if let newest = existing.last {
            path = newest
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: newest))
            if try handle.seekToEnd() == 0 {
                try write(TensorBoardEvent(wallTime: Date().timeIntervalSince1970, step: 0, content: .fileVersion("brain.Event:2")))
            }
        } else {
            var host = [CChar](repeating: 0, count: 256)
            gethostname(&host, host.count - 1)
            let seconds = Int(Date().timeIntervalSince1970)
            let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            path = "\(folder)/events.out.tfevents.\(seconds).\(hostName)"
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw RunReportError.unreadable(path: path, reason: "could not be created (\(String(decoding: Data(bytes: strerror(errno), count: strlen(strerror(errno))), as: UTF8.self)))")
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try write(TensorBoardEvent(wallTime: Date().timeIntervalSince1970, step: 0, content: .fileVersion("brain.Event:2")))
        }
    }

    deinit {
        try? handle.close()
    }

    /// The event files in `folder`, oldest first.
    public static func eventFiles(in folder: String) throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasPrefix("events.out.tfevents.") }.sorted().map { "\(folder)/\($0)" }
    }

    /// Logs `values` as scalars of `step`, each under its metrics name; non-finite values are
    /// left out.
    public func addScalars(_ values: [String: Double], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        let scalars = values.filter { $0.value.isFinite }.sorted { $0.key < $1.key }.map { (tag: $0.key, value: Float($0.value)) }
        guard !scalars.isEmpty else { return }
        try write(TensorBoardEvent(wallTime: wallTime, step: step, content: .scalars(scalars)))
    }

    /// Logs a PNG picture of `width` × `height` pixels under `tag`.
    public func addImage(tag: String, png: Data, width: Int, height: Int, step: Int,
                         wallTime: Double = Date().timeIntervalSince1970) throws {
        try write(TensorBoardEvent(
            wallTime: wallTime, step: step, content: .image(tag: tag, png: png, width: width, height: height)))
    }

    /// Logs the PNG file at `path` under `tag`, its size read from the file's header.
    public func addPNG(at path: String, tag: String, step: Int) throws {
        let png = try Data(contentsOf: URL(fileURLWithPath: path))
        // The IHDR chunk follows the 8-byte signature: length, type, then width and height.
        guard png.count >= 24, png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw RunReportError.unreadable(path: path, reason: "is not a PNG file")
        }
        func bigEndian(_ offset: Int) -> Int {
            png[(png.startIndex + offset)..<(png.startIndex + offset + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        try addImage(tag: tag, png: png, width: bigEndian(16), height: bigEndian(20), step: step)
    }

    private func write(_ event: TensorBoardEvent) throws {
        try handle.write(contentsOf: TFRecord.frame(event.encoded))
    }
}

/// One `Event` message of tensorflow/core/util/event.proto, with the few kinds of content a
/// run writes.
struct TensorBoardEvent {
    enum Content {
        /// `file_version` (field 3).
        case fileVersion(String)
        /// A `Summary` (field 5) of `simple_value`s.
        case scalars([(tag: String, value: Float)])
        /// A `Summary` with one `Summary.Image`.
        case image(tag: String, png: Data, width: Int, height: Int)
    }

    var wallTime: Double
    var step: Int
    var content: Content

    /// The protocol-buffer encoding.
    var encoded: Data {
        var message = ProtocolBufferWriter()
        message.writeDouble(field: 1, wallTime)
        message.writeVarint(field: 2, UInt64(bitPattern: Int64(step)))
        switch content {
        case .fileVersion(let version):
            message.writeBytes(field: 3, Data(version.utf8))
        case .scalars(let scalars):
            var summary = ProtocolBufferWriter()
            for scalar in scalars {
                var value = ProtocolBufferWriter()
                value.writeBytes(field: 1, Data(scalar.tag.utf8))
                value.writeFloat(field: 2, scalar.value)
                summary.writeBytes(field: 1, value.data)
            }
            message.writeBytes(field: 5, summary.data)
        case .image(let tag, let png, let width, let height):
            var image = ProtocolBufferWriter()
            image.writeVarint(field: 1, UInt64(height))
            image.writeVarint(field: 2, UInt64(width))
            image.writeVarint(field: 3, 3)  // RGB
            image.writeBytes(field: 4, png)
            var value = ProtocolBufferWriter()
            value.writeBytes(field: 1, Data(tag.utf8))
            value.writeBytes(field: 4, image.data)
            var summary = ProtocolBufferWriter()
            summary.writeBytes(field: 1, value.data)
            message.writeBytes(field: 5, summary.data)
        }
        return message.data
    }
}

/// TFRecord framing: `uint64 length, uint32 masked_crc32c(length), bytes, uint32 masked_crc32c(bytes)`.
enum TFRecord {
    /// `record` framed.
    static func frame(_ record: Data) -> Data {
        var output = Data(capacity: record.count + 16)
        var length = UInt64(record.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        output.append(lengthBytes)
        output.append(littleEndian: CRC32C.masked(lengthBytes))
        output.append(record)
        output.append(littleEndian: CRC32C.masked(record))
        return output
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC of `bytes`.
    static func checksum(_ bytes: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: rotated right by 15 bits plus 0xa282ead8.
    static func masked(_ bytes: Data) -> UInt32 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// Appends protocol-buffer fields.
struct ProtocolBufferWriter {
    private(set) var data = Data()

    mutating func writeVarint(field: Int, _ value: UInt64) {
        appendVarint(UInt64(field << 3))
        appendVarint(value)
    }

    mutating func writeDouble(field: Int, _ value: Double) {
        appendVarint(UInt64(field << 3 | 1))
        data.append(littleEndian: value.bitPattern)
    }

    mutating func writeFloat(field: Int, _ value: Float) {
        appendVarint(UInt64(field << 3 | 5))
        data.append(littleEndian: value.bitPattern)
    }

    mutating func writeBytes(field: Int, _ bytes: Data) {
        appendVarint(UInt64(field << 3 | 2))
        appendVarint(UInt64(bytes.count))
        data.append(bytes)
    }

    private mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            data.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        data.append(UInt8(rest))
    }
}

extension Data {
    fileprivate mutating func append<Integer: FixedWidthInteger>(littleEndian value: Integer) {
        var little = value.littleEndian
        Swift.withUnsafeBytes(of: &little) { append(contentsOf: $0) }
    }
}
