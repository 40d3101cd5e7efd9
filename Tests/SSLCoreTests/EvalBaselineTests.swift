import Foundation
import SSLCore
import SSLTestSupport
import XCTest

/// The baselines beside every figure (raw pixels through the same probes), the feature
/// read-outs, and the probe table.
final class EvalBaselineTests: XCTestCase {
    private func labelledImages(count: Int, side: Int, seed: UInt64) -> EvaluationImages {
        var generator = RandomGenerator(seed: seed)
        let images = Tensor.randomNormal([count, 3, side, side], generator: &generator)
        // Shift each image by its class so that pixels carry some signal.
        let labels = (0..<count).map { $0 % 3 }
        for (index, label) in labels.enumerated() {
            for offset in 0..<(3 * side * side) where offset % 7 == label { images.storage.base[index * 3 * side * side + offset] += 2 }
        }
        return EvaluationImages(images: images, labels: labels)
    }

    func testPixelKNearestNeighboursEqualThoseOnFlattenedNormalisedImages() {
        let train = labelledImages(count: 40, side: 8, seed: 1), test = labelledImages(count: 15, side: 8, seed: 2)
        var suite = EvaluationSuite()
        suite.classificationTrain = train
        suite.classificationTest = test
        suite.classCount = 3
        suite.neighborCounts = [1, 5, 10]
        let metrics = suite.evaluate(PixelFeatureSource(patchSize: 4), prefix: "pixels")
        // The same classifier on the images flattened element by element.
        func flattened(_ images: Tensor) -> Tensor {
            let values = images.elements
            return Tensor(shape: [images.shape[0], values.count / images.shape[0]], elements: values)
        }
        let direct = KNearestNeighborClassifier(classCount: 3, neighborCounts: [1, 5, 10]).evaluate(
            trainFeatures: flattened(train.images), trainLabels: train.labels, testFeatures: flattened(test.images), testLabels: test.labels)
        XCTAssertEqual(Set(metrics.keys), Set(direct.metrics(prefix: "pixels/knn").keys))
        for (key, value) in direct.metrics(prefix: "pixels/knn") { XCTAssertEqual(metrics[key], value, key) }
        XCTAssertGreaterThan(metrics["pixels/knn/top1@5"]!, 0.5, "the pixels carry the class")
    }

