extension Tensor {
    /// Cuts `[batch, channels, height, width]` images into `size × size` squares taken every
    /// `stride` pixels (by default `size`: non-overlapping) of the images padded with `padding`
    /// zeros on every side: `[batch, patches, channels·size·size]`, patches in row-major grid
    /// order and each patch flattened as (channel, row, column) — the layout of a `Conv2d`
    /// weight, so a convolution (a patch embedding, or a stem's 3 × 3 layer) is this followed by
    /// one GEMM.
    ///
    /// The squares must tile the padded image exactly: `height + 2·padding − size` (and the same
    /// for the width) must be a multiple of `stride`.
    public func patches(size: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
        let stride = stride ?? size
        precondition(
            rank == 4 && size > 0 && stride > 0 && padding >= 0 && padding < size
                && shape[2] + 2 * padding >= size && shape[3] + 2 * padding >= size
                && (shape[2] + 2 * padding - size) % stride == 0 && (shape[3] + 2 * padding - size) % stride == 0,
            "patches(size: \(size), stride: \(stride), padding: \(padding)): images \(describe) must be "
                + "[batch, channels, height, width] whose padded height and width are tiled exactly by the squares.")
        let batch = shape[0], channels = shape[1], height = shape[2], width = shape[3]
        let rows = (height + 2 * padding - size) / stride + 1, columns = (width + 2 * padding - size) / stride + 1
        let patchLength = channels * size * size
        let result = Tensor(uninitializedShape: [batch, rows * columns, patchLength])
        // Visits every run of `size` patch elements along a patch row once, with the image
        // columns `valid` of it inside the image (the rest is padding); `visit` gets the run's
        // first image element (as if unpadded), its first patch element and the valid columns.
        func walk(_ visit: (_ image: Int, _ patch: Int, _ valid: Range<Int>) -> Void) {
            for b in 0..<batch {
                for c in 0..<channels {
                    for gridRow in 0..<rows {
                        for inner in 0..<size {
                            let y = gridRow * stride - padding + inner
                            let imageRow = ((b * channels + c) * height + y) * width
                            for gridColumn in 0..<columns {
                                let token = b * rows * columns + gridRow * columns + gridColumn
                                let patchStart = token * patchLength + (c * size + inner) * size
                                let x = gridColumn * stride - padding
                                let valid = (0..<height).contains(y) ? max(0, -x)..<min(size, width - x) : 0..<0
                                visit(imageRow + x, patchStart, valid)
                            }
                        }
                    }
                }
            }
        }
        let images = storage.base, out = result.storage.base
        walk { image, patchStart, valid in
            let target = out + patchStart
            target.update(repeating: 0, count: valid.lowerBound)
            (target + valid.lowerBound).update(from: images + image + valid.lowerBound, count: valid.count)
            (target + valid.upperBound).update(repeating: 0, count: size - valid.upperBound)
        }
        let imageShape = shape
        // Squares that tile the image without overlap, gaps or padding visit every image element
        // exactly once, so the gradient is copied rather than summed into zeros.
        let visitsEachElementOnce = stride == size && padding == 0
        return result.recording("patches", inputs: [self]) { g in
            let dx = visitsEachElementOnce ? Tensor(uninitializedShape: imageShape) : Tensor.zeros(imageShape)
            let source = g.storage.base, target = dx.storage.base
            walk { image, patchStart, valid in
                if visitsEachElementOnce {
                    (target + image).update(from: source + patchStart, count: size)
                } else {
                    for column in valid { target[image + column] += source[patchStart + column] }
                }
            }
            return [dx]
        }
    }

    /// Zeroes whole samples (slices along axis 0) with probability `rate` and scales the kept
    /// ones by 1/(1 − rate): stochastic depth.
    public func dropPath(rate: Float, generator: inout RandomGenerator) -> Tensor {
        guard rate > 0 else { return self }
        let keep = 1 - rate
        var maskShape = [Int](repeating: 1, count: rank)
        maskShape[0] = shape[0]
        let mask = Tensor(uninitializedShape: maskShape)
        for i in 0..<shape[0] {
            mask.storage.base[i] = (generator.nextUniform() + keep).rounded(.down) / keep
        }
        return self * mask
    }
}

/// Bicubic resampling of a 2-D grid as PyTorch's `interpolate(mode: "bicubic",
/// align_corners: false)` performs it, expressed as a constant matrix so that resampling (and
/// its gradient) is one matrix product.
public enum BicubicResampling {
    /// The cubic convolution coefficient used by PyTorch.
    static let a: Double = -0.75

    /// The `[output, input]` weights for resampling one axis.
    ///
    /// - Parameter scale: the scale factor whose reciprocal maps output to input coordinates,
    ///   `source = (destination + 0.5) / scale − 0.5`. PyTorch uses a caller-supplied scale factor
    ///   as is (DINO passes `(n + 0.1)/√N`), not `outputSize / inputSize`.
    public static func axisWeights(inputSize: Int, outputSize: Int, scale: Double) -> [[Double]] {
        func cubic1(_ x: Double) -> Double { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func cubic2(_ x: Double) -> Double { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        var weights = [[Double]](repeating: [Double](repeating: 0, count: inputSize), count: outputSize)
        for output in 0..<outputSize {
            let source = (Double(output) + 0.5) / scale - 0.5
            let floorSource = source.rounded(.down)
            let t = source - floorSource
            let coefficients = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)]
            for (offset, coefficient) in coefficients.enumerated() {
                let index = min(max(Int(floorSource) - 1 + offset, 0), inputSize - 1)
                weights[output][index] += coefficient
            }
        }
        return weights
    }

    /// The `[outputHeight·outputWidth, inputHeight·inputWidth]` matrix resampling a row-major
    /// grid, rows and columns separably.
    public static func gridMatrix(
        input: (height: Int, width: Int), output: (height: Int, width: Int),
        scale: (height: Double, width: Double)
    ) -> Tensor {
        let vertical = axisWeights(inputSize: input.height, outputSize: output.height, scale: scale.height)
        let horizontal = axisWeights(inputSize: input.width, outputSize: output.width, scale: scale.width)
        let matrix = Tensor.zeros([output.height * output.width, input.height * input.width])
        let m = matrix.storage.base
        let columns = input.height * input.width
        for oy in 0..<output.height {
            for ox in 0..<output.width {
                let row = (oy * output.width + ox) * columns
                for iy in 0..<input.height where vertical[oy][iy] != 0 {
                    for ix in 0..<input.width where horizontal[ox][ix] != 0 {
                        m[row + iy * input.width + ix] = Float(vertical[oy][iy] * horizontal[ox][ix])
                    }
                }
            }
        }
        return matrix
    }
}
