import SSLCore
import XCTest

/// The Fashion-MNIST scenes: reproducible, labelled as drawn, on a textured background; and the
/// in-context retrieval probe that reads them.
final class EvalSceneTests: XCTestCase {
    func testScenesAreReproducibleFromSeedAndIndex() throws {
        let source = try FashionMNISTDataset(split: .test)
        let scenes = FashionMNISTScenes(source: source, canvasSize: 60, count: 20, seed: 5)
        let again = FashionMNISTScenes(source: source, canvasSize: 60, count: 20, seed: 5)
        XCTAssertEqual(scenes.count, 20)
        XCTAssertEqual(scenes.classNames.count, 11)
        XCTAssertNil(scenes.label(at: 3))
        for index in [0, 7, 19] {
            let scene = scenes.scene(at: index)
            XCTAssertEqual(scene, again.scene(at: index))
            XCTAssertEqual(scene.image, try scenes.image(at: index))
            XCTAssertEqual([scene.image.width, scene.image.height, scene.labels.count], [60, 60, 60 * 60])
        }
        XCTAssertNotEqual(scenes.scene(at: 0).image, scenes.scene(at: 1).image)
        let otherSeed = FashionMNISTScenes(source: source, canvasSize: 60, count: 20, seed: 6)
        XCTAssertNotEqual(otherSeed.scene(at: 0).image, scenes.scene(at: 0).image)
    }

    func testLabelsAgreeWithTheGarmentsDrawn() throws {
        let source = try FashionMNISTDataset(split: .test)
        let scenes = FashionMNISTScenes(source: source, canvasSize: 56, count: 12, seed: 1)
        for index in 0..<scenes.count {
            let scene = scenes.scene(at: index)
            let size = scenes.canvasSize
            XCTAssertTrue(FashionMNISTScenes.garmentCounts.contains(scene.garments.count))
            for garment in scene.garments {
                XCTAssertEqual(garment.garmentClass, source.label(at: garment.item))
                XCTAssertTrue((17...39).contains(garment.side), "\(garment.side)")
                XCTAssertTrue(garment.top >= 0 && garment.left >= 0 && garment.top + garment.side <= size && garment.left + garment.side <= size)
            }
            // The last garment is on top: its bright pixels carry its class and its tinted grey.
            let top = scene.garments.last!
            let picture = scenes.garmentPicture(top)
            var covered = 0
            for row in 0..<top.side {
                for column in 0..<top.side {
                    let grey = picture[column, row, 0]
                    guard grey > FashionMNISTScenes.foregroundThreshold else { continue }
                    covered += 1
                    let (y, x) = (top.top + row, top.left + column)
                    XCTAssertEqual(Int(scene.labels[y * size + x]), top.garmentClass + 1)
                    for channel in 0..<3 {
                        XCTAssertEqual(scene.image[x, y, channel], UInt8(Float(grey) * top.tint[channel]))
                    }
                }
            }
            XCTAssertGreaterThan(covered, 0)
            // A pixel outside every garment's square is background; a labelled one lies inside the
            // square of a garment of its class.
            for y in 0..<size {
                for x in 0..<size {
                    let inside = scene.garments.filter { (($0.top)..<($0.top + $0.side)).contains(y) && (($0.left)..<($0.left + $0.side)).contains(x) }
                    let label = Int(scene.labels[y * size + x])
                    if label == 0 { continue }
                    XCTAssertTrue(inside.contains { $0.garmentClass + 1 == label }, "scene \(index) pixel (\(y), \(x))")
                }
            }
            XCTAssertTrue(scene.labels.contains(0), "scene \(index) has background")
        }
    }

    func testBackgroundIsTexturedNotFlat() throws {
        let scenes = FashionMNISTScenes(source: try FashionMNISTDataset(split: .test), canvasSize: 56, count: 10, seed: 2)
        for index in 0..<scenes.count {
            let scene = scenes.scene(at: index)
            var values = Set<UInt8>(), smallest = UInt8.max, largest = UInt8.min
            for pixel in scene.labels.indices where scene.labels[pixel] == 0 {
                for channel in 0..<3 {
                    let value = scene.image.pixels[3 * pixel + channel]
                    values.insert(value)
                    smallest = min(smallest, value)
                    largest = max(largest, value)
                }
            }
            XCTAssertGreaterThan(values.count, 20, "scene \(index)")
            XCTAssertGreaterThan(Int(largest) - Int(smallest), 20, "scene \(index)")
        }
    }

    func testCanvasIsTheMultipleOfThePatchSizeFrom56() {
        XCTAssertEqual([4, 8, 14, 16, 5].map(FashionMNISTScenes.canvasSize(patchSize:)), [56, 56, 56, 64, 60])
    }

    func testSegmentationImagesAreTheNormalisedScenes() throws {
        let scenes = FashionMNISTScenes(source: try FashionMNISTDataset(split: .test), canvasSize: 56, count: 5, seed: 3)
        let images = SegmentationImages.scenes(scenes, count: 3)
        XCTAssertEqual(images.images.shape, [3, 3, 56, 56])
        XCTAssertEqual(images.labels.labels.count, 3 * 56 * 56)
        let second = scenes.scene(at: 1)
        XCTAssertEqual(Array(images.labels.labels[(56 * 56)..<(2 * 56 * 56)]), second.labels.map(Int.init))
        let expected = ImageNormalization.imageNet.tensor(second.image).elements
        XCTAssertEqual(Array(images.images.elements[(3 * 56 * 56)..<(6 * 56 * 56)]), expected)
    }