    func testSuiteReportsEachStageWhenAskedTo() {
        var suite = EvaluationSuite()
        suite.classificationTrain = labelledImages(count: 40, side: 8, seed: 1)
        suite.classificationTest = labelledImages(count: 15, side: 8, seed: 2)
        suite.classCount = 3
        suite.includeLinearProbes = true
        var output = "", now = 0.0
        suite.progress = ProbeProgress(style: .lines, write: { output += $0 }, clock: { now += 0.25; return now })
        _ = suite.evaluate(PixelFeatureSource(patchSize: 4), prefix: "pixels")
        let lines = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.hasSuffix(" s") && !$0.contains("step") }, [
            "pixels: features of 40 train images: 0.2 s", "pixels: features of 15 test images: 0.2 s", "pixels: k-NN: 0.2 s",
        ])
        // The linear probe's 4 learning rates × 30 epochs of 40 rows, a quarter second each: its
        // reporter's lines, one after 30 s and one at the end, with the loss.
        let epochs = lines.filter { $0.hasPrefix("pixels: linear probe step ") }
        XCTAssertEqual(epochs.count, 2, output)
        XCTAssertTrue(epochs.last!.hasPrefix("pixels: linear probe step 120/120 (100.0%) 158.7 img/s ETA 0:00:00"), epochs.last!)
        XCTAssertTrue(epochs.last!.contains(" loss "), epochs.last!)
        // Without progress the suite is quiet and its figures are the same.
        output = ""
        suite.progress = nil
        _ = suite.evaluate(PixelFeatureSource(patchSize: 4), prefix: "pixels")
        XCTAssertEqual(output, "")
    }

    func testProbeProgressOnATerminalEndsEachStageOnOneLine() {
        var output = "", now = 0.0
        let progress = ProbeProgress(style: .bar, write: { output += $0 }, clock: { now += 1; return now })
        progress.stage("trained: k-NN") { _ in }
        progress.stage("trained: features", steps: 2) { reporter in
            reporter?.update(step: 1, images: 64)
            reporter?.update(step: 2, images: 128)
        }
        XCTAssertEqual(output.components(separatedBy: "\n").count - 1, 2, "a line per stage: \(output.debugDescription)")
        XCTAssertTrue(output.hasPrefix("\r\u{1B}[2Ktrained: k-NN…\r\u{1B}[2Ktrained: k-NN: 1.0 s\n"), output.debugDescription)
        XCTAssertTrue(output.contains("trained: features [############------------] 1/2 50.0%"), output.debugDescription)
        XCTAssertTrue(output.hasSuffix("\r\u{1B}[2Ktrained: features: 3.0 s\n"), output.debugDescription)
    }

    func testPixelPatchFeaturesAreEachPatchsPixels() {
        var generator = RandomGenerator(seed: 3)
        let images = Tensor.randomNormal([2, 3, 8, 12], generator: &generator)
        let patches = PixelFeatureSource(patchSize: 4).patchFeatures(images)
        XCTAssertEqual([patches.gridHeight, patches.gridWidth], [2, 3])
        XCTAssertEqual(patches.tokens.shape, [2, 6, 48])
        let rows = patches.rows.elements, pixels = images.elements
        // Image 1, patch (1, 2): every value of its 4×4×3 pixels, and nothing else.
        let row = 1 * 6 + 1 * 3 + 2
        var expected: [Float] = []
        for channel in 0..<3 {
            for y in 4..<8 {
                for x in 8..<12 { expected.append(pixels[((1 * 3 + channel) * 8 + y) * 12 + x]) }
            }
        }
        XCTAssertEqual(Array(rows[(row * 48)..<((row + 1) * 48)]), expected)
    }

    func testSuiteProbesScenesWithEveryDenseProbe() throws {
        let train = try FashionMNISTDataset(split: .train), test = try FashionMNISTDataset(split: .test)
        var suite = EvaluationSuite()
        suite.segmentationTrain = SegmentationImages.scenes(FashionMNISTScenes(source: train, seed: 0), count: 6)
        suite.segmentationTest = SegmentationImages.scenes(FashionMNISTScenes(source: test, seed: 1), count: 3)
        suite.denseLinearProbe = DenseLinearProbe(classCount: 11, probe: LinearProbe(epochs: 2, learningRates: [0.1]))
        let metrics = suite.evaluate(PixelFeatureSource(patchSize: 4), prefix: "pixels")
        XCTAssertEqual(
            Set(metrics.keys),
            ["pixels/dense_retrieval/mIoU", "pixels/dense_retrieval/pixel_accuracy", "pixels/dense_linear/mIoU", "pixels/dense_linear/pixel_accuracy"])
        for value in metrics.values { XCTAssertTrue((0...1).contains(value)) }
        XCTAssertEqual(
            suite.denseProbeDescription(patchSize: 4),
            "6 train / 3 test scenes of 56 px; dense_retrieval: memory of 1176 patches, k = 30, softmax temperature 0.02, "
                + "bilinear upsampling; dense_linear: 2 epochs, learning rates 0.1")
    }

    // MARK: Read-outs

    private func backbone(depth: Int, classToken: Bool = true) -> VisionTransformer {
        VisionTransformer(
            VisionTransformerConfiguration(embedDimension: 8, depth: depth, heads: 2, patchSize: 4, imageSize: 8, classToken: classToken),
            seed: 7)
    }

    func testReadOutsHaveTheirWidthsAndLastFourAreThePerBlockClassTokens() {
        let network = backbone(depth: 5)
        var generator = RandomGenerator(seed: 8)
        let images = Tensor.randomNormal([3, 3, 8, 8], generator: &generator)
        var features: [FeatureReadout: Tensor] = [:]
        for readout in FeatureReadout.allCases {
            features[readout] = FeatureNetwork(backbone: network).extractFeatures(images, batchSize: 2, readout: readout).images
            XCTAssertEqual(features[readout]!.shape, [3, readout.dimension(for: network.configuration)], readout.rawValue)
        }
        XCTAssertEqual(FeatureReadout.lastFourClassTokens.dimension(for: network.configuration), 32)
        let pass = GradientMode.withoutGradient { network.features(images) }
        assertClose(features[.classToken]!, pass.classToken!, absoluteTolerance: 1e-6, "class")
        assertClose(features[.meanPatch]!, pass.outputPatches.mean(axes: [1]), absoluteTolerance: 1e-6, "mean-patch")
        assertClose(
            features[.classAndMeanPatch]!, Tensor.concatenate([pass.classToken!, pass.outputPatches.mean(axes: [1])], axis: 1),
            absoluteTolerance: 1e-6, "class+mean-patch")
        // DINO's get_intermediate_layers(x, 4), step by step: the blocks one after the other,
        // the final norm on each of the last four outputs, their class rows side by side.
        let expected: Tensor = GradientMode.withoutGradient {
            network.setTraining(false)
            defer { network.setTraining(true) }
            var tokens = Tensor.concatenate(
                [network.classToken! + Tensor.zeros([3, 1, 8]), network.patchEmbed(images)], axis: 1)
            tokens = tokens + network.positionEmbedding(height: 2, width: 2)
            var classTokens: [Tensor] = []
            for (index, block) in network.blocks.enumerated() {
                tokens = block(tokens, generator: &network.generator)
                if index >= 1 { classTokens.append(network.norm!(tokens).sliced(0..<1, axis: 1).reshaped([3, 8])) }
            }
            return Tensor.concatenate(classTokens, axis: 1)
        }
        assertClose(features[.lastFourClassTokens]!, expected, absoluteTolerance: 1e-5, "last4-class")
        assertClose(features[.lastFourClassTokens]!.sliced(24..<32, axis: 1), pass.classToken!, absoluteTolerance: 1e-6, "the last block's")
    }

    func testReadOutsThatApplyToEachBackbone() {
        let withClassToken = backbone(depth: 4).configuration
        XCTAssertEqual(FeatureReadout.available(for: withClassToken, hasImageEmbedding: false), FeatureReadout.allCases)
        let shallow = backbone(depth: 2).configuration
        XCTAssertEqual(FeatureReadout.available(for: shallow, hasImageEmbedding: false), [.classToken, .meanPatch, .classAndMeanPatch])
        XCTAssertEqual(
            FeatureReadout.lastFourClassTokens.unavailability(for: shallow, hasImageEmbedding: false),
            "needs 4 blocks, and this backbone has 2")
        let noClassToken = backbone(depth: 4, classToken: false).configuration
        XCTAssertEqual(FeatureReadout.available(for: noClassToken, hasImageEmbedding: false), [.meanPatch])
        XCTAssertEqual(FeatureReadout.available(for: noClassToken, hasImageEmbedding: true), [.classToken, .meanPatch, .classAndMeanPatch])
        XCTAssertEqual(FeatureReadout(rawValue: "class+mean-patch"), .classAndMeanPatch)
        XCTAssertEqual(FeatureReadout.allCases.map(\.rawValue), ["class", "mean-patch", "class+mean-patch", "last4-class"])
    }

    // MARK: The probe table

    func testProbeTableRowsAreInNaturalOrderWithOneColumnPerSource() {
        var metrics: [String: Double] = ["trained/linear/top1": 0.5, "online/knn/top1@20": 0.9]
        for k in [10, 20, 100, 200] {
            for top in [1, 5] {
                metrics["trained/knn/top\(top)@\(k)"] = 0.6
                metrics["random/knn/top\(top)@\(k)"] = 0.4
                metrics["pixels/knn/top\(top)@\(k)"] = 0.3
            }
        }
        metrics["pixels/dense_retrieval/mIoU"] = 0.25
        let table = SummaryTable.probes(metrics, columns: ["trained", "random", "pixels"])
        XCTAssertEqual(table.header, ["probe", "trained", "random", "pixels"])
        XCTAssertEqual(table.rows.map(\.[0]), [
            "dense_retrieval/mIoU",
            "knn/top1@10", "knn/top1@20", "knn/top1@100", "knn/top1@200",
            "knn/top5@10", "knn/top5@20", "knn/top5@100", "knn/top5@200",
            "linear/top1",
        ])
        XCTAssertEqual(table.rows[0], ["dense_retrieval/mIoU", "–", "–", "25.00%"])
        XCTAssertEqual(table.rows[2], ["knn/top1@20", "60.00%", "40.00%", "30.00%"])
        let lines = table.render().split(separator: "\n")
        XCTAssertEqual(lines.count, 12)
        XCTAssertTrue(lines[0].hasPrefix("probe") && lines[0].hasSuffix("pixels"), String(lines[0]))
    }

    func testReportShowsASingleRunsProbesWithTheirBaselines() throws {
        let folder = NSTemporaryDirectory() + "eval-baseline-report-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let report = try RunReport(folder: folder)
        try report.writeSummary(RunSummary(
            name: "run", metrics: ["trained/knn/top1@20": 0.6, "random/knn/top1@20": 0.4, "pixels/knn/top1@20": 0.7, "loss": 2],
            details: ["preset": "small"]))
        let page = try String(contentsOfFile: try report.writeReport(), encoding: .utf8)
        XCTAssertTrue(page.contains(
            "<thead><tr><th scope=\"col\">probe</th><th scope=\"col\">trained</th><th scope=\"col\">random</th><th scope=\"col\">pixels</th></tr></thead>"),
            page)
        XCTAssertTrue(page.contains(
            "<tr><th scope=\"row\">knn/top1@20</th><td class=\"number\">60.00%</td><td class=\"number\">40.00%</td>"
                + "<td class=\"number best\" title=\"best of the row\"><strong>70.00%</strong></td></tr>"))
        XCTAssertFalse(page.contains("trained/knn/top1@20"), "probe figures appear once, in the probe table")
        XCTAssertTrue(page.contains("<td>loss</td>"))
    }

    func testNaturalOrderComparesDigitRunsAsNumbers() {
        let names = ["a10", "a9", "a100", "b1", "a", "a09x", "a9y"]
        XCTAssertEqual(names.sorted(by: SummaryTable.naturalOrder), ["a", "a9", "a09x", "a9y", "a10", "a100", "b1"])
        XCTAssertFalse(SummaryTable.naturalOrder("x1", "x1"))
    }
}
