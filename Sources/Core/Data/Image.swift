/// An 8-bit RGB image: `height` rows of `width` pixels, each pixel three interleaved bytes
/// (red, green, blue), rows top to bottom — the layout of a PIL `RGB` image.
public struct Image: Sendable, Equatable {
    /// Pixels per row.
    public let width: Int
    /// Rows.
    public let height: Int
    /// `height × width × 3` bytes, row-major.
    public var pixels: [UInt8]

    /// An image with the given pixels (`height × width × 3` bytes).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "An image needs a positive size, got \(width)x\(height).")
        precondition(
            pixels.count == width * height * 3,
            "A \(width)x\(height) RGB image has \(width * height * 3) bytes, got \(pixels.count).")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image with every byte set to `value`.
    public init(width: Int, height: Int, repeating value: UInt8) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: value, count: width * height * 3))
    }

    /// An RGB image from one grey byte per pixel, each copied to the three channels (PIL's
    /// `convert("RGB")` from mode `L`).
    public init(width: Int, height: Int, grey: UnsafeBufferPointer<UInt8>) {
        precondition(grey.count == width * height, "A \(width)x\(height) grey image has \(width * height) bytes.")
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, initialized in
            for index in 0..<width * height {
                let value = grey[index]
                buffer[3 * index] = value
                buffer[3 * index + 1] = value
                buffer[3 * index + 2] = value
            }
            initialized = width * height * 3
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The byte of `channel` (0 red, 1 green, 2 blue) at column `x`, row `y`.
    public subscript(x: Int, y: Int, channel: Int) -> UInt8 {
        get { pixels[(y * width + x) * 3 + channel] }
        set { pixels[(y * width + x) * 3 + channel] = newValue }
    }
}