    // MARK: In-context retrieval

    /// Images of 8×8 pixels on a 4×4 grid of 2×2-pixel patches, each patch one class, and
    /// patch features equal to the one-hot label of their patch.
    private func oneHotPatches(images: Int, classes: Int, seed: UInt64) -> (PatchFeatures, PixelLabels) {
        var generator = RandomGenerator(seed: seed)
        let patchClasses = (0..<(images * 16)).map { _ in Int(generator.next() % UInt64(classes)) }
        let tokens = Tensor.zeros([images, 16, classes])
        for (patch, label) in patchClasses.enumerated() { tokens.storage.base[patch * classes + label] = 1 }
        var pixels = [Int](repeating: 0, count: images * 64)
        for image in 0..<images {
            for y in 0..<8 {
                for x in 0..<8 { pixels[image * 64 + y * 8 + x] = patchClasses[image * 16 + (y / 2) * 4 + x / 2] }
            }
        }
        return (PatchFeatures(tokens: tokens, gridHeight: 4, gridWidth: 4), PixelLabels(labels: pixels, imageCount: images, height: 8, width: 8))
    }

    func testRetrievalOnOneHotLabelFeaturesIsPerfect() {
        let (train, trainLabels) = oneHotPatches(images: 6, classes: 4, seed: 1)
        let (test, testLabels) = oneHotPatches(images: 3, classes: 4, seed: 2)
        let metrics = PatchNeighborProbe(classCount: 4, neighborCount: 5, upsampling: .nearest)
            .evaluate(train: train, trainLabels: trainLabels, test: test, testLabels: testLabels)
        XCTAssertEqual(metrics.meanIntersectionOverUnion, 1)
        XCTAssertEqual(metrics.pixelAccuracy, 1)
        XCTAssertEqual(metrics.pixelCount, 3 * 64)
    }

    func testRetrievalVotesAreSoftmaxWeightedSoftLabels() {
        // Memory: two 2×2-pixel images of one patch each; the first patch is 3/4 class 0, the
        // second all class 1. The query is the first patch's feature.
        let train = PatchFeatures(tokens: Tensor(shape: [2, 1, 2], elements: [1, 0, 0.6, 0.8]), gridHeight: 1, gridWidth: 1)
        let trainLabels = PixelLabels(labels: [0, 0, 0, 1, 1, 1, 1, 1], imageCount: 2, height: 2, width: 2)
        let test = PatchFeatures(tokens: Tensor(shape: [1, 1, 2], elements: [1, 0]), gridHeight: 1, gridWidth: 1)
        let probe = PatchNeighborProbe(classCount: 2, neighborCount: 2, temperature: 0.1)
        let (memory, softLabels) = probe.memory(train: train, trainLabels: trainLabels)
        XCTAssertEqual(memory.shape, [2, 2])
        XCTAssertEqual(softLabels, [0.75, 0.25, 0, 1])
        // Similarities 1 and 0.6: weights softmax([10, 6]).
        let first = 1 / (1 + Float(exp(-4.0)))
        let prediction = probe.predict(train: train, trainLabels: trainLabels, test: test)
        XCTAssertEqual(prediction[0], first * 0.75, accuracy: 1e-5)
        XCTAssertEqual(prediction[1], first * 0.25 + (1 - first), accuracy: 1e-5)
    }

    func testSoftLabelsAndBilinearUpsampling() {
        let labels = PixelLabels(labels: [1, 1, 0, 2, 1, 0, 2, 0, 3, 3, 9, 9, 3, 2, 9, 9], imageCount: 1, height: 4, width: 4)
        let distributions = labels.patchLabelDistributions(gridHeight: 2, gridWidth: 2, classCount: 4)
        XCTAssertEqual(Array(distributions[0..<4]), [0.25, 0.75, 0, 0])
        XCTAssertEqual(Array(distributions[4..<8]), [0.5, 0, 0.5, 0])
        XCTAssertEqual(Array(distributions[12..<16]), [0, 0, 0, 0], "ignored pixels only")
        // A 1×2 grid of scores (class 0 left, class 1 right) over one row of 4 pixels: bilinear
        // keeps the halves, and a 2×2 ramp moves the boundary by the weights.
        let row = PixelLabels(labels: [0, 0, 1, 1], imageCount: 1, height: 1, width: 4)
        let scores: [Float] = [1, 0, 0, 1]
        XCTAssertEqual(row.evaluate(patchScores: scores, gridHeight: 1, gridWidth: 2, classCount: 2, upsampling: .bilinear).pixelAccuracy, 1)
        let shifted = PixelLabels(labels: [0, 1, 1, 1], imageCount: 1, height: 1, width: 4)
        // Pixel 1 sits a quarter of the way from the left centre: 0.75·0.55 + 0.25·0 vs 0.75·0.45 + 0.25·1.
        let leaning: [Float] = [0.55, 0.45, 0, 1]
        XCTAssertEqual(shifted.evaluate(patchScores: leaning, gridHeight: 1, gridWidth: 2, classCount: 2, upsampling: .bilinear).pixelAccuracy, 1)
        XCTAssertEqual(shifted.evaluate(patchScores: leaning, gridHeight: 1, gridWidth: 2, classCount: 2, upsampling: .nearest).pixelAccuracy, 0.75)
    }
}
