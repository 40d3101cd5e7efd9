import CPNG

/// Writes images as PNG files through libpng's simplified API.
public enum ImageEncoder {
    /// Writes `image` to `path` as an 8-bit RGB PNG.
    public static func writePNG(_ image: Image, to path: String) throws {
        var png = png_image()
        png.version = ssl_png_image_version()
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = ssl_png_format_rgb()
        let status = image.pixels.withUnsafeBytes { bytes in
            png_image_write_to_file(&png, path, 0, bytes.baseAddress, Int32(image.width * 3), nil)
        }
        defer { png_image_free(&png) }
        guard status != 0 else {
            let message = withUnsafeBytes(of: png.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw DataError(path: path, problem: "could not be written as PNG (\(message))")
        }
    }
}
