import SSLCore
import XCTest

/// Collapse signals on distributions and embeddings whose values are known, and the monitor
/// that turns sustained collapse into one warning per stretch.
final class TrainingHealthTests: XCTestCase {
    func testTeacherDistributionOfBothCollapses() {
        let uniform = TeacherDistribution(probabilities: Tensor(shape: [3, 4], repeating: 0.25))
        XCTAssertEqual(uniform.entropy, log(4), accuracy: 1e-9)
        XCTAssertEqual(uniform.klDivergenceToUniform, 0, accuracy: 1e-9)
        XCTAssertEqual(uniform.maximumEntropy, log(4), accuracy: 1e-12)
        let oneDimension = TeacherDistribution(probabilities: Tensor(shape: [2, 4], elements: [0, 1, 0, 0, 0, 1, 0, 0]))
        XCTAssertEqual(oneDimension.entropy, 0, accuracy: 1e-12)
        XCTAssertEqual(oneDimension.klDivergenceToUniform, log(4), accuracy: 1e-9)
        let healthy = TeacherDistribution(probabilities: Tensor(shape: [2, 2], elements: [1, 0, 0, 1]))
        XCTAssertEqual(healthy.entropy, 0, accuracy: 1e-12)
        XCTAssertEqual(healthy.klDivergenceToUniform, 0, accuracy: 1e-9)
    }

    func testEmbeddingSpread() {
        XCTAssertEqual(EmbeddingSpread(embeddings: Tensor(shape: [3, 2], elements: [1, 2, 2, 4, 3, 6])).standardDeviation, 0, accuracy: 1e-7)
        // Normalised rows [1, 0] and [0, 1]: each column has unbiased std √0.5.
        let spread = EmbeddingSpread(embeddings: Tensor(shape: [2, 2], elements: [3, 0, 0, 5]))
        XCTAssertEqual(spread.standardDeviation, 0.5.squareRoot(), accuracy: 1e-7)
        XCTAssertEqual(spread.wellSpread, 0.5.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(TaskHealth(embeddingSpread: spread).terms, ["embedding_std": spread.standardDeviation])
    }

    private let uniformTeacher = TaskHealth(teacher: TeacherDistribution(probabilities: Tensor(shape: [4, 8], repeating: 0.125)))
    private let healthyTeacher = TaskHealth(teacher: TeacherDistribution(probabilities: Tensor(
        shape: [2, 4], elements: [1, 0, 0, 0, 0, 0, 1, 0])))

    func testWarnsOnceAfterPatienceAndAgainAfterRecovery() {
        var monitor = CollapseMonitor(patience: 3)
        XCTAssertEqual(monitor.observe(["dino": healthyTeacher], step: 0), [])
        XCTAssertEqual(monitor.observe(["dino": uniformTeacher], step: 1), [])
        XCTAssertEqual(monitor.observe(["dino": uniformTeacher], step: 2), [])
        let warnings = monitor.observe(["dino": uniformTeacher], step: 3)
        XCTAssertEqual(warnings.map(\.indicator), [.uniformTeacher])
        XCTAssertEqual(warnings.first?.firstStep, 1)
        XCTAssertEqual(warnings.first?.metricsKey, "collapse/dino.uniform_teacher")
        XCTAssertEqual(monitor.ongoingCollapses, ["collapse/dino.uniform_teacher"])
        let text = warnings.first?.description ?? ""
        XCTAssertTrue(text.contains("for 3 steps") && text.contains("entropy 2.08 of log K = 2.08") && text.contains("--dino.teacher-temp"), text)
        XCTAssertFalse(text.contains("\n"), "one line")
        XCTAssertEqual(monitor.observe(["dino": uniformTeacher], step: 4), [], "once per stretch")
        XCTAssertEqual(monitor.observe(["dino": healthyTeacher], step: 5), [])
        XCTAssertEqual(monitor.ongoingCollapses, [])
        for step in 6...7 { XCTAssertEqual(monitor.observe(["dino": uniformTeacher], step: step), []) }
        XCTAssertEqual(monitor.observe(["dino": uniformTeacher], step: 8).map(\.firstStep), [6], "a new stretch warns again")
    }

    func testSinglePrototypeAndVanishingSpread() {
        var monitor = CollapseMonitor(patience: 1)
        let onePrototype = TaskHealth(teacher: TeacherDistribution(probabilities: Tensor(
            shape: [3, 1024], elements: (0..<3).flatMap { _ in [1] + [Float](repeating: 0, count: 1023) })))
        XCTAssertEqual(monitor.observe(["selfpatch": onePrototype], step: 0).map(\.indicator), [.singlePrototype])
        let point = TaskHealth(embeddingSpread: EmbeddingSpread(embeddings: Tensor(shape: [3, 2], elements: [1, 2, 2, 4, 3, 6])))
        XCTAssertEqual(monitor.observe(["dino": point], step: 0).map(\.indicator), [.vanishingSpread])
        let spread = TaskHealth(embeddingSpread: EmbeddingSpread(embeddings: Tensor(shape: [2, 2], elements: [3, 0, 0, 5])))
        var fresh = CollapseMonitor(patience: 1)
        XCTAssertEqual(fresh.observe(["dino": spread, "selfpatch": healthyTeacher], step: 0), [])
    }

    func testPatienceScalesWithTheRun() {
        XCTAssertEqual(CollapseMonitor.patience(forRunOf: 50), 10)
        XCTAssertEqual(CollapseMonitor.patience(forRunOf: 1000), 50)
        XCTAssertEqual(CollapseMonitor.patience(forRunOf: 100_000), 100)
    }
}
