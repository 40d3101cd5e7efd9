/// PIL's colour operations on RGB images, byte for byte: torchvision's `adjust_brightness`,
/// `adjust_contrast`, `adjust_saturation` and `rgb_to_grayscale` on PIL images, and
/// `ImageOps.solarize` (`adjust_hue` is in `HueRotation.swift`). Every operation rounds to bytes, as PIL does between operations.
extension Image {
    /// ITU-R 601-2 luma as PIL's `convert("L")` computes it (16-bit fixed point, rounded).
    @inline(__always)
    static func luma(_ red: UInt8, _ green: UInt8, _ blue: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt32(red) &* 19595 &+ UInt32(green) &* 38470 &+ UInt32(blue) &* 7471 &+ 0x8000) >> 16)
    }

    /// PIL's `Image.blend(degenerate, image, factor)` for one byte: `degenerate + factor ×
    /// (value − degenerate)` in float32, truncated and clamped to a byte.
    @inline(__always)
    static func blend(_ degenerate: UInt8, _ value: UInt8, factor: Float) -> UInt8 {
        let result = Float(degenerate) + factor * Float(Int32(value) - Int32(degenerate))
        return result <= 0 ? 0 : result >= 255 ? 255 : UInt8(result)
    }

    /// Applies a byte-to-byte table to every channel of every pixel.
    mutating func apply(table: [UInt8]) {
        table.withUnsafeBufferPointer { table in
            pixels.withUnsafeMutableBufferPointer { pixels in
                for index in pixels.indices { pixels[index] = table[Int(pixels[index])] }
            }
        }
    }

    /// Scales every value by `factor` (PIL's `ImageEnhance.Brightness`).
    public mutating func adjustBrightness(_ factor: Float) {
        apply(table: (0..<256).map { Self.blend(0, UInt8($0), factor: factor) })
    }

    /// Moves every value away from (factor > 1) or towards (factor < 1) the mean luma of the
    /// image, rounded to a byte (PIL's `ImageEnhance.Contrast`).
    public mutating func adjustContrast(_ factor: Float) {
        var histogram = [Int](repeating: 0, count: 256)
        pixels.withUnsafeBufferPointer { pixels in
            for pixel in 0..<width * height {
                let luma = Self.luma(pixels[3 * pixel], pixels[3 * pixel + 1], pixels[3 * pixel + 2])
                histogram[Int(luma)] += 1
            }
        }
        var total = 0.0
        for (value, count) in histogram.enumerated() { total += Double(value * count) }
        let mean = UInt8(Int(total / Double(width * height) + 0.5))
        apply(table: (0..<256).map { Self.blend(mean, UInt8($0), factor: factor) })
    }

    /// Moves every pixel away from (factor > 1) or towards (factor < 1) its own luma (PIL's
    /// `ImageEnhance.Color`).
    public mutating func adjustSaturation(_ factor: Float) {
        pixels.withUnsafeMutableBufferPointer { pixels in
            for pixel in 0..<width * height {
                let red = pixels[3 * pixel], green = pixels[3 * pixel + 1], blue = pixels[3 * pixel + 2]
                let grey = Self.luma(red, green, blue)
                pixels[3 * pixel] = Self.blend(grey, red, factor: factor)
                pixels[3 * pixel + 1] = Self.blend(grey, green, factor: factor)
                pixels[3 * pixel + 2] = Self.blend(grey, blue, factor: factor)
            }
        }
    }

    /// Replaces every pixel by its luma in all three channels (torchvision's
    /// `rgb_to_grayscale(img, 3)` on a PIL image).
    public mutating func convertToGreyscale() {
        pixels.withUnsafeMutableBufferPointer { pixels in
            for pixel in 0..<width * height {
                let grey = Self.luma(pixels[3 * pixel], pixels[3 * pixel + 1], pixels[3 * pixel + 2])
                pixels[3 * pixel] = grey
                pixels[3 * pixel + 1] = grey
                pixels[3 * pixel + 2] = grey
            }
        }
    }

    /// Inverts every value at or above `threshold` (PIL's `ImageOps.solarize`).
    public mutating func solarize(threshold: Int = 128) {
        apply(table: (0..<256).map { UInt8($0 < threshold ? $0 : 255 - $0) })
    }
}
