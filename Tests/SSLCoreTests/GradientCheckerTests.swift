@testable import SSLCore
import SSLTestSupport
import XCTest

/// The finite-difference checker must catch a wrong backward pass, or the gradient tests prove
/// nothing.
final class GradientCheckerTests: XCTestCase {
    func testCheckerRejectsAWrongBackwardPass() {
        let input = Tensor(shape: [3], elements: [0.5, -1, 2])
        let mismatch = gradientMismatch(of: [input]) { inputs in
            let x = inputs[0]
            // Claims d(x²)/dx = x instead of 2x.
            return x.zipElements(x) { a, _ in a * a }.recording("wrongSquare", inputs: [x]) { g in [g * x] }
        }
        XCTAssertNotNil(mismatch)
    }

    func testCheckerAcceptsTheRightBackwardPass() {
        let input = Tensor(shape: [3], elements: [0.5, -1, 2])
        XCTAssertNil(gradientMismatch(of: [input]) { $0[0] * $0[0] })
    }
}
