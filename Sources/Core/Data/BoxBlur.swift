/// PIL's `ImageFilter.GaussianBlur`: three passes of an extended box filter per direction
/// (`BoxBlur.c`), which approximates a Gaussian of standard deviation `radius`. The result
/// matches PIL byte for byte; it is not a true Gaussian (PIL's `ImageFilter.GaussianBlur`, which DINO's `utils.GaussianBlur` calls).
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

    /// Blurs the image as PIL's `image.filter(ImageFilter.GaussianBlur(radius))`: three box
    /// passes along rows, then three along columns. Rows are blurred as the columns of the
    /// transposed image (as PIL does), so both directions run over whole rows at a time.
    public mutating func gaussianBlur(radius: Float) {
        guard radius > 0 else { return }
        let passes = 3
        let box = BoxFilter(radius: Self.boxRadius(forGaussianRadius: radius, passes: passes))
        var first = [UInt8](repeating: 0, count: pixels.count)
        var second = [UInt8](repeating: 0, count: pixels.count)
        var sums = [UInt32](repeating: 0, count: max(width, height) * 3)
        let width = width, height = height
        pixels.withUnsafeMutableBufferPointer { pixels in
            first.withUnsafeMutableBufferPointer { first in
                second.withUnsafeMutableBufferPointer { second in
                    sums.withUnsafeMutableBufferPointer { sums in
                        // Along rows: columns of the transposed image (height × width → width × height).
                        Self.transpose(pixels, into: first, width: width, height: height)
                        box.blurColumns(first, into: second, width: height, height: width, sums: sums)
                        box.blurColumns(second, into: first, width: height, height: width, sums: sums)
                        box.blurColumns(first, into: second, width: height, height: width, sums: sums)
                        Self.transpose(second, into: pixels, width: height, height: width)
                        // Along columns.
                        box.blurColumns(pixels, into: first, width: width, height: height, sums: sums)
                        box.blurColumns(first, into: second, width: width, height: height, sums: sums)
                        box.blurColumns(second, into: pixels, width: width, height: height, sums: sums)
                    }
                }
            }
        }
    }

    /// Writes the `height × width` RGB image `source` as the `width × height` image `target`.
    private static func transpose(
        _ source: UnsafeMutableBufferPointer<UInt8>, into target: UnsafeMutableBufferPointer<UInt8>, width: Int, height: Int
    ) {
        for row in 0..<height {
            for column in 0..<width {
                let from = (row * width + column) * 3, to = (column * height + row) * 3
                target[to] = source[from]
                target[to + 1] = source[from + 1]
                target[to + 2] = source[from + 2]
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
