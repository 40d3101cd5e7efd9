import SSLCore
import XCTest

/// Segmentation scores against hand-computed confusion matrices, the patch/pixel mapping and
/// both dense probes on separable patch tokens.
final class EvalSegmentationTests: XCTestCase {
    func testScoresOfAHandComputedConfusionMatrix() {
        var metrics = SegmentationMetrics(classCount: 3)
        metrics.accumulate(predictions: [0, 1, 1, 1, 2, 0, 0, 2], labels: [0, 0, 1, 1, 2, 2, 0, 1])
        XCTAssertEqual(metrics.confusion, [2, 1, 0, 0, 2, 1, 1, 0, 1])
        // IoU: class 0 2/(3+3−2), class 1 2/(3+3−2), class 2 1/(2+2−1).
        let iou = metrics.classIntersectionOverUnion
        XCTAssertEqual(iou[0]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(iou[1]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(iou[2]!, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(metrics.meanIntersectionOverUnion, 4.0 / 9, accuracy: 1e-12)
        XCTAssertEqual(metrics.pixelAccuracy, 5.0 / 8, accuracy: 1e-12)
        XCTAssertEqual(metrics, SegmentationMetrics(confusion: [[2, 1, 0], [0, 2, 1], [1, 0, 1]]))
    }

    func testAbsentClassesAreLeftOutOfTheMeanAndIgnoredLabelsSkipped() {
        // Rows truth, columns prediction; class 3 never occurs nor is predicted, class 2 is only
        // predicted (IoU 0, counted).
        let metrics = SegmentationMetrics(confusion: [[5, 0, 1, 0], [0, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
        XCTAssertNil(metrics.classIntersectionOverUnion[3])
        XCTAssertEqual(metrics.classIntersectionOverUnion[2], 0)
        XCTAssertEqual(metrics.meanIntersectionOverUnion, (5.0 / 6 + 1 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(metrics.pixelAccuracy, 8.0 / 9, accuracy: 1e-12)
        var merged = SegmentationMetrics(classCount: 4)
        merged.accumulate(predictions: [0, 1, 2], labels: [0, 255, -1])
        XCTAssertEqual(merged.pixelCount, 1)
        merged.merge(metrics)
        XCTAssertEqual(merged.pixelCount, 10)
        XCTAssertEqual(metrics.metrics(prefix: "dense")["dense/mIoU"], metrics.meanIntersectionOverUnion)
    }

    func testPatchMajorityLabelsAndNearestUpsampling() {
        // One 4×4 image, 2×2 patches of 2×2 pixels.
        let labels = PixelLabels(
            labels: [
                1, 1, 0, 2,
                1, 0, 2, 0,
                3, 3, 9, 9,
                3, 2, 9, 9,
            ], imageCount: 1, height: 4, width: 4)
        // Top-right patch: 0, 2, 2, 0 — a tie, the lower class wins; bottom-right: all ignored.
        XCTAssertEqual(labels.patchMajorityLabels(gridHeight: 2, gridWidth: 2, classCount: 4), [1, 0, 3, -1])
        XCTAssertEqual(
            labels.upsampling(patchPredictions: [1, 0, 3, 2], gridHeight: 2, gridWidth: 2),
            [1, 1, 0, 0, 1, 1, 0, 0, 3, 3, 2, 2, 3, 3, 2, 2])
        let metrics = labels.evaluate(patchPredictions: [1, 0, 3, 2], gridHeight: 2, gridWidth: 2, classCount: 4)
        XCTAssertEqual(metrics.pixelCount, 12)
        XCTAssertEqual(metrics.pixelAccuracy, 8.0 / 12, accuracy: 1e-12)
    }

    /// Images of 8×8 pixels on a 4×4 grid whose patches are each filled with one class, and
    /// tokens clustered by that class.
    private func patchData(images: Int, seed: UInt64) -> (PatchFeatures, PixelLabels) {
        let classes = 3, grid = 4, dimension = 8
        var generator = RandomGenerator(seed: seed)
        var patchClasses: [Int] = []
        for _ in 0..<(images * grid * grid) { patchClasses.append(Int(generator.next() % UInt64(classes))) }
        let tokens = Tensor.randomNormal([images, grid * grid, dimension], standardDeviation: 0.3, generator: &generator)
        for (index, label) in patchClasses.enumerated() { tokens.storage.base[index * dimension + label] += 4 }
        var pixels = [Int](repeating: 0, count: images * 64)
        for image in 0..<images {
            for y in 0..<8 {
                for x in 0..<8 { pixels[image * 64 + y * 8 + x] = patchClasses[image * 16 + (y / 2) * 4 + x / 2] }
            }
        }
        return (
            PatchFeatures(tokens: tokens, gridHeight: grid, gridWidth: grid),
            PixelLabels(labels: pixels, imageCount: images, height: 8, width: 8)
        )
    }

    func testDenseLinearProbeSegmentsSeparablePatches() {
        let (train, trainLabels) = patchData(images: 12, seed: 10)
        let (test, testLabels) = patchData(images: 6, seed: 11)
        let probe = DenseLinearProbe(classCount: 3, probe: LinearProbe(epochs: 8, batchSize: 32, learningRates: [0.1]))
        let result = probe.fit(train: train, trainLabels: trainLabels, validation: test, validationLabels: testLabels)
        XCTAssertEqual(result.learningRate, 0.1)
        XCTAssertGreaterThanOrEqual(result.metrics.meanIntersectionOverUnion, 0.99)
        XCTAssertGreaterThanOrEqual(result.metrics.pixelAccuracy, 0.99)
        XCTAssertEqual(result.metrics.pixelCount, 6 * 64)
    }

    func testPatchNeighbourProbeSegmentsSeparablePatches() {
        let (train, trainLabels) = patchData(images: 12, seed: 12)
        let (test, testLabels) = patchData(images: 6, seed: 13)
        let metrics = PatchNeighborProbe(classCount: 3, neighborCount: 5, temperature: 0.07, upsampling: .nearest)
            .evaluate(train: train, trainLabels: trainLabels, test: test, testLabels: testLabels)
        XCTAssertEqual(metrics.meanIntersectionOverUnion, 1)
        XCTAssertEqual(metrics.pixelAccuracy, 1)
    }
}
