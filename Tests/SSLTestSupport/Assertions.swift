import SSLCore
import XCTest

/// Asserts that two tensors have the same shape and that every element satisfies
/// `|actual − expected| ≤ absoluteTolerance + relativeTolerance · |expected|`, reporting the
/// worst element.
public func assertClose(
    _ actual: Tensor, _ expected: Tensor, absoluteTolerance: Float = 1e-5, relativeTolerance: Float = 0,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("\(message()): shape \(actual.shape) ≠ expected \(expected.shape)", file: file, line: line)
        return
    }
    var worst = (index: -1, excess: Float(0), actual: Float(0), expected: Float(0))
    let a = actual.elements, e = expected.elements
    for index in a.indices {
        let allowed = absoluteTolerance + relativeTolerance * abs(e[index])
        let difference = abs(a[index] - e[index])
        if !(difference <= allowed), worst.index < 0 || difference - allowed > worst.excess {
            worst = (index, difference - allowed, a[index], e[index])
        }
    }
    if worst.index >= 0 {
        XCTFail(
            "\(message()): element \(worst.index) of \(actual.shape) is \(worst.actual), expected \(worst.expected) "
                + "(abs \(absoluteTolerance), rel \(relativeTolerance))",
            file: file, line: line)
    }
}

/// Asserts that `actual` matches `expected` with relative error ‖actual − expected‖/‖expected‖
/// at most `tolerance`: the per-tensor gradient criterion of the cross-check plan.
public func assertRelativeError(
    _ actual: Tensor, _ expected: Tensor, below tolerance: Double,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.shape == expected.shape else {
        XCTFail("\(message()): shape \(actual.shape) ≠ expected \(expected.shape)", file: file, line: line)
        return
    }
    var difference = 0.0, reference = 0.0
    for (a, e) in zip(actual.elements, expected.elements) {
        difference += Double(a - e) * Double(a - e)
        reference += Double(e) * Double(e)
    }
    let error = difference.squareRoot() / max(reference.squareRoot(), 1e-30)
    XCTAssertLessThanOrEqual(error, tolerance, "\(message()): relative error \(error)", file: file, line: line)
}

/// The committed reference fixtures in `Tests/Fixtures`.
public enum Fixtures {
    /// The folder holding the fixture files.
    public static let folder: String = {
        var components = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(2)  // SSLTestSupport/Assertions.swift
        return components.joined(separator: "/") + "/Fixtures"
    }()

    /// Opens the fixture file `name` (e.g. `vit_p16.h5`).
    public static func open(_ name: String) throws -> HDF5File {
        try HDF5File(path: "\(folder)/\(name)")
    }
}

/// Compares a computed gradient with the fixture's reference at `path`.
///
/// References marked `mathematically_zero` (an attention key bias, whose shift every softmax
/// row ignores) hold only rounding noise; for those both sides must be negligible (‖g‖ < 1e-5)
/// instead of agreeing in relative terms.
public func assertGradient(
    _ actual: Tensor, matches file: HDF5File, at path: String, relativeTolerance: Double = 1e-4,
    file sourceFile: StaticString = #filePath, line: UInt = #line
) throws {
    let expected = try file.readTensor(path)
    if (try? file.numericAttribute("mathematically_zero", of: path)) == 1 {
        let norm = { (tensor: Tensor) in tensor.elements.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        XCTAssertLessThan(norm(actual), 1e-5, "\(path) should be rounding noise", file: sourceFile, line: line)
        XCTAssertLessThan(norm(expected), 1e-5, "reference \(path) should be rounding noise", file: sourceFile, line: line)
    } else {
        assertRelativeError(actual, expected, below: relativeTolerance, "gradient \(path)", file: sourceFile, line: line)
    }
}
