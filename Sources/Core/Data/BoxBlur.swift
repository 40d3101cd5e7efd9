/// PIL's `ImageFilter.GaussianBlur`: three passes of an extended box filter per direction
/// (`BoxBlur.c`), which approximates a Gaussian of standard deviation `radius`. The result
/// matches PIL byte for byte; it is not a true Gaussian (see `ssl-methods-spec.md` §2.6).
extension Image {
    /// The box radius (integer part plus a fractional extension) that PIL uses for a Gaussian
    /// of standard deviation `radius` split into `passes` boxes, in float32 as PIL computes it.
    static func boxRadius(forGaussianRadius radius: Float, passes: Int) -> Float {
        let variance = radius * radius / Float(passes)
        let length = Float((12.0 * Double(variance) + 1.0).squareRoot())
        let integer = Float(((Double(length) - 1.0) / 2.0).rounded(.down))
        var fraction = (2 * integer + 1) * (integer * (integer + 1) - 3 * variance)
        fraction /= 6 * (variance - (integer + 1) * (integer + 1))
        return integer + fraction
    }

    /// Blurs the image as PIL's `image.filter(ImageFilter.GaussianBlur(radius))`.
    public mutating func gaussianBlur(radius: Float) {
        guard radius > 0 else { return }
        let passes = 3
        let box = BoxFilter(radius: Self.boxRadius(forGaussianRadius: radius, passes: passes))
        var scratch = [UInt8](repeating: 0, count: pixels.count)
        var line = [UInt32](repeating: 0, count: (width + 2 * box.integerRadius + 4) * 3)
        var sums = [UInt32](repeating: 0, count: width * 3)
        let width = width, height = height
        pixels.withUnsafeMutableBufferPointer { pixels in
            scratch.withUnsafeMutableBufferPointer { scratch in
                for _ in 0..<passes {
                    line.withUnsafeMutableBufferPointer { line in
                        for row in 0..<height {
                            let offset = row * width * 3
                            box.blurRow(pixels.baseAddress! + offset, count: width, line: line)
                        }
                    }
                }
                var source = pixels, target = scratch
                for _ in 0..<passes {
                    sums.withUnsafeMutableBufferPointer { sums in
                        box.blurColumns(source, into: target, width: width, height: height, sums: sums)
                    }
                    swap(&source, &target)
                }
                // An odd number of passes leaves the result in `scratch`.
                if source.baseAddress != pixels.baseAddress {
                    pixels.baseAddress!.update(from: source.baseAddress!, count: pixels.count)
                }
            }
        }
    }
}

/// One pass of PIL's extended box filter: the mean over `2r + 1` samples plus a fraction `fw`
/// of the two next samples, in 24-bit fixed point, with edge samples repeated.
private struct BoxFilter {
    let integerRadius: Int
    /// The weight of the samples inside the box, out of 2²⁴.
    let innerWeight: UInt32
    /// The weight of each of the two samples just outside the box, out of 2²⁴.
    let outerWeight: UInt32

    init(radius: Float) {
        integerRadius = Int(radius)
        innerWeight = UInt32(Float(1 << 24) / (radius * 2 + 1))
        outerWeight = (UInt32(1 << 24) &- UInt32(integerRadius * 2 + 1) &* innerWeight) / 2
    }

    @inline(__always)
    func byte(sum: UInt32, left: UInt32, right: UInt32) -> UInt8 {
        UInt8(truncatingIfNeeded: (sum &* innerWeight &+ (left &+ right) &* outerWeight &+ (1 << 23)) >> 24)
    }

    /// Blurs one RGB row of `count` pixels in place; `line` holds the row padded with repeated
    /// edge pixels.
    func blurRow(_ row: UnsafeMutablePointer<UInt8>, count: Int, line: UnsafeMutableBufferPointer<UInt32>) {
        let padding = integerRadius + 2
        for index in 0..<(count + 2 * padding) {
            let source = min(max(index - padding, 0), count - 1)
            line[3 * index] = UInt32(row[3 * source])
            line[3 * index + 1] = UInt32(row[3 * source + 1])
            line[3 * index + 2] = UInt32(row[3 * source + 2])
        }
        let r = integerRadius
        for channel in 0..<3 {
            // The window sum for pixel −1: samples −r−1 … r−1.
            var sum: UInt32 = 0
            for index in (padding - r - 1)...(padding + r - 1) { sum &+= line[3 * index + channel] }
            for x in 0..<count {
                let center = padding + x
                sum &+= line[3 * (center + r) + channel] &- line[3 * (center - r - 1) + channel]
                row[3 * x + channel] = byte(
                    sum: sum, left: line[3 * (center - r - 1) + channel], right: line[3 * (center + r + 1) + channel])
            }
        }
    }

    /// Blurs every column of an RGB image from `source` into `target`, a whole row at a time.
    func blurColumns(
        _ source: UnsafeMutableBufferPointer<UInt8>, into target: UnsafeMutableBufferPointer<UInt8>,
        width: Int, height: Int, sums: UnsafeMutableBufferPointer<UInt32>
    ) {
        let rowLength = width * 3
        let r = integerRadius
        func row(_ index: Int) -> UnsafeMutablePointer<UInt8> {
            source.baseAddress! + min(max(index, 0), height - 1) * rowLength
        }
        sums.update(repeating: 0)
        for index in (-r - 1)...(r - 1) {
            let input = row(index)
            for element in 0..<rowLength { sums[element] &+= UInt32(input[element]) }
        }
        for y in 0..<height {
            let entering = row(y + r), leaving = row(y - r - 1), next = row(y + r + 1)
            let output = target.baseAddress! + y * rowLength
            for element in 0..<rowLength {
                sums[element] &+= UInt32(entering[element]) &- UInt32(leaving[element])
                output[element] = byte(sum: sums[element], left: UInt32(leaving[element]), right: UInt32(next[element]))
            }
        }
    }
}
