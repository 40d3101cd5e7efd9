import SSLCore
import XCTest

/// The vectorised reductions (a gradient's sum of squares, the row norms and dot products of a
/// weight-normalised layer) against the same sums in double precision, over sizes that split
/// into several threads' chunks with ragged tails. Summed in another order, they may differ from
/// the sequential sum by rounding only: the bound is the standard one for a float sum of n
/// terms, n · 2⁻²⁴ · Σ|terms| (Higham, "Accuracy and Stability of Numerical Algorithms", §4.2).
final class ReductionKernelTests: XCTestCase {
    func testSumOfSquaresIsTheDoubleSum() {
        var generator = RandomGenerator(seed: 11)
        for count in [1, 7, 16, 300_007] {
            let values = Tensor.randomNormal([count], generator: &generator)
            let reference = values.elements.reduce(0.0) { $0 + Double($1) * Double($1) }
            // Double sums: n · 2⁻⁵³ relative, far below float32 resolution.
            XCTAssertEqual(values.sumOfSquares, reference, accuracy: Double(count) * 0x1p-52 * reference, "\(count) elements")
        }
    }

    func testWeightNormalizedLinearMatchesDoublePrecisionAcrossChunks() {
        var generator = RandomGenerator(seed: 12)
        let rows = 5, inputs = 129, outputs = 3_001
        let input = Tensor.randomNormal([rows, inputs], generator: &generator)
        let direction = Tensor.randomNormal([outputs, inputs], generator: &generator)
        let magnitude = Tensor.randomNormal([outputs, 1], generator: &generator)
        direction.requiresGradient = true
        magnitude.requiresGradient = true
        let output = input.weightNormalizedLinear(direction: direction, magnitude: magnitude)
        let seed = Tensor.randomNormal([rows, outputs], generator: &generator)
        output.backward(seed: seed)

        let x = input.elements.map(Double.init), v = direction.elements.map(Double.init)
        let g = magnitude.elements.map(Double.init), dy = seed.elements.map(Double.init)
        let y = output.elements, dg = magnitude.gradient!.elements
        // The product and the dot (inputs + rows terms), the norm (inputs / 2), a few single roundings.
        let unit = 0x1p-24 * Double(2 * inputs + rows + 4)
        for k in 0..<outputs {
            let row = v[(k * inputs)..<((k + 1) * inputs)]
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            var h = [Double](repeating: 0, count: inputs)  // Σ_r dy[r, k] · x[r, :]
            for r in 0..<rows {
                let xr = x[(r * inputs)..<((r + 1) * inputs)]
                let dot = zip(xr, row).reduce(0) { $0 + $1.0 * $1.1 }
                let size = zip(xr, row).reduce(0) { $0 + abs($1.0 * $1.1) }
                XCTAssertEqual(Double(y[r * outputs + k]), g[k] * dot / norm, accuracy: unit * abs(g[k]) * size / norm, "output (\(r), \(k))")
                for d in 0..<inputs { h[d] += dy[r * outputs + k] * xr[xr.startIndex + d] }
            }
            let hv = zip(h, row).reduce(0) { $0 + $1.0 * $1.1 }
            let size = zip(h, row).reduce(0) { $0 + abs($1.0 * $1.1) }
            XCTAssertEqual(Double(dg[k]), hv / norm, accuracy: unit * size / norm, "magnitude gradient \(k)")
        }
    }
}
