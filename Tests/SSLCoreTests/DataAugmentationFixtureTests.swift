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

/// The table-driven hue rotation against a line-by-line transcription of PIL's `rgb2hsv_row` and
/// `hsv2rgb` (`Convert.c`) on a grid of colours, beyond the fixture image's.
final class DataHueRotationTests: XCTestCase {
    private static func pilHSV(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (UInt8, UInt8, UInt8) {
        let maxc = max(r, g, b), minc = min(r, g, b)
        if maxc == minc { return (0, 0, maxc) }
        let cr = Float(maxc - minc), s = cr / Float(maxc)
        let rc = Float(maxc - r) / cr, gc = Float(maxc - g) / cr, bc = Float(maxc - b) / cr
        var h: Float
        if r == maxc { h = bc - gc } else if g == maxc { h = Float(2.0 + Double(rc) - Double(bc)) } else { h = Float(4.0 + Double(gc) - Double(rc)) }
        h = Float(fmod(Double(h) / 6.0 + 1.0, 1.0))
        return (UInt8(min(max(Int(Double(h) * 255.0), 0), 255)), UInt8(min(max(Int(Double(s) * 255.0), 0), 255)), maxc)
    }

    private static func pilRGB(_ h: UInt8, _ s: UInt8, _ v: UInt8) -> [UInt8] {
        if s == 0 { return [v, v, v] }
        let i = Int(floor(Double(Float(h)) * 6.0 / 255.0))
        let f = Float(Double(Float(h)) * 6.0 / 255.0 - Double(Float(i)))
        let fs = Float(Double(Float(s)) / 255.0)
        func clip(_ x: Double) -> UInt8 { UInt8(min(max(Int(round(x)), 0), 255)) }
        let p = clip(Double(Float(v)) * (1.0 - Double(fs)))
        let q = clip(Double(Float(v)) * (1.0 - Double(fs * f)))
        let t = clip(Double(Float(v)) * (1.0 - Double(fs) * (1.0 - Double(f))))
        switch i % 6 {
        case 0: return [v, t, p]
        case 1: return [q, v, p]
        case 2: return [p, v, t]
        case 3: return [p, q, v]
        case 4: return [t, p, v]
        default: return [v, p, q]
        }
    }

    func testHueRotationMatchesPILTranscriptionOnAColourGrid() {
        let levels = Array(stride(from: 0, through: 255, by: 5)) + [254]
        var pixels: [UInt8] = []
        for r in levels { for g in levels { for b in levels { pixels += [UInt8(r), UInt8(g), UInt8(b)] } } }
        let image = Image(width: pixels.count / 3, height: 1, pixels: pixels)
        for factor in [-0.5, -0.13, 0.02, 0.37] {
            var rotated = image
            rotated.adjustHue(factor)
            let shift = UInt8(truncatingIfNeeded: Int32(factor * 255))
            for pixel in 0..<image.width {
                let (h, s, v) = Self.pilHSV(pixels[3 * pixel], pixels[3 * pixel + 1], pixels[3 * pixel + 2])
                let expected = Self.pilRGB(h &+ shift, s, v)
                if Array(rotated.pixels[3 * pixel..<3 * pixel + 3]) != expected {
                    XCTFail("factor \(factor), colour \(pixels[3 * pixel..<3 * pixel + 3]): \(rotated.pixels[3 * pixel..<3 * pixel + 3]) ≠ \(expected)")
                    return
                }
            }
        }
    }
}
