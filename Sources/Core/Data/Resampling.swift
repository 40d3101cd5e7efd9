/// The resampling filters of RandomResizedCrop.
public enum Interpolation: String, Sendable, CaseIterable {
    /// PIL's `BILINEAR` (triangle filter, support 1).
    case bilinear
    /// PIL's `BICUBIC` (Keys cubic with a = −0.5, support 2).
    case bicubic

    var support: Double { self == .bilinear ? 1 : 2 }

    func weight(_ distance: Double) -> Double {
        let x = abs(distance)
        switch self {
        case .bilinear:
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}

/// One axis of PIL's separable resampling: for every output position, the first input position
/// it reads, how many it reads, and their fixed-point weights.
///
/// This is PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` (`Resample.c`): the filter is
/// stretched by the downscaling factor (antialiasing), weights are normalised to sum to one and
/// rounded to 22 fractional bits.
struct ResamplingAxis {
    static let precisionBits: Int32 = 22
    /// The largest number of input positions one output reads.
    let taps: Int
    /// `2 × outputSize` values: first input position, number of positions.
    let bounds: [Int]
    /// `outputSize × taps` weights with `precisionBits` fractional bits.
    let weights: [Int32]

    init(inputSize: Int, outputSize: Int, interpolation: Interpolation) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = interpolation.support * filterScale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: 2 * outputSize)
        var weights = [Int32](repeating: 0, count: outputSize * taps)
        var real = [Double](repeating: 0, count: taps)
        for output in 0..<outputSize {
            let center = (Double(output) + 0.5) * scale
            let first = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inputSize)
            var total = 0.0
            for tap in 0..<(end - first) {
                real[tap] = interpolation.weight((Double(tap + first) - center + 0.5) / filterScale)
                total += real[tap]
            }
            for tap in 0..<(end - first) {
                let normalised = total != 0 ? real[tap] / total : real[tap]
                let scaled = normalised * Double(1 << Self.precisionBits)
                weights[output * taps + tap] = Int32(normalised < 0 ? scaled - 0.5 : scaled + 0.5)
            }
            bounds[2 * output] = first
            bounds[2 * output + 1] = end - first
        }
        self.taps = taps
        self.bounds = bounds
        self.weights = weights
    }

    /// A fixed-point sum back to a byte, clamped (PIL's `clip8`).
    @inline(__always)
    static func byte(_ sum: Int32) -> UInt8 {
        let value = sum >> precisionBits
        return value < 0 ? 0 : value > 255 ? 255 : UInt8(truncatingIfNeeded: value)
    }
}

/// A rectangle of whole pixels inside an image.
public struct PixelRegion: Sendable, Equatable {
    /// The first row.
    public var top: Int
    /// The first column.
    public var left: Int
    /// Rows.
    public var height: Int
    /// Columns.
    public var width: Int

    /// The region with the given corner and size.
    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }
}

extension Image {
    /// The pixels of `region` resized to `width × height` exactly as torchvision's
    /// `resized_crop` on a PIL image (`img.crop(box).resize(size, filter)`): a horizontal then a
    /// vertical pass in 8-bit fixed point, antialiased when downscaling, rounded to bytes
    /// between the passes.
    public func resized(
        region: PixelRegion, width outputWidth: Int, height outputHeight: Int, interpolation: Interpolation
    ) -> Image {
        precondition(
            region.top >= 0 && region.left >= 0 && region.height > 0 && region.width > 0
                && region.top + region.height <= height && region.left + region.width <= width,
            "Region \(region) is not inside a \(width)x\(height) image.")
        let horizontal = ResamplingAxis(inputSize: region.width, outputSize: outputWidth, interpolation: interpolation)
        let vertical = ResamplingAxis(inputSize: region.height, outputSize: outputHeight, interpolation: interpolation)
        // Rows of the region that the vertical pass reads.
        let firstRow = vertical.bounds[0]
        let endRow = vertical.bounds[2 * outputHeight - 2] + vertical.bounds[2 * outputHeight - 1]
        let rowLength = outputWidth * 3
        var intermediate = [UInt8](repeating: 0, count: (endRow - firstRow) * rowLength)
        pixels.withUnsafeBufferPointer { source in
            intermediate.withUnsafeMutableBufferPointer { target in
                horizontal.weights.withUnsafeBufferPointer { weights in
                    for row in firstRow..<endRow {
                        let input = source.baseAddress! + ((region.top + row) * width + region.left) * 3
                        let output = target.baseAddress! + (row - firstRow) * rowLength
                        Self.resampleRow(input, into: output, axis: horizontal, weights: weights, count: outputWidth)
                    }
                }
            }
        }
        var result = [UInt8](repeating: 0, count: outputHeight * rowLength)
        var sums = [Int32](repeating: 0, count: rowLength)
        intermediate.withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                sums.withUnsafeMutableBufferPointer { sums in
                    vertical.weights.withUnsafeBufferPointer { weights in
                        for outputRow in 0..<outputHeight {
                            let first = vertical.bounds[2 * outputRow] - firstRow
                            let count = vertical.bounds[2 * outputRow + 1]
                            sums.update(repeating: 1 << (ResamplingAxis.precisionBits - 1))
                            for tap in 0..<count {
                                let weight = weights[outputRow * vertical.taps + tap]
                                let input = source.baseAddress! + (first + tap) * rowLength
                                for index in 0..<rowLength {
                                    sums[index] &+= Int32(input[index]) &* weight
                                }
                            }
                            let output = target.baseAddress! + outputRow * rowLength
                            for index in 0..<rowLength { output[index] = ResamplingAxis.byte(sums[index]) }
                        }
                    }
                }
            }
        }
        return Image(width: outputWidth, height: outputHeight, pixels: result)
    }

    /// One row of the horizontal pass: `count` RGB outputs from the RGB row at `input`.
    @inline(__always)
    private static func resampleRow(
        _ input: UnsafePointer<UInt8>, into output: UnsafeMutablePointer<UInt8>, axis: ResamplingAxis,
        weights: UnsafeBufferPointer<Int32>, count: Int
    ) {
        let half: Int32 = 1 << (ResamplingAxis.precisionBits - 1)
        axis.bounds.withUnsafeBufferPointer { bounds in
            for column in 0..<count {
                let first = bounds[2 * column], taps = bounds[2 * column + 1]
                let kernel = weights.baseAddress! + column * axis.taps
                var red = half, green = half, blue = half
                var pixel = input + first * 3
                for tap in 0..<taps {
                    let weight = kernel[tap]
                    red &+= Int32(pixel[0]) &* weight
                    green &+= Int32(pixel[1]) &* weight
                    blue &+= Int32(pixel[2]) &* weight
                    pixel += 3
                }
                output[3 * column] = ResamplingAxis.byte(red)
                output[3 * column + 1] = ResamplingAxis.byte(green)
                output[3 * column + 2] = ResamplingAxis.byte(blue)
            }
        }
    }
}
