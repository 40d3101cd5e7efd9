/// torchvision's `adjust_hue` on a PIL image: RGB to PIL's 8-bit HSV (`rgb2hsv_row`), the hue
/// byte shifted with wrap-around, back to RGB (`hsv2rgb`), byte for byte.
///
/// PIL computes every pixel in float and double arithmetic; here the results that depend on few
/// bytes come from tables filled once by that same arithmetic, so the bytes are identical.
extension Image {
    /// Rotates the hue by `factor` turns (−0.5…0.5): the hue byte moves by `Int32(factor × 255)`
    /// modulo 256.
    public mutating func adjustHue(_ factor: Double) {
        let shift = UInt8(truncatingIfNeeded: Int32(factor * 255))
        let tables = HueTables.shared
        pixels.withUnsafeMutableBufferPointer { pixels in
            tables.hues.withUnsafeBufferPointer { hues in
                tables.saturations.withUnsafeBufferPointer { saturations in
                    tables.lowValues.withUnsafeBufferPointer { lowValues in
                        tables.sectorsAndRemainders.withUnsafeBufferPointer { sectorsAndRemainders in
                            for pixel in 0..<width * height {
                                let rgb = pixels.baseAddress! + 3 * pixel
                                let red = rgb[0], green = rgb[1], blue = rgb[2]
                                let maximum = max(red, green, blue), minimum = min(red, green, blue)
                                if maximum == minimum { continue }  // Grey: saturation 0, unchanged.
                                let hue = hues[HueTables.hueKey(red, green, blue, maximum: maximum, minimum: minimum)] &+ shift
                                let range = Int(maximum - minimum)
                                let saturation = saturations[range << 8 | Int(maximum)]
                                if saturation == 0 {
                                    rgb[0] = maximum; rgb[1] = maximum; rgb[2] = maximum
                                    continue
                                }
                                HueTables.writeRGB(
                                    hue: Int(hue), saturation: Int(saturation), value: maximum,
                                    low: lowValues[Int(saturation) << 8 | Int(maximum)], sectorsAndRemainders: sectorsAndRemainders,
                                    into: rgb)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Tables of PIL's HSV conversions, filled once with PIL's own arithmetic.
private struct HueTables: Sendable {
    static let shared = HueTables()

    /// The hue byte of `rgb2hsv_row`, at ``hueKey(_:_:_:maximum:minimum:)``.
    let hues: [UInt8]
    /// The saturation byte of `rgb2hsv_row` at `range << 8 | maximum`.
    let saturations: [UInt8]
    /// `p` of `hsv2rgb` at `saturation << 8 | value`.
    let lowValues: [UInt8]
    /// For each hue byte: the sector `i % 6` in the low 3 bits of the index and the remainder
    /// `f` of `hsv2rgb`, as `(sector, f)` pairs flattened.
    let sectorsAndRemainders: [Float]

    /// The key of a non-grey pixel: which channel is the maximum (PIL's branch order), which of
    /// the other two is the minimum, the range and the other channel's distance from the maximum
    /// — everything PIL's hue computation depends on.
    @inline(__always)
    static func hueKey(_ red: UInt8, _ green: UInt8, _ blue: UInt8, maximum: UInt8, minimum: UInt8) -> Int {
        // Selects rather than branches: which channel is the maximum is unpredictable.
        let redIsMaximum = red == maximum
        let greenIsMaximum = !redIsMaximum && green == maximum
        let branch = redIsMaximum ? 0 : greenIsMaximum ? 1 : 2
        let first = redIsMaximum ? green : red
        let second = redIsMaximum || greenIsMaximum ? blue : green
        let firstIsMinimum = first == minimum
        let other = firstIsMinimum ? second : first
        return ((branch << 1 | (firstIsMinimum ? 0 : 1)) << 16) | Int(maximum - minimum) << 8 | Int(maximum - other)
    }

    init() {
        var hues = [UInt8](repeating: 0, count: 6 << 16)
        for branch in 0..<3 {
            for firstIsMinimum in [true, false] {
                for range in 1..<256 {
                    for distance in 0...range {
                        // A representative pixel: maximum = range, minimum = 0.
                        let maximum = UInt8(range), other = UInt8(range - distance)
                        let (first, second) = firstIsMinimum ? (UInt8(0), other) : (other, UInt8(0))
                        let (red, green, blue): (UInt8, UInt8, UInt8)
                        switch branch {
                        case 0: (red, green, blue) = (maximum, first, second)
                        case 1: (red, green, blue) = (first, maximum, second)
                        default: (red, green, blue) = (first, second, maximum)
                        }
                        let key = Self.hueKey(red, green, blue, maximum: max(red, green, blue), minimum: min(red, green, blue))
                        hues[key] = Self.pilHue(red, green, blue)
                    }
                }
            }
        }
        self.hues = hues
        var saturations = [UInt8](repeating: 0, count: 1 << 16)
        for range in 1..<256 {
            for maximum in range..<256 {
                let saturation = Float(range) / Float(maximum)
                saturations[range << 8 | maximum] = UInt8(min(Int(Double(saturation) * 255.0), 255))
            }
        }
        self.saturations = saturations
        var lowValues = [UInt8](repeating: 0, count: 1 << 16)
        for saturation in 0..<256 {
            let scaled = Float(Double(Float(saturation)) / 255.0)
            for value in 0..<256 {
                lowValues[saturation << 8 | value] = Self.roundedByte(Double(Float(value)) * (1.0 - Double(scaled)))
            }
        }
        self.lowValues = lowValues
        sectorsAndRemainders = (0..<256).flatMap { hue -> [Float] in
            let scaled = Double(Float(hue)) * 6.0 / 255.0
            let sector = scaled.rounded(.down)
            return [Float(Int(sector) % 6), Float(scaled - Double(Float(sector)))]
        }
    }

    /// PIL's hue byte for a non-grey pixel (`rgb2hsv_row`, float and double as in C).
    private static func pilHue(_ red: UInt8, _ green: UInt8, _ blue: UInt8) -> UInt8 {
        let maximum = max(red, green, blue), range = Float(maximum - min(red, green, blue))
        let redDistance = Float(maximum - red) / range
        let greenDistance = Float(maximum - green) / range
        let blueDistance = Float(maximum - blue) / range
        var hue: Float
        if red == maximum {
            hue = blueDistance - greenDistance
        } else if green == maximum {
            hue = Float(2.0 + Double(redDistance) - Double(blueDistance))
        } else {
            hue = Float(4.0 + Double(greenDistance) - Double(redDistance))
        }
        hue = Float((Double(hue) / 6.0 + 1.0).truncatingRemainder(dividingBy: 1.0))
        return UInt8(min(Int(Double(hue) * 255.0), 255))
    }

    /// C's `round` (halves away from zero) for non-negative values, clamped to a byte.
    @inline(__always)
    static func roundedByte(_ value: Double) -> UInt8 {
        let whole = Int(value)
        let rounded = value - Double(whole) >= 0.5 ? whole + 1 : whole
        return rounded >= 255 ? 255 : UInt8(truncatingIfNeeded: rounded)
    }

    /// For each sector of `hsv2rgb`, which of (value, p, q or t) goes to red, green and blue:
    /// two bits per channel, six bits per sector.
    /// Sectors 0…5: (value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value),
    /// (value, p, q), with value = 0, p = 1, q or t = 2.
    private static let channelSources: UInt64 =
        (0 | 2 << 2 | 1 << 4) | (2 | 0 << 2 | 1 << 4) << 6 | (1 | 0 << 2 | 2 << 4) << 12
        | (1 | 2 << 2 | 0 << 4) << 18 | (2 | 1 << 2 | 0 << 4) << 24 | (0 | 1 << 2 | 2 << 4) << 30

    /// PIL's `hsv2rgb` for one pixel with non-zero saturation; `low` is its `p`. Even sectors
    /// use PIL's `t`, odd sectors its `q`.
    @inline(__always)
    static func writeRGB(
        hue: Int, saturation: Int, value: UInt8, low: UInt8, sectorsAndRemainders: UnsafeBufferPointer<Float>,
        into rgb: UnsafeMutablePointer<UInt8>
    ) {
        let sector = Int(sectorsAndRemainders[2 * hue]), fraction = sectorsAndRemainders[2 * hue + 1]
        let scaledSaturation = Float(Double(Float(saturation)) / 255.0)
        let rising = 1.0 - Double(scaledSaturation * fraction)
        let falling = 1.0 - Double(scaledSaturation) * (1.0 - Double(fraction))
        let middle = roundedByte(Double(value) * (sector & 1 == 1 ? rising : falling))
        let packed = UInt32(value) | UInt32(low) << 8 | UInt32(middle) << 16
        let sources = channelSources >> (6 * UInt64(sector))  // A constant after inlining.
        rgb[0] = UInt8(truncatingIfNeeded: packed >> (8 * UInt32(sources & 3)))
        rgb[1] = UInt8(truncatingIfNeeded: packed >> (8 * UInt32(sources >> 2 & 3)))
        rgb[2] = UInt8(truncatingIfNeeded: packed >> (8 * UInt32(sources >> 4 & 3)))
    }
}
