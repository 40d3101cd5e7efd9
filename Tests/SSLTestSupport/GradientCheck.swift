import SSLCore
import XCTest

/// Fails the test when a backward pass disagrees with central finite differences; see
/// ``gradientMismatch(of:step:tolerance:_:)``.
public func checkGradients(
    of inputs: [Tensor], step: Float = 1e-2, tolerance: Float = 1e-2,
    file: StaticString = #filePath, line: UInt = #line,
    _ function: ([Tensor]) -> Tensor
) {
    if let mismatch = gradientMismatch(of: inputs, step: step, tolerance: tolerance, function) {
        XCTFail(mismatch, file: file, line: line)
    }
}

/// Compares the gradients that backward passes compute with central finite differences and
/// describes the first element that disagrees, or returns `nil`.
///
/// The function runs in float32, so each input element is perturbed by `step` and compared
/// with a tolerance relative to max(1, |numeric|); inputs are kept small (tens of elements) so
/// every element's derivative is checked. The output is contracted with fixed random weights
/// so that every output element matters.
public func gradientMismatch(
    of inputs: [Tensor], step: Float = 1e-2, tolerance: Float = 1e-2, _ function: ([Tensor]) -> Tensor
) -> String? {
    for input in inputs {
        input.requiresGradient = true
        input.gradient = nil
    }
    let probe = function(inputs)
    var generator = RandomGenerator(seed: 17)
    let weights = Tensor.randomNormal(probe.shape, generator: &generator)
    func objective() -> Float {
        GradientMode.withoutGradient { (function(inputs) * weights).sum().scalar }
    }
    (probe * weights).sum().backward()
    for (inputIndex, input) in inputs.enumerated() {
        guard let analytic = input.gradient else { return "input \(inputIndex) received no gradient" }
        for element in 0..<input.count {
            let original = input.storage.base[element]
            input.storage.base[element] = original + step
            let plus = objective()
            input.storage.base[element] = original - step
            let minus = objective()
            input.storage.base[element] = original
            let numeric = (plus - minus) / (2 * step)
            let computed = analytic.storage.base[element]
            if abs(numeric - computed) > tolerance * max(1, abs(numeric)) {
                return "input \(inputIndex) \(input.shape), element \(element): analytic \(computed), numeric \(numeric)"
            }
        }
    }
    return nil
}
