import Foundation
import SSLCore
import XCTest

/// The copy-paste augmentation: what it draws, where its geometry says the pasted view lies, and
/// that it changes nothing when off.
final class RandomPasteTests: XCTestCase {
    /// A light garment on black: a disc of `size` pixels whose grey rises from its left to its
    /// right edge (so that a mirror or shift shows), dark around it.
    private static func garment(size: Int, brightness: Int = 255) -> Image {
        var pixels: [UInt8] = []
        let centre = Double(size - 1) / 2
        for row in 0..<size {
            for column in 0..<size {
                let distance = ((Double(row) - centre) * (Double(row) - centre) + (Double(column) - centre) * (Double(column) - centre)).squareRoot()
                let grey = distance < 0.42 * Double(size) ? UInt8(40 + (brightness - 40) * column / size) : 0
                pixels += [grey, grey, grey]
            }
        }
        return Image(width: size, height: size, pixels: pixels)
    }

    /// Distractors: garments of different brightness.
    private let distractors = Garments(images: [120, 180, 255].map { RandomPasteTests.garment(size: 28, brightness: $0) })

    func testThePastedSquareShowsTheResizedTintedViewWhereItIsForeground() {
        let paste = RandomPaste(probability: 1, distractors: distractors)
        let view = Self.garment(size: 56)
        var generator = RandomGenerator(seed: 11)
        var copy = generator
        _ = copy.nextUniformDouble()
        let layout = paste.layout(canvasSize: 56, generator: &copy)
        var canvas = view, geometry = CropGeometry.wholeImage
        paste.apply(to: &canvas, geometry: &geometry, generator: &generator)

        XCTAssertEqual(canvas.width, 56)
        XCTAssertTrue(RandomPaste.distractorCounts.contains(layout.distractors.count))
        let placement = layout.view
        XCTAssertTrue((17...39).contains(placement.side), "0.6…1.4 × 28 pixels, got \(placement.side)")
        let resized = view.resized(
            region: PixelRegion(top: 0, left: 0, height: 56, width: 56), width: placement.side, height: placement.side,
            interpolation: .bilinear)
        var foreground = 0
        for row in 0..<placement.side {
            for column in 0..<placement.side where resized[column, row, 0] > FashionMNISTScenes.foregroundThreshold {
                foreground += 1
                for channel in 0..<3 {
                    XCTAssertEqual(
                        canvas[placement.left + column, placement.top + row, channel],
                        UInt8(Float(resized[column, row, channel]) * placement.tint[channel]),
                        "pixel (\(column), \(row)), channel \(channel)")
                }
            }
        }
        XCTAssertGreaterThan(foreground, placement.side * placement.side / 3)
        // Nothing of the canvas is left black: the background is the scenes' texture.
        XCTAssertFalse(stride(from: 0, to: canvas.pixels.count, by: 3).contains { canvas.pixels[$0...($0 + 2)].allSatisfy { $0 == 0 } })
        XCTAssertEqual(geometry.pastedBox, SourceBox(left: 0, top: 0, right: 1, bottom: 1))
    }

    /// The canvas's picture map: each pixel shows the last picture drawn there with its
    /// foreground (the view over the distractors, in drawing order), else the background; a flip
    /// after the paste mirrors the map with the canvas.
    func testThePictureMapSaysWhatEachPixelShows() throws {
        let paste = RandomPaste(probability: 1, distractors: distractors)
        var checked = Set<CanvasPictures.Picture>()
        for seed in 0..<6 {
            var generator = RandomGenerator(seed: UInt64(seed))
            var copy = generator
            _ = copy.nextUniformDouble()
            let layout = paste.layout(canvasSize: 56, generator: &copy)
            let view = Self.garment(size: 56)
            var canvas = view, geometry = CropGeometry.wholeImage
            paste.apply(to: &canvas, geometry: &geometry, generator: &generator)
            let pictures = try XCTUnwrap(geometry.canvasPictures)

            var expected = [CanvasPictures.Picture](repeating: .background, count: 56 * 56)
            let drawn = layout.distractors.map { (try! distractors.image(at: $0.item), CanvasPictures.Picture.distractor($0.item), $0.placement) }
                + [(view, .view, layout.view)]
            for (picture, shown, placement) in drawn {
                let resized = picture.resized(
                    region: PixelRegion(top: 0, left: 0, height: picture.height, width: picture.width), width: placement.side,
                    height: placement.side, interpolation: .bilinear)
                for row in 0..<placement.side {
                    for column in 0..<placement.side where resized[column, row, 0] > FashionMNISTScenes.foregroundThreshold {
                        expected[(placement.top + row) * 56 + placement.left + column] = shown
                    }
                }
            }
            for row in 0..<56 {
                for column in 0..<56 {
                    XCTAssertEqual(pictures[column, row], expected[row * 56 + column], "seed \(seed), pixel (\(column), \(row))")
                }
            }
            checked.formUnion(expected)

            var mirrored = canvas, mirroredGeometry = geometry
            var flipGenerator = RandomGenerator(seed: 1)
            RandomHorizontalFlip(probability: 1).apply(to: &mirrored, geometry: &mirroredGeometry, generator: &flipGenerator)
            let mirroredPictures = try XCTUnwrap(mirroredGeometry.canvasPictures)
            for row in 0..<56 {
                for column in 0..<56 { XCTAssertEqual(mirroredPictures[column, row], pictures[55 - column, row]) }
            }
            XCTAssertEqual(mirroredPictures.picture(x: 0.99, y: 0.5), pictures[0, 28])
        }
        XCTAssertTrue(checked.contains(.view) && checked.contains(.background) && checked.contains { $0 != .view && $0 != .background })
        // A crop of a pasted canvas cannot say what its pixels show any more.
        var geometry = CropGeometry.wholeImage.pasted(top: 0, left: 0, side: 28, canvasSize: 56)
        geometry.canvasPictures = CanvasPictures(side: 56)
        XCTAssertNil(geometry.cropped(to: PixelRegion(top: 0, left: 0, height: 28, width: 28), width: 56, height: 56).canvasPictures)
    }

