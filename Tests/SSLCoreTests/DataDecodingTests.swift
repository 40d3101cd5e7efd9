import SSLCore
import SSLTestSupport
import XCTest

/// JPEG and PNG decoding against PIL's `Image.open(path).convert("RGB")`, and bad files.
final class DataDecodingTests: XCTestCase {
    static let imageFolder = Fixtures.folder + "/images"

    func testFilesDecodeAsPILConvertRGB() throws {
        let fixtures = try Fixtures.open("augmentations.h5")
        // 16-bit samples: libpng rounds to 8 bits where PIL keeps the high byte (off by at most 1).
        let tolerances = ["rgb16.png": 1]
        for name in [
            "baseline.jpg", "progressive.jpg", "grey.jpg", "rgb.png", "rgba.png", "grey.png", "palette.png", "rgb16.png",
        ] {
            let decoded = try ImageDecoder.decode(contentsOf: "\(Self.imageFolder)/\(name)")
            let shape = try fixtures.shape(of: "decoded/\(name)")
            XCTAssertEqual([decoded.height, decoded.width, 3], shape, name)
            let expected = try fixtures.readBytes("decoded/\(name)")
            let worst = zip(decoded.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, tolerances[name, default: 0], name)
        }
    }

    func testTruncatedAndGarbageFilesAreErrorsNamingTheFile() throws {
        for name in ["baseline.jpg", "progressive.jpg", "rgb.png"] {
            let bytes = try Self.bytes(of: name)
            let path = "truncated-\(name)"
            XCTAssertThrowsError(try ImageDecoder.decode(Array(bytes.prefix(bytes.count / 2)), path: path)) { error in
                XCTAssertEqual((error as? DataError)?.path, path)
            }
        }
        var generator = RandomGenerator(seed: 3)
        let garbage = (0..<500).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for bytes in [garbage, [], [0xFF, 0xD8, 0xFF] + garbage, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + garbage] {
            XCTAssertThrowsError(try ImageDecoder.decode(bytes, path: "garbage.bin")) { error in
                XCTAssertTrue("\(error)".hasPrefix("garbage.bin: "), "\(error)")
            }
        }
        XCTAssertThrowsError(try ImageDecoder.decode(contentsOf: "/nonexistent/picture.jpg")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/picture.jpg"), "\(error)")
        }
    }

    static func bytes(of name: String) throws -> [UInt8] {
        let path = "\(imageFolder)/\(name)"
        guard let file = fopen(path, "rb") else { throw DataError(path: path, problem: "missing fixture") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let read = fread(&buffer, 1, buffer.count, file)
            if read == 0 { break }
            bytes += buffer[0..<read]
        }
        return bytes
    }
}

final class ImageEncoderTests: XCTestCase {
    func testPNGRoundTrip() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("encoder-\(getpid()).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let image = Image(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 * 13) })
        try ImageEncoder.writePNG(image, to: path)
        XCTAssertEqual(try ImageDecoder.decode(contentsOf: path), image)
        XCTAssertThrowsError(try ImageEncoder.writePNG(image, to: "/nonexistent/folder/x.png")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/folder/x.png"), "\(error)")
        }
    }
}
