import SSLCore
import XCTest

/// SGD with momentum (PyTorch semantics) and the linear probe on separable features.
final class EvalLinearProbeTests: XCTestCase {
    func testSGDMomentumFollowsPyTorch() {
        let parameter = Tensor(shape: [2], elements: [1, 2])
        let untouched = Tensor(shape: [1], elements: [5])
        let optimizer = SGD(parameters: [("p", parameter), ("q", untouched)], learningRate: 0.1, momentum: 0.9)
        parameter.gradient = Tensor(shape: [2], elements: [0.5, -1])
        optimizer.step()
        // First step: buffer = gradient.
        XCTAssertEqual(parameter.elements[0], 0.95, accuracy: 1e-6)
        XCTAssertEqual(parameter.elements[1], 2.1, accuracy: 1e-6)
        parameter.gradient = Tensor(shape: [2], elements: [0.1, 0.2])
        optimizer.step()
        // buffer = 0.9 · [0.5, −1] + [0.1, 0.2] = [0.55, −0.7].
        XCTAssertEqual(optimizer.momentumBuffers["p"]!.elements[0], 0.55, accuracy: 1e-6)
        XCTAssertEqual(parameter.elements[0], 0.895, accuracy: 1e-6)
        XCTAssertEqual(parameter.elements[1], 2.17, accuracy: 1e-6)
        XCTAssertEqual(untouched.elements, [5], "a parameter without gradient is skipped")
        XCTAssertNil(optimizer.momentumBuffers["q"])
    }

    func testSGDWithoutMomentumIsPlainGradientDescent() {
        let parameter = Tensor(shape: [1], elements: [1])
        let optimizer = SGD(parameters: [("p", parameter)], learningRate: 0.5)
        parameter.gradient = Tensor(shape: [1], elements: [2])
        optimizer.step()
        optimizer.step()
        XCTAssertEqual(parameter.elements, [-1])
        XCTAssertTrue(optimizer.momentumBuffers.isEmpty)
    }

    func testCosineScheduleIsAnnealedPerEpoch() {
        let probe = LinearProbe(epochs: 4)
        XCTAssertEqual(probe.learningRate(0.2, atEpoch: 0), 0.2, accuracy: 1e-12)
        XCTAssertEqual(probe.learningRate(0.2, atEpoch: 2), 0.1, accuracy: 1e-12)
        XCTAssertEqual(probe.learningRate(0.2, atEpoch: 4), 0, accuracy: 1e-12)
    }

    func testProbeSeparatesClustersAndSweepsLearningRates() {
        let (train, trainLabels) = EvalSyntheticData.clusters(classCount: 4, perClass: 50, dimension: 12, seed: 7)
        let (validation, validationLabels) = EvalSyntheticData.clusters(classCount: 4, perClass: 25, dimension: 12, seed: 8)
        let probe = LinearProbe(epochs: 10, batchSize: 32, learningRates: [0.0001, 0.1])
        let result = probe.fit(
            trainFeatures: train, trainLabels: trainLabels, validationFeatures: validation,
            validationLabels: validationLabels, classCount: 4)
        XCTAssertEqual(result.sweep.map(\.learningRate), [0.0001, 0.1])
        XCTAssertEqual(result.learningRate, 0.1)
        XCTAssertGreaterThanOrEqual(result.top1, 0.99)
        XCTAssertLessThan(result.sweep[0].top1, result.top1)
        XCTAssertEqual(result.classifier.accuracy(validation, labels: validationLabels), result.top1)
    }

    func testTrainingIsSeededAndLossDecreases() {
        let (train, labels) = EvalSyntheticData.clusters(classCount: 3, perClass: 20, dimension: 6, seed: 9)
        let probe = LinearProbe(epochs: 5, batchSize: 16, seed: 42)
        var losses: [Double] = []
        let first = probe.train(features: train, labels: labels, classCount: 3, learningRate: 0.1) { losses.append($1) }
        let second = probe.train(features: train, labels: labels, classCount: 3, learningRate: 0.1)
        XCTAssertEqual(first.weight.elements, second.weight.elements)
        XCTAssertEqual(first.bias.elements, second.bias.elements)
        XCTAssertEqual(losses.count, 5)
        XCTAssertLessThan(losses.last!, losses.first!)
    }
}
