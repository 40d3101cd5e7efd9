import SSLCore
import SSLTestSupport
import XCTest

/// The random parts of the augmentations, over many seeded draws.
final class DataAugmentationStatisticsTests: XCTestCase {
    func testRandomResizedCropAreaAndRatioRanges() {
        let crop = RandomResizedCrop(size: 96, scale: 0.25...1, interpolation: .bicubic)
        var generator = RandomGenerator(seed: 11)
        var fractions: [Double] = [], logRatios: [Double] = []
        for _ in 0..<4000 {
            let region = crop.region(width: 500, height: 375, generator: &generator)
            XCTAssertTrue(region.top >= 0 && region.left >= 0 && region.top + region.height <= 375 && region.left + region.width <= 500)
            fractions.append(Double(region.width * region.height) / (500 * 375))
            logRatios.append(log(Double(region.width) / Double(region.height)))
        }
        // Whole-pixel rounding moves the area and ratio slightly past the sampled ranges.
        XCTAssertGreaterThanOrEqual(fractions.min()!, 0.25 * 0.99)
        XCTAssertLessThanOrEqual(fractions.max()!, 1.0)
        XCTAssertLessThanOrEqual(logRatios.map(abs).max()!, log(4.0 / 3) + 0.01)
        // Draws that do not fit are retried, which favours wide crops of large areas here.
        XCTAssertGreaterThan(logRatios.reduce(0, +) / Double(logRatios.count), 0)
    }

    func testRandomResizedCropIsUniformInAreaAndLogRatioWhenEverythingFits() {
        // On a 400×400 image every local crop (area ≤ 0.25, ratio ≤ 4/3) fits the first time.
        let crop = RandomResizedCrop(size: 96, scale: 0.05...0.25, interpolation: .bicubic)
        var generator = RandomGenerator(seed: 12)
        var fractions: [Double] = [], logRatios: [Double] = []
        for _ in 0..<4000 {
            let region = crop.region(width: 400, height: 400, generator: &generator)
            fractions.append(Double(region.width * region.height) / 160_000)
            logRatios.append(log(Double(region.width) / Double(region.height)))
        }
        func share(_ values: [Double], below limit: Double) -> Double {
            Double(values.filter { $0 < limit }.count) / Double(values.count)
        }
        XCTAssertEqual(fractions.reduce(0, +) / 4000, 0.15, accuracy: 0.005)
        XCTAssertEqual(share(fractions, below: 0.10), 0.25, accuracy: 0.03)
        XCTAssertEqual(share(fractions, below: 0.20), 0.75, accuracy: 0.03)
        XCTAssertEqual(logRatios.reduce(0, +) / 4000, 0, accuracy: 0.01)
        XCTAssertEqual(share(logRatios, below: log(4.0 / 3) / 2), 0.75, accuracy: 0.03)
        XCTAssertGreaterThanOrEqual(fractions.min()!, 0.049)
        XCTAssertLessThanOrEqual(fractions.max()!, 0.252)
    }

    func testRandomResizedCropFallsBackToTheCentralCrop() {
        var generator = RandomGenerator(seed: 1)
        let crop = RandomResizedCrop(size: 8, scale: 0.9...1)
        XCTAssertEqual(crop.region(width: 1000, height: 10, generator: &generator), PixelRegion(top: 0, left: 493, height: 10, width: 13))
        XCTAssertEqual(crop.region(width: 10, height: 1000, generator: &generator), PixelRegion(top: 493, left: 0, height: 13, width: 10))
    }

    /// The fraction of `trials` 8×8 images that `augmentation` changes.
    private func changedShare(_ augmentation: any ImageAugmentation, trials: Int = 3000, seed: UInt64) -> Double {
        var generator = RandomGenerator(seed: seed)
        let pixels: [UInt8] = (0..<192).map { (index: Int) -> UInt8 in UInt8((index * 37 + index / 24 * 11) % 256) }
        let original = Image(width: 8, height: 8, pixels: pixels)
        var changed = 0
        for _ in 0..<trials {
            var image = original
            augmentation.apply(to: &image, generator: &generator)
            if image != original { changed += 1 }
        }
        return Double(changed) / Double(trials)
    }

    func testProbabilitiesOfTheRandomOperations() {
        XCTAssertEqual(changedShare(RandomHorizontalFlip(probability: 0.5), seed: 1), 0.5, accuracy: 0.03)
        XCTAssertEqual(changedShare(RandomGrayscale(probability: 0.2), seed: 2), 0.2, accuracy: 0.025)
        XCTAssertEqual(changedShare(RandomSolarization(probability: 0.2), seed: 3), 0.2, accuracy: 0.025)
        XCTAssertEqual(changedShare(RandomGaussianBlur(probability: 0.5), seed: 4), 0.5, accuracy: 0.03)
        XCTAssertEqual(changedShare(RandomGaussianBlur(probability: 1), seed: 5), 1, accuracy: 0.01)  // σ ≈ 0.1 may change nothing.
        let jitter = ColorJitter(probability: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1)
        XCTAssertEqual(changedShare(jitter, seed: 6), 0.8, accuracy: 0.03)
    }

