import SSLCore
import XCTest

/// A leaf takes the buffer of its first contribution as its gradient instead of a copy; these
/// tests pin down the cases where that buffer is shared and must not be taken or written.
final class LeafGradientOwnershipTests: XCTestCase {
    private func leaf(_ elements: [Float]) -> Tensor {
        let tensor = Tensor(shape: [elements.count], elements: elements)
        tensor.requiresGradient = true
        return tensor
    }

    /// `a + b` hands both leaves the same upstream buffer: the second must get a copy, so that
    /// updating one gradient in place (as clipping does) leaves the other alone.
    func testTwoLeavesNeverShareAGradientBuffer() throws {
        let a = leaf([1, 2, 3]), b = leaf([4, 5, 6])
        (a + b).sum().backward()
        let gradientOfA = try XCTUnwrap(a.gradient), gradientOfB = try XCTUnwrap(b.gradient)
        XCTAssertFalse(gradientOfA.storage === gradientOfB.storage)
        gradientOfA.scaleInPlace(by: 0)
        XCTAssertEqual(gradientOfB.elements, [1, 1, 1])
    }

    /// The seed belongs to the caller: a leaf reached through operations that pass it on
    /// unchanged gets a copy, and the caller's seed is not written by later passes.
    func testTheSeedIsNotTaken() throws {
        let a = leaf([1, 2, 3, 4])
        let seed = Tensor(shape: [2, 2], elements: [1, 2, 3, 4])
        a.reshaped([2, 2]).backward(seed: seed)
        let gradient = try XCTUnwrap(a.gradient)
        XCTAssertFalse(gradient.storage === seed.storage)
        a.reshaped([2, 2]).backward(seed: seed)
        XCTAssertEqual(seed.elements, [1, 2, 3, 4])
        XCTAssertEqual(gradient.elements, [2, 4, 6, 8])
    }

    /// In `((a + c) · w) + a · c` with `c = 3a`, the leaf `a` can take the upstream buffer of the
    /// sum while that buffer is still pending for `c`, and then get a second contribution from
    /// the product before `c`'s backward pass has read it: that second contribution must make a
    /// new sum, not write into the taken buffer. Every order of the terms and of the product's
    /// factors, since the order of the pass decides what reaches `a` first.
    func testASecondContributionDoesNotWriteATakenBuffer() throws {
        let weights = Tensor(shape: [3], elements: [2, 3, 5])
        for termsSwapped in [false, true] {
            for factorsSwapped in [false, true] {
                let a = leaf([1, -2, 0.5])
                let c = a * 3
                let throughSum = ((a + c) * weights).sum(), product = (factorsSwapped ? c * a : a * c).sum()
                (termsSwapped ? product + throughSum : throughSum + product).backward()
                // d/da = w + 3w + 6a.
                XCTAssertEqual(
                    try XCTUnwrap(a.gradient).elements, [14, 0, 23],
                    "terms swapped: \(termsSwapped), factors swapped: \(factorsSwapped)")
            }
        }
    }

    /// Gradients still accumulate across passes, in place, after a leaf took a buffer.
    func testGradientsAccumulateAcrossPasses() throws {
        let a = leaf([1, 2]), b = leaf([3, 4])
        (a * b).sum().backward()
        let first = try XCTUnwrap(a.gradient)
        (a * b).sum().backward()
        XCTAssertTrue(try XCTUnwrap(a.gradient) === first)
        XCTAssertEqual(first.elements, [6, 8])
        XCTAssertEqual(try XCTUnwrap(b.gradient).elements, [2, 4])
    }
}