    func testTheGeometryMapsThePastedSquareOntoTheViewsSource() throws {
        let paste = RandomPaste(probability: 1, distractors: distractors)
        for (seed, crop) in [(3, CropGeometry.wholeImage), (4, CropGeometry(left: 0.2, top: 0.1, right: 0.6, bottom: 0.7, isFlipped: true))] {
            var generator = RandomGenerator(seed: UInt64(seed))
            var copy = generator
            _ = copy.nextUniformDouble()
            let square = paste.layout(canvasSize: 56, generator: &copy).view
            var canvas = Self.garment(size: 56), geometry = crop
            paste.apply(to: &canvas, geometry: &geometry, generator: &generator)

            func canvasPoint(_ x: Double, _ y: Double) -> (x: Double, y: Double) {
                (Double(square.left) / 56 + x * Double(square.side) / 56, Double(square.top) / 56 + y * Double(square.side) / 56)
            }
            // The square's centre shows the source's centre of the crop; its corners the crop's corners.
            let centre = canvasPoint(0.5, 0.5)
            let source = geometry.sourcePoint(x: centre.x, y: centre.y)
            XCTAssertEqual(source.x, (crop.left + crop.right) / 2, accuracy: 1e-12)
            XCTAssertEqual(source.y, (crop.top + crop.bottom) / 2, accuracy: 1e-12)
            let corner = canvasPoint(0, 0), sourceCorner = geometry.sourcePoint(x: corner.x, y: corner.y)
            let expected = crop.sourcePoint(x: 0, y: 0)
            XCTAssertEqual(sourceCorner.x, expected.x, accuracy: 1e-12, "the flip is kept")
            XCTAssertEqual(sourceCorner.y, expected.y, accuracy: 1e-12)
            let seen = try XCTUnwrap(geometry.viewPoint(x: source.x, y: source.y))
            XCTAssertEqual(seen.x, centre.x, accuracy: 1e-12)
            XCTAssertEqual(seen.y, centre.y, accuracy: 1e-12)
            XCTAssertEqual(geometry.isFlipped, crop.isFlipped)

            // A canvas point shows the source exactly inside the square.
            for row in 0..<56 {
                for column in 0..<56 {
                    let inside = (square.left..<(square.left + square.side)).contains(column)
                        && (square.top..<(square.top + square.side)).contains(row)
                    let shown = geometry.shownSourcePoint(x: (Double(column) + 0.5) / 56, y: (Double(row) + 0.5) / 56)
                    XCTAssertEqual(shown != nil, inside, "seed \(seed), pixel (\(column), \(row))")
                }
            }
            // Patches of the canvas correspond to patches of a view of the whole image only on the square.
            let grid = PatchGrid(height: 8, width: 8)
            let matches = CropGeometry.correspondingPatches(from: geometry, to: .wholeImage, sourceGrid: grid, targetGrid: grid)
            for (patch, match) in matches.enumerated() {
                let x = (patch % 8) * 7 + 3, y = (patch / 8) * 7 + 3
                let onSquare = (square.left..<(square.left + square.side)).contains(x) && (square.top..<(square.top + square.side)).contains(y)
                XCTAssertEqual(match != nil, onSquare, "seed \(seed), patch \(patch)")
            }
        }
    }

