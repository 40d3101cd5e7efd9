import SSLCore
import SSLTestSupport
import XCTest

/// Every deterministic augmentation against torchvision/PIL on the test image of
/// `tools/reference/make_augmentation_fixtures.py`. All of them implement PIL's own integer and
/// float arithmetic, so they must match byte for byte.
final class DataAugmentationFixtureTests: XCTestCase {
    private var fixtures: HDF5File!
    private var image: Image!

    override func setUpWithError() throws {
        fixtures = try Fixtures.open("augmentations.h5")
        image = try loadImage("image")
    }

    private func loadImage(_ path: String, index: Int? = nil) throws -> Image {
        var shape = try fixtures.shape(of: path)
        var bytes = try fixtures.readBytes(path)
        if let index {
            shape.removeFirst()
            let size = shape.reduce(1, *)
            bytes = Array(bytes[index * size..<(index + 1) * size])
        }
        return Image(width: shape[1], height: shape[0], pixels: bytes)
    }

    private func assertSame(
        _ actual: Image, _ expected: Image, _ message: String, tolerance: Int = 0,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(actual.width, expected.width, message, file: file, line: line)
        XCTAssertEqual(actual.height, expected.height, message, file: file, line: line)
        guard actual.pixels.count == expected.pixels.count else { return }
        var worst = 0, mismatches = 0
        for (a, e) in zip(actual.pixels, expected.pixels) {
            let difference = abs(Int(a) - Int(e))
            worst = max(worst, difference)
            if difference > 0 { mismatches += 1 }
        }
        XCTAssertLessThanOrEqual(
            worst, tolerance, "\(message): \(mismatches) bytes differ, by up to \(worst)", file: file, line: line)
    }

    func testResizedCropMatchesPILBothInterpolations() throws {
        for name in ["down", "up", "mixed"] {
            let box = try fixtures.readIntegers("resized_crop/\(name)/box")
            let size = try fixtures.readIntegers("resized_crop/\(name)/size")
            let region = PixelRegion(top: box[0], left: box[1], height: box[2], width: box[3])
            for interpolation in Interpolation.allCases {
                let actual = image.resized(region: region, width: size[1], height: size[0], interpolation: interpolation)
                let expected = try loadImage("resized_crop/\(name)/\(interpolation.rawValue)")
                assertSame(actual, expected, "\(name) \(interpolation)")
            }
        }
    }

    func testFlipMatchesPIL() throws {
        var flipped = image!
        flipped.flipHorizontally()
        assertSame(flipped, try loadImage("flip"), "flip")
    }

    func testColourAdjustmentsMatchPIL() throws {
        let adjustments: [(String, (inout Image, Double) -> Void)] = [
            ("brightness", { $0.adjustBrightness(Float($1)) }),
            ("contrast", { $0.adjustContrast(Float($1)) }),
            ("saturation", { $0.adjustSaturation(Float($1)) }),
            ("hue", { $0.adjustHue($1) }),
        ]
        for (name, adjust) in adjustments {
            for (index, factor) in try fixtures.readDoubles("\(name)/factors").enumerated() {
                var adjusted = image!
                adjust(&adjusted, factor)
                assertSame(adjusted, try loadImage("\(name)/outputs", index: index), "\(name) \(factor)")
            }
        }
    }

    func testGreyscaleAndSolarizeMatchPIL() throws {
        var grey = image!
        grey.convertToGreyscale()
        assertSame(grey, try loadImage("grayscale"), "greyscale")
        var solarized = image!
        solarized.solarize()
        assertSame(solarized, try loadImage("solarize"), "solarize")
    }

    /// PIL's GaussianBlur is three extended box-filter passes per direction; the Swift kernel is
    /// the same algorithm, so it matches exactly (not a true Gaussian, by design).
    func testGaussianBlurMatchesPILBoxApproximation() throws {
        for (index, radius) in try fixtures.readDoubles("blur/radii").enumerated() {
            var blurred = image!
            blurred.gaussianBlur(radius: Float(radius))
            assertSame(blurred, try loadImage("blur/outputs", index: index), "blur radius \(radius)")
        }
    }

    func testNormalizationMatchesToTensorAndNormalize() throws {
        let expected = try fixtures.readTensor("normalize")
        assertClose(ImageNormalization.imageNet.tensor(image), expected, absoluteTolerance: 0, "normalize")
    }
}
