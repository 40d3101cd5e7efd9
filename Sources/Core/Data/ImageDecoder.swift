import CPNG
import CTurboJPEG

/// Decodes JPEG (TurboJPEG) and PNG (libpng's simplified API) files into RGB images, as PIL's
/// `Image.open(path).convert("RGB")` does.
///
/// - Grey JPEG and PNG images have their value copied to the three channels.
/// - Palette PNG images are expanded through their palette.
/// - An alpha channel is dropped, not composited (PIL's `convert("RGB")` from `RGBA` keeps the
///   colour channels as they are).
/// - 16-bit PNG samples keep their most significant byte, as PIL does.
/// - A truncated JPEG is an error (PIL raises "image file is truncated"); other libjpeg
///   warnings, which PIL ignores, are ignored too.
public enum ImageDecoder {
    /// The kinds of file the decoder reads, told apart by their first bytes.
    public enum Format: Sendable {
        case jpeg, png
    }

    /// The format of `bytes`, or `nil` when they start like neither a JPEG nor a PNG file.
    public static func format(of bytes: UnsafeRawBufferPointer) -> Format? {
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, signature.indices.allSatisfy({ bytes[$0] == signature[$0] }) { return .png }
        return nil
    }

    /// Decodes the file at `path`.
    public static func decode(contentsOf path: String) throws -> Image {
        try decode(try FileContents.bytes(at: path), path: path)
    }

    /// Decodes the encoded image `bytes`; `path` names the source in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws -> Image {
        try bytes.withUnsafeBytes { raw in
            switch format(of: raw) {
            case .jpeg: return try decodeJPEG(raw, path: path)
            case .png: return try decodePNG(raw, path: path)
            case nil:
                throw DataError(path: path, problem: "is not a JPEG or PNG file (unrecognised signature)")
            }
        }
    }

    private static func decodeJPEG(_ raw: UnsafeRawBufferPointer, path: String) throws -> Image {
        guard let handle = tjInitDecompress() else {
            throw DataError(path: path, problem: "TurboJPEG could not be initialised")
        }
        defer { tjDestroy(handle) }
        let source = raw.bindMemory(to: UInt8.self).baseAddress
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        if tjDecompressHeader3(handle, source, UInt(raw.count), &width, &height, &subsampling, &colorspace) != 0 {
            throw DataError(path: path, problem: "is not a readable JPEG file (\(message(handle)))")
        }
        if colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue) {
            throw DataError(path: path, problem: "is a CMYK JPEG file, which is not supported")
        }
        guard width > 0, height > 0 else { throw DataError(path: path, problem: "has an empty JPEG image") }
        var failure: String?
        let count = Int(width) * Int(height) * 3
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let status = tjDecompress2(
                handle, source, UInt(raw.count), buffer.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue), 0)
            initialized = count
            if status != 0 {
                let text = message(handle)
                if tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) || text.contains("Premature end") {
                    failure = text
                }
            }
        }
        if let failure {
            let problem = failure.contains("Premature end") ? "is a truncated JPEG file" : "is a corrupt JPEG file"
            throw DataError(path: path, problem: "\(problem) (\(failure))")
        }
        return Image(width: Int(width), height: Int(height), pixels: pixels)
    }

    private static func message(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "unknown error" }
        return String(cString: text)
    }

    private static func decodePNG(_ raw: UnsafeRawBufferPointer, path: String) throws -> Image {
        var png = png_image()
        png.version = ssl_png_image_version()
        guard png_image_begin_read_from_memory(&png, raw.baseAddress, raw.count) != 0 else {
            throw DataError(path: path, problem: "is not a readable PNG file (\(message(png)))")
        }
        defer { png_image_free(&png) }
        let width = Int(png.width), height = Int(png.height)
        guard width > 0, height > 0 else { throw DataError(path: path, problem: "has an empty PNG image") }
        let hasAlpha = png.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        let channels = hasAlpha ? 4 : 3
        png.format = hasAlpha ? ssl_png_format_rgba() : ssl_png_format_rgb()
        // Without this flag, libpng treats 16-bit samples as linear light and gamma-encodes them.
        png.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        var decoded = [UInt8](repeating: 0, count: width * height * channels)
        let status = decoded.withUnsafeMutableBytes { png_image_finish_read(&png, nil, $0.baseAddress, 0, nil) }
        guard status != 0 else {
            throw DataError(path: path, problem: "is a corrupt or truncated PNG file (\(message(png)))")
        }
        guard hasAlpha else { return Image(width: width, height: height, pixels: decoded) }
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, initialized in
            for index in 0..<width * height {
                buffer[3 * index] = decoded[4 * index]
                buffer[3 * index + 1] = decoded[4 * index + 1]
                buffer[3 * index + 2] = decoded[4 * index + 2]
            }
            initialized = width * height * 3
        }
        return Image(width: width, height: height, pixels: pixels)
    }

    private static func message(_ png: png_image) -> String {
        withUnsafeBytes(of: png.message) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