    func testRandomBackgroundRedrawsTheDarkPixelsAndTintsTheRest() throws {
        XCTAssertEqual(changedShare(RandomBackground(probability: 0.3), seed: 9), 0.3, accuracy: 0.03)
        let original = try FashionMNISTDataset(split: .test).image(at: 0)
        var generator = RandomGenerator(seed: 10)
        var tints: Set<[Int]> = []
        for _ in 0..<20 {
            var image = original
            RandomBackground(probability: 1).apply(to: &image, generator: &generator)
            var background = Set<UInt8>(), factors: [[Float]] = [[], [], []]
            for pixel in 0..<(28 * 28) {
                let grey = original.pixels[3 * pixel]
                for channel in 0..<3 {
                    let value = image.pixels[3 * pixel + channel]
                    if grey <= RandomBackground.threshold {
                        background.insert(value)
                    } else {
                        factors[channel].append(Float(value) / Float(grey))
                    }
                }
            }
            XCTAssertGreaterThan(background.count, 10, "the background is textured, not flat")
            XCTAssertGreaterThan(background.max()!, 40, "the background is not black")
            for channel in 0..<3 {
                let (low, high) = (factors[channel].min()!, factors[channel].max()!)
                XCTAssertTrue(low >= 0.5 && high <= 1 && high - low < 0.05, "one tint per channel in 0.55…1: \(low)…\(high)")
            }
            tints.insert(factors.map { Int($0.max()! * 100) })
        }
        XCTAssertGreaterThan(tints.count, 15, "each redraw draws its own tint")
    }

    func testJitterFactorsAreUniformInTheirRanges() {
        // Brightness alone on a flat grey image: the output is trunc(100 × factor), factor ∈ [0.6, 1.4].
        let jitter = ColorJitter(probability: 1, brightness: 0.4, contrast: 0, saturation: 0, hue: 0)
        var generator = RandomGenerator(seed: 8)
        var values: [Int] = []
        for _ in 0..<3000 {
            var image = Image(width: 2, height: 2, repeating: 100)
            jitter.apply(to: &image, generator: &generator)
            values.append(Int(image.pixels[0]))
        }
        XCTAssertGreaterThanOrEqual(values.min()!, 60)
        XCTAssertLessThanOrEqual(values.max()!, 140)
        XCTAssertLessThan(values.min()!, 62)
        XCTAssertGreaterThan(values.max()!, 137)
        XCTAssertEqual(Double(values.reduce(0, +)) / 3000, 99.5, accuracy: 1)
    }

    func testViewRecipesMatchTheSpecificationTables() {
        let selfPatch = AugmentationRecipe(globalScale: 0.25...1, localScale: 0.05...0.25)
            .crops(for: ViewPlan(globalCount: 2, globalSize: 224, localCount: 8, localSize: 96))
        XCTAssertEqual(selfPatch.views.map(\.cropSize), [224, 224] + Array(repeating: 96, count: 8))
        XCTAssertEqual(selfPatch.views.map(\.scale), [0.25...1, 0.25...1] + Array(repeating: 0.05...0.25, count: 8))
        XCTAssertEqual(selfPatch.views.map(\.blurProbability), [1, 0.1] + Array(repeating: 0.5, count: 8))
        XCTAssertEqual(selfPatch.views.map(\.solarizeProbability), [0, 0.2] + Array(repeating: 0, count: 8))
        let dino = MultiCropRecipe.dino()
        XCTAssertEqual(dino.views.map(\.scale), [0.4...1, 0.4...1] + Array(repeating: 0.05...0.4, count: 8))
        XCTAssertTrue(dino.views.allSatisfy {
            $0.interpolation == .bicubic && !$0.flipLast && $0.jitterProbability == 0.8 && $0.greyscaleProbability == 0.2
                && [$0.brightness, $0.contrast, $0.saturation, $0.hue] == [0.4, 0.4, 0.2, 0.1] && $0.ratio == 0.75...(4.0 / 3)
                && $0.normalization == .imageNet
        })
        let moco = MultiCropRecipe.twoView()
        XCTAssertEqual(moco.views.map(\.cropSize), [224, 224])
        XCTAssertTrue(moco.views.allSatisfy { $0.interpolation == .bilinear && $0.flipLast && $0.scale == 0.08...1 })
        XCTAssertEqual(moco.views.map(\.blurProbability), [1, 0.1])
        XCTAssertEqual(moco.views.map(\.solarizeProbability), [0, 0.2])
        let small = AugmentationRecipe.twoView.crops(for: ViewPlan(globalCount: 2, globalSize: 32, localCount: 4, localSize: 16))
        XCTAssertEqual(small.views.map(\.cropSize), [32, 32, 16, 16, 16, 16])
        XCTAssertEqual(small.views.map(\.scale), Array(repeating: 0.08...1, count: 6))
        XCTAssertEqual(small.views[2].blurRadius.upperBound, 2.0 * 32 / 224, accuracy: 1e-12, "blur scales with the crop")
        // MoCo v3 flips last, DINO right after the crop.
        XCTAssertTrue(moco.views[0].augmentations.last is RandomHorizontalFlip)
        XCTAssertTrue(dino.views[0].augmentations[1] is RandomHorizontalFlip)
    }
}
