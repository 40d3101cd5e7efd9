import SSLCore
import SSLTestSupport
import XCTest

final class CropGeometryTests: XCTestCase {
    /// A 48×40 image whose red channel is the column and green the row.
    private let image: Image = {
        var pixels: [UInt8] = []
        for row in 0..<40 {
            for column in 0..<48 { pixels += [UInt8(column), UInt8(row), 0] }
        }
        return Image(width: 48, height: 40, pixels: pixels)
    }()

    func testARandomResizedCropRecordsItsRegionAndAFlipMirrorsIt() {
        let crop = RandomResizedCrop(size: 16, scale: 0.2...0.6)
        var generator = RandomGenerator(seed: 7)
        var copy = generator
        let region = crop.region(width: 48, height: 40, generator: &copy)
        var view = image, geometry = CropGeometry.wholeImage
        crop.apply(to: &view, geometry: &geometry, generator: &generator)
        XCTAssertEqual(geometry, CropGeometry(
            left: Double(region.left) / 48, top: Double(region.top) / 40,
            right: Double(region.left + region.width) / 48, bottom: Double(region.top + region.height) / 40))
        XCTAssertLessThan(region.width, 48, "a real crop, not the whole image")

        var flipped = view, mirrored = geometry
        RandomHorizontalFlip(probability: 1).apply(to: &flipped, geometry: &mirrored, generator: &generator)
        XCTAssertTrue(mirrored.isFlipped)
        let left = mirrored.sourcePoint(x: 0, y: 0), right = mirrored.sourcePoint(x: 1, y: 1)
        XCTAssertEqual(left.x, geometry.right, accuracy: 1e-12, "the view's left edge shows the box's right edge")
        XCTAssertEqual(right.x, geometry.left, accuracy: 1e-12)
        XCTAssertEqual(right.y, geometry.bottom, accuracy: 1e-12)
        // The pixels agree: the flipped view's first column shows the crop's last source columns.
        XCTAssertGreaterThan(flipped.pixels[0], view.pixels[0])
    }

    func testAViewRecipeReturnsTheGeometryOfItsCropAndFlip() {
        var recipe = ViewRecipe(cropSize: 16, scale: 0.3...0.5, blurProbability: 0)
        recipe.flipProbability = 1
        var generator = RandomGenerator(seed: 3)
        var copy = generator
        let region = RandomResizedCrop(size: 16, scale: 0.3...0.5).region(width: 48, height: 40, generator: &copy)
        let crop = recipe.crop(image, generator: &generator)
        XCTAssertEqual(crop.geometry, CropGeometry(
            left: Double(region.left) / 48, top: Double(region.top) / 40, right: Double(region.left + region.width) / 48,
            bottom: Double(region.top + region.height) / 40, isFlipped: true))
    }

    func testIdenticalCropsMapEachPatchToItself() {
        let crop = CropGeometry(left: 0.1, top: 0.2, right: 0.7, bottom: 0.9)
        let grid = PatchGrid(height: 4, width: 4)
        XCTAssertEqual(
            CropGeometry.correspondingPatches(from: crop, to: crop, sourceGrid: grid, targetGrid: grid), Array(0..<16))
    }

    func testAFlippedCropMapsToTheMirroredPatch() {
        let crop = CropGeometry(left: 0.1, top: 0.2, right: 0.7, bottom: 0.9)
        var flipped = crop
        flipped.isFlipped = true
        let grid = PatchGrid(height: 3, width: 4)
        let mirrored = (0..<12).map { Optional(($0 / 4) * 4 + 3 - $0 % 4) }
        XCTAssertEqual(CropGeometry.correspondingPatches(from: crop, to: flipped, sourceGrid: grid, targetGrid: grid), mirrored)
        XCTAssertEqual(CropGeometry.correspondingPatches(from: flipped, to: crop, sourceGrid: grid, targetGrid: grid), mirrored)
    }

    func testDisjointCropsShareNoPatch() {
        let left = CropGeometry(left: 0, top: 0, right: 0.5, bottom: 1)
        let right = CropGeometry(left: 0.5, top: 0, right: 1, bottom: 1)
        let grid = PatchGrid(height: 2, width: 2)
        XCTAssertEqual(
            CropGeometry.correspondingPatches(from: left, to: right, sourceGrid: grid, targetGrid: grid), [Int?](repeating: nil, count: 4))
    }

    func testAZoomedCropMapsOntoTheCoarserGridOfTheWholeImage() {
        // The top-left quarter, on a 4×4 grid, against the whole image on a 2×2 grid: all in patch 0.
        let quarter = CropGeometry(left: 0, top: 0, right: 0.5, bottom: 0.5)
        XCTAssertEqual(
            CropGeometry.correspondingPatches(
                from: quarter, to: .wholeImage, sourceGrid: PatchGrid(height: 4, width: 4), targetGrid: PatchGrid(height: 2, width: 2)),
            [Int?](repeating: 0, count: 16))
    }

    func testBatchesCarryEachCropsGeometry() throws {
        let dataset = InMemoryDataset(image: image, count: 4)
        let loader = try DataLoader(dataset: dataset, recipe: .dino(globalSize: 16, localSize: 8, localCount: 1), batchSize: 2, seed: 1, threadCount: 1)
        let batch = try loader.next()
        XCTAssertEqual(batch.geometry.count, 3)
        for view in batch.geometry {
            XCTAssertEqual(view.count, 2)
            for crop in view {
                XCTAssertTrue(0 <= crop.left && crop.left < crop.right && crop.right <= 1, "\(crop)")
                XCTAssertTrue(0 <= crop.top && crop.top < crop.bottom && crop.bottom <= 1, "\(crop)")
            }
        }
        XCTAssertNotEqual(batch.geometry[0][0], batch.geometry[1][0], "each crop is drawn on its own")
    }
}

/// `count` copies of one image.
private struct InMemoryDataset: ImageDataset {
    let image: Image
    let count: Int
    func image(at index: Int) throws -> Image { image }
    func label(at index: Int) -> Int? { nil }
    var classNames: [String] { [] }
    var description: String { "in memory" }
}