    func testNoPasteLeavesTheViewAndItsGeometryAlone() {
        let view = Self.garment(size: 56)
        let crop = CropGeometry(left: 0.2, top: 0.1, right: 0.6, bottom: 0.7, isFlipped: true)
        var image = view, geometry = crop
        var generator = RandomGenerator(seed: 5)
        RandomPaste(probability: 0, distractors: distractors).apply(to: &image, geometry: &geometry, generator: &generator)
        XCTAssertEqual(image, view)
        XCTAssertEqual(geometry, crop)

        // A view recipe that does not paste has no such step and draws exactly as before.
        let recipe = ViewRecipe(cropSize: 24, scale: 0.3...1, blurProbability: 0.5)
        XCTAssertFalse(recipe.augmentations(distractors: distractors).contains { $0 is RandomPaste })
        var first = RandomGenerator(seed: 6), second = first
        let withDataset = recipe.crop(view, distractors: distractors, generator: &first)
        let without = recipe.crop(view, generator: &second)
        XCTAssertEqual(withDataset.image, without.image)
        XCTAssertEqual(withDataset.geometry, without.geometry)
        XCTAssertNil(withDataset.geometry.pastedBox)
    }

    func testAPasteIsDeterminedByItsGenerator() {
        let paste = RandomPaste(probability: 0.5, distractors: distractors)
        func pasted(seed: UInt64) -> (Image, CropGeometry) {
            var generator = RandomGenerator(seed: seed)
            var image = Self.garment(size: 56), geometry = CropGeometry.wholeImage
            paste.apply(to: &image, geometry: &geometry, generator: &generator)
            return (image, geometry)
        }
        var canvases: [Image] = [], unchanged = 0
        for seed in 0..<12 {
            let (image, geometry) = pasted(seed: UInt64(seed)), (again, againGeometry) = pasted(seed: UInt64(seed))
            XCTAssertTrue(image == again, "seed \(seed)")
            XCTAssertEqual(geometry, againGeometry)
            if geometry.pastedBox == nil { unchanged += 1 } else { canvases.append(image) }
        }
        XCTAssertTrue(canvases.count >= 2 && unchanged >= 1, "pasted with probability ½: \(canvases.count) of 12")
        XCTAssertTrue(canvases[0] != canvases[1], "each seed draws its own canvas")
    }

    /// The loader pastes the local crops only, among images of its dataset, and carries their
    /// geometry; a local crop larger than the global ones is fine.
    func testTheLoaderPastesTheLocalCropsOnly() throws {
        let plan = ViewPlan(globalCount: 2, globalSize: 28, localCount: 2, localSize: 56)
        let recipe = AugmentationRecipe(paste: 1).crops(for: plan)
        XCTAssertEqual(recipe.views.map(\.pasteProbability), [0, 0, 1, 1])
        let loader = try DataLoader(dataset: distractors, recipe: recipe, batchSize: 3, seed: 2, threadCount: 2)
        let batch = try loader.next()
        XCTAssertEqual(batch.views.map { $0.shape[3] }, [28, 28, 56, 56])
        for (view, crops) in batch.geometry.enumerated() {
            for crop in crops { XCTAssertEqual(crop.pastedBox != nil, view >= 2, "view \(view): \(crop)") }
        }
        let again = try DataLoader(dataset: distractors, recipe: recipe, batchSize: 3, seed: 2, threadCount: 1).next()
        XCTAssertEqual(again.views[3].elements, batch.views[3].elements, "whatever the thread count")
    }

    /// In training a paste draws its distractors from the crop's batch, and the picture map
    /// numbers them by their place in it: of a dataset where only the images of even index show
    /// a garment, every distractor on a canvas is an even image of the batch.
    func testTheLoaderDrawsDistractorsFromTheBatch() throws {
        let garments = Garments(images: (0..<8).map { $0 % 2 == 0 ? Self.garment(size: 28) : Image(width: 28, height: 28, pixels: Array(repeating: 0, count: 28 * 28 * 3)) })
        let plan = ViewPlan(globalCount: 1, globalSize: 28, localCount: 3, localSize: 56)
        let loader = try DataLoader(dataset: garments, recipe: AugmentationRecipe(paste: 1).crops(for: plan), batchSize: 4, seed: 3, threadCount: 2)
        var distractorsSeen = 0
        for _ in 0..<4 {
            let batch = try loader.next()
            for crops in batch.geometry.dropFirst() {
                for crop in crops {
                    let pictures = try XCTUnwrap(crop.canvasPictures)
                    for row in 0..<56 {
                        for column in 0..<56 {
                            guard case .distractor(let position) = pictures[column, row] else { continue }
                            distractorsSeen += 1
                            XCTAssertTrue((0..<4).contains(position), "batch position \(position)")
                            XCTAssertEqual(batch.indices[position] % 2, 0, "a distractor drawn from image \(batch.indices[position])")
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(distractorsSeen, 0)
    }
}

/// A few images, all readable.
private struct Garments: ImageDataset {
    let images: [Image]
    var count: Int { images.count }
    func image(at index: Int) throws -> Image { images[index] }
    func label(at index: Int) -> Int? { nil }
    var classNames: [String] { [] }
    var description: String { "\(images.count) garments" }
}
