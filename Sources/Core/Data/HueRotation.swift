/// torchvision's `adjust_hue` on a PIL image: RGB to PIL's 8-bit HSV (`rgb2hsv_row`), the hue
/// byte shifted with wrap-around, back to RGB (`hsv2rgb`), byte for byte.
///
/// PIL's per-pixel divisions, `floor`, `fmod` and `round` are replaced by tables and exact
/// integer steps that give the same float and double values.
extension Image {
    /// Rotates the hue by `factor` turns (−0.5…0.5): the hue byte moves by `Int32(factor × 255)`
    /// modulo 256.
    public mutating func adjustHue(_ factor: Double) {
        let shift = UInt8(truncatingIfNeeded: Int32(factor * 255))
        let tables = HueTables.shared
        pixels.withUnsafeMutableBufferPointer { pixels in
            tables.quotients.withUnsafeBufferPointer { quotients in
                for pixel in 0..<width * height {
                    let rgb = pixels.baseAddress! + 3 * pixel
                    let red = rgb[0], green = rgb[1], blue = rgb[2]
                    let maximum = max(red, green, blue), minimum = min(red, green, blue)
                    if maximum == minimum { continue }  // Grey: saturation 0, unchanged.
                    // PIL's rgb2hsv_row: float quotients, hue in double, truncated to bytes.
                    let range = Int(maximum - minimum)
                    func quotient(_ numerator: UInt8) -> Float { quotients[Int(numerator) << 8 | range] }
                    let hueSixths: Float
                    if red == maximum {
                        hueSixths = quotient(maximum - blue) - quotient(maximum - green)
                    } else if green == maximum {
                        hueSixths = Float(2.0 + Double(quotient(maximum - red)) - Double(quotient(maximum - blue)))
                    } else {
                        hueSixths = Float(4.0 + Double(quotient(maximum - green)) - Double(quotient(maximum - red)))
                    }
                    var turns = Double(hueSixths) / 6.0 + 1.0
                    if turns >= 1 { turns -= 1 }  // fmod(turns, 1) for turns in [0, 2), exactly.
                    let hue = UInt8(truncatingIfNeeded: Int(Double(Float(turns)) * 255.0)) &+ shift
                    let saturationByte = Int(Double(quotients[range << 8 | Int(maximum)]) * 255.0)
                    tables.writeRGB(hue: Int(hue), saturation: saturationByte, value: maximum, into: rgb)
                }
            }
        }
    }
}

/// Per-byte constants of PIL's HSV conversions, computed once.
private struct HueTables: Sendable {
    static let shared = HueTables()

    /// `Float(numerator) / Float(denominator)` at `numerator << 8 | denominator`.
    let quotients: [Float]
    /// For each hue byte: the sector (`i % 6`) and its remainder `f`, as PIL's hsv2rgb computes them.
    let sectors: [Int]
    let remainders: [Float]
    /// For each saturation byte: `Float(s) / 255.0`.
    let saturations: [Float]

    init() {
        var quotients = [Float](repeating: 0, count: 256 * 256)
        for numerator in 0..<256 {
            for denominator in 1..<256 { quotients[numerator << 8 | denominator] = Float(numerator) / Float(denominator) }
        }
        self.quotients = quotients
        sectors = (0..<256).map { Int((Double(Float($0)) * 6.0 / 255.0).rounded(.down)) % 6 }
        remainders = (0..<256).map { hue in
            let scaled = Double(Float(hue)) * 6.0 / 255.0
            return Float(scaled - Double(Float(scaled.rounded(.down))))
        }
        saturations = (0..<256).map { Float(Double(Float($0)) / 255.0) }
    }

    /// C's `round` (halves away from zero) for non-negative values, without a libm call.
    @inline(__always)
    private func roundedByte(_ value: Double) -> UInt8 {
        let whole = Int(value)
        let rounded = value - Double(whole) >= 0.5 ? whole + 1 : whole
        return rounded >= 255 ? 255 : UInt8(truncatingIfNeeded: rounded)
    }

    /// PIL's hsv2rgb for one pixel with non-zero saturation.
    @inline(__always)
    func writeRGB(hue: Int, saturation: Int, value: UInt8, into rgb: UnsafeMutablePointer<UInt8>) {
        guard saturation > 0 else {
            rgb[0] = value; rgb[1] = value; rgb[2] = value
            return
        }
        let fraction = remainders[hue], scaledSaturation = saturations[saturation]
        let v = Double(value)
        let p = roundedByte(v * (1.0 - Double(scaledSaturation)))
        let q = roundedByte(v * (1.0 - Double(scaledSaturation * fraction)))
        let t = roundedByte(v * (1.0 - Double(scaledSaturation) * (1.0 - Double(fraction))))
        switch sectors[hue] {
        case 0: rgb[0] = value; rgb[1] = t; rgb[2] = p
        case 1: rgb[0] = q; rgb[1] = value; rgb[2] = p
        case 2: rgb[0] = p; rgb[1] = value; rgb[2] = t
        case 3: rgb[0] = p; rgb[1] = q; rgb[2] = value
        case 4: rgb[0] = t; rgb[1] = p; rgb[2] = value
        default: rgb[0] = value; rgb[1] = p; rgb[2] = q
        }
    }
}
