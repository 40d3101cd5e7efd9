import SSLCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The vectorised AdamW and EMA kernels round every element exactly as the scalar formulas do
/// (no fused multiply-adds, no reordering), over lengths that split into several threads'
/// chunks with a ragged tail.
final class OptimizerKernelTests: XCTestCase {
    private let count = 300_007

    private func randomElements(_ generator: inout RandomGenerator, scale: Float = 1) -> [Float] {
        Tensor.randomNormal([count], generator: &generator).elements.map { $0 * scale }
    }

    func testAdamWUpdateEqualsTheScalarFormulaBitForBit() {
        var generator = RandomGenerator(seed: 7)
        let initial = randomElements(&generator)
        let gradients = [randomElements(&generator, scale: 0.01), randomElements(&generator, scale: 3)]
        let parameter = Tensor(shape: [count], elements: initial)
        parameter.requiresGradient = true
        let learningRate = 1e-3, weightDecay = 0.04, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8
        let optimizer = AdamW(
            groups: [ParameterGroup(parameters: [("weight", parameter)])], learningRate: learningRate,
            weightDecay: weightDecay, beta1: beta1, beta2: beta2, epsilon: epsilon)

        var p = initial, m = [Float](repeating: 0, count: count), v = m
        for (index, gradient) in gradients.enumerated() {
            parameter.gradient = Tensor(shape: [count], elements: gradient)
            optimizer.step()
            let step = Double(index + 1)
            let decayFactor = Float(1 - learningRate * weightDecay)
            let stepSize = Float(learningRate / (1 - pow(beta1, step)))
            let correction2Root = Float((1 - pow(beta2, step)).squareRoot())
            for i in 0..<count {
                let g = gradient[i]
                p[i] *= decayFactor
                m[i] += Float(1 - beta1) * (g - m[i])
                let decayedSecond = v[i] * Float(beta2)
                v[i] = decayedSecond + Float(1 - beta2) * g * g
                let root = v[i].squareRoot()
                let denominator = root / correction2Root + Float(epsilon)
                let change = stepSize * m[i]
                p[i] -= change / denominator
            }
            let state = optimizer.state["weight"]!
            XCTAssertEqual(parameter.elements, p, "parameters after step \(index + 1)")
            XCTAssertEqual(state.firstMoment.elements, m, "first moments after step \(index + 1)")
            XCTAssertEqual(state.secondMoment.elements, v, "second moments after step \(index + 1)")
        }
    }

    func testMovingAverageEqualsTheScalarFormulaBitForBit() {
        var generator = RandomGenerator(seed: 8)
        let teacherValues = randomElements(&generator), studentValues = randomElements(&generator)
        let teacher = Linear(inputFeatures: count, outputFeatures: 1, bias: false, generator: &generator)
        let student = Linear(inputFeatures: count, outputFeatures: 1, bias: false, generator: &generator)
        _ = teacher.weight.storage.buffer.update(from: teacherValues)
        _ = student.weight.storage.buffer.update(from: studentValues)
        let momentum = 0.996
        ExponentialMovingAverage.update(teacher: teacher, student: student, momentum: momentum)
        let keep = Float(momentum), complement = Float(1 - momentum)
        let expected = (0..<count).map { i -> Float in
            let kept = teacherValues[i] * keep
            return kept + complement * studentValues[i]
        }
        XCTAssertEqual(teacher.weight.elements, expected)
    }
}
