import Foundation
import SSLCore
import XCTest

/// GELU's kernels (forward, backward, and the fused forward-and-backward of `geluLinear`) against
/// GELU's definition, x · Φ(x) with Φ(x) = (1 + erf(x / √2)) / 2, evaluated in double precision.
/// The kernels' erf is a rational fit with absolute error below 4 · 10⁻⁷ (clamped at ±4, where
/// |erf| is within 2 · 10⁻⁸ of 1), and their exp has relative error below 2 · 10⁻⁷; the bounds
/// below are those errors carried through the formula, plus 4 float roundings (4 · 2⁻²⁴ relative)
/// of each term.
final class GELUKernelTests: XCTestCase {
    /// Inputs across the whole useful range and into both tails, tiny ones near zero, and enough of
    /// them that the parallel loops split them into several chunks with a ragged tail.
    private let inputs: [Float] = {
        let grid = (0..<240_007).map { Float(-12 + 24 * Double($0) / 240_006) }
        let tiny = (1...20).flatMap { exponent in [Float(1), -1].map { $0 * Float(pow(10, -Double(exponent) / 2)) } }
        return grid + tiny + [0]
    }()

    private static let erfError = 4e-7, expError = 2e-7, rounding = 4 * 0x1p-24

    private func cumulative(_ x: Double) -> Double { 0.5 * (1 + erf(x / 2.squareRoot())) }
    private func density(_ x: Double) -> Double { exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }

    func testForwardIsTheDefinition() {
        let output = Tensor(shape: [inputs.count], elements: inputs).gelu().elements
        for (x, y) in zip(inputs.map(Double.init), output.map(Double.init)) {
            let exact = x * cumulative(x)
            let bound = 0.5 * abs(x) * (Self.erfError + Self.rounding) + Self.rounding * abs(exact)
            XCTAssertLessThanOrEqual(abs(y - exact), bound, "gelu(\(x))")
        }
    }

    func testBackwardIsTheDerivative() {
        let input = Tensor(shape: [inputs.count], elements: inputs)
        input.requiresGradient = true
        input.gelu().sum().backward()
        assertDerivative(input.gradient!.elements, "gelu'")
    }

    /// `geluLinear` recomputes the activation in its backward pass with the fused kernel; through
    /// a 1 × 1 weight of one, the input's gradient is GELU's derivative.
    func testFusedBackwardIsTheDerivative() {
        let input = Tensor(shape: [inputs.count, 1], elements: inputs)
        input.requiresGradient = true
        let weight = Tensor(shape: [1, 1], elements: [1])
        weight.requiresGradient = true
        input.geluLinear(weight: weight).sum().backward()
        assertDerivative(input.gradient!.elements, "fused gelu'")
        let activationSum = inputs.reduce(0.0) { $0 + Double($1) * cumulative(Double($1)) }
        let sumBound = inputs.reduce(0.0) { $0 + 0.5 * abs(Double($1)) * (Self.erfError + Self.rounding) }
            + Double(inputs.count) * 0x1p-24 * inputs.reduce(0.0) { $0 + abs(Double($1)) }
        XCTAssertEqual(Double(weight.gradient!.elements[0]), activationSum, accuracy: sumBound, "the weight's gradient, Σ gelu(x)")
    }

    private func assertDerivative(_ gradient: [Float], _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        for (x, dx) in zip(inputs.map(Double.init), gradient.map(Double.init)) {
            let cumulativePart = cumulative(x), densityPart = x * density(x)
            let bound = 0.5 * Self.erfError + Self.expError * abs(densityPart)
                + Self.rounding * (abs(cumulativePart) + abs(densityPart))
            XCTAssertLessThanOrEqual(abs(dx - (cumulativePart + densityPart)), bound, "\(name)(\(x))", file: file, line: line)
        }
    }
}
