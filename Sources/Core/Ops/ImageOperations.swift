extension Tensor {
    /// Cuts `[batch, channels, height, width]` images into non-overlapping `patch × patch`
    /// squares: `[batch, patches, channels·patch·patch]`, patches in row-major grid order and
    /// each patch flattened as (channel, row, column) — the layout of a `Conv2d` weight, so a
    /// patch embedding is this followed by one GEMM.
    public func patches(size patch: Int) -> Tensor {
        precondition(
            rank == 4 && shape[2] % patch == 0 && shape[3] % patch == 0,
            "patches(size: \(patch)): images \(describe) must be [batch, channels, height, width] "
                + "with height and width multiples of \(patch).")
        let batch = shape[0], channels = shape[1], height = shape[2], width = shape[3]
        let rows = height / patch, columns = width / patch
        let patchLength = channels * patch * patch
        let result = Tensor(uninitializedShape: [batch, rows * columns, patchLength])
        let images = storage.base, out = result.storage.base
        // Visits every (image element, patch element) pair once; `scatter` picks the direction.
        func walk(_ copy: (_ image: Int, _ patch: Int) -> Void) {
            for b in 0..<batch {
                for c in 0..<channels {
                    for y in 0..<height {
                        let gridRow = y / patch, inner = y % patch
                        let imageRow = ((b * channels + c) * height + y) * width
                        for gridColumn in 0..<columns {
                            let token = b * rows * columns + gridRow * columns + gridColumn
                            let patchStart = token * patchLength + (c * patch + inner) * patch
                            copy(imageRow + gridColumn * patch, patchStart)
                        }
                    }
                }
            }
        }
        walk { image, target in (out + target).update(from: images + image, count: patch) }
        let imageShape = shape
        return result.recording("patches", inputs: [self]) { g in
            let dx = Tensor(uninitializedShape: imageShape)
            let source = g.storage.base, target = dx.storage.base
            walk { image, patchStart in (target + image).update(from: source + patchStart, count: patch) }
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
