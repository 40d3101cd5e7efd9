import SSLCore
import XCTest

/// Collapse signals on distributions and embeddings whose values are known.
final class EvalHealthMetricsTests: XCTestCase {
    func testTeacherDistributionOfBothCollapses() {
        let uniform = HealthMetrics.teacherDistribution(Tensor(shape: [3, 4], repeating: 0.25))
        XCTAssertEqual(uniform.entropy, log(4), accuracy: 1e-9)
        XCTAssertEqual(uniform.klDivergenceToUniform, 0, accuracy: 1e-9)
        let oneDimension = HealthMetrics.teacherDistribution(Tensor(shape: [2, 4], elements: [0, 1, 0, 0, 0, 1, 0, 0]))
        XCTAssertEqual(oneDimension.entropy, 0, accuracy: 1e-12)
        XCTAssertEqual(oneDimension.klDivergenceToUniform, log(4), accuracy: 1e-9)
        let healthy = HealthMetrics.teacherDistribution(Tensor(shape: [2, 2], elements: [1, 0, 0, 1]))
        XCTAssertEqual(healthy.entropy, 0, accuracy: 1e-12)
        XCTAssertEqual(healthy.klDivergenceToUniform, 0, accuracy: 1e-9)
    }

    func testEmbeddingStandardDeviation() {
        XCTAssertEqual(HealthMetrics.embeddingStandardDeviation(Tensor(shape: [3, 2], elements: [1, 2, 2, 4, 3, 6])), 0, accuracy: 1e-7)
        // Normalised rows [1, 0] and [0, 1]: each column has unbiased std √0.5.
        XCTAssertEqual(
            HealthMetrics.embeddingStandardDeviation(Tensor(shape: [2, 2], elements: [3, 0, 0, 5])), 0.5.squareRoot(), accuracy: 1e-7)
    }

    func testGradientNorm() {
        let a = Tensor.zeros([2]), b = Tensor.zeros([1]), c = Tensor.zeros([1])
        a.gradient = Tensor(shape: [2], elements: [3, 0])
        b.gradient = Tensor(shape: [1], elements: [4])
        XCTAssertEqual(HealthMetrics.gradientNorm([("a", a), ("b", b), ("c", c)]), 5, accuracy: 1e-12)
    }
}
