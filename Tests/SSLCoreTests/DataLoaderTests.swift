import SSLCore
import SSLTestSupport
import XCTest

/// An in-memory dataset of distinct 40×48 images; the images at `unreadable` throw.
private struct SyntheticDataset: ImageDataset {
    let count: Int
    let unreadable: Set<Int>

    init(count: Int, unreadable: Set<Int> = []) {
        self.count = count
        self.unreadable = unreadable
    }

    func image(at index: Int) throws -> Image {
        if unreadable.contains(index) { throw DataError(path: "synthetic/\(index).jpg", problem: "is corrupt") }
        let pixels = (0..<40 * 48 * 3).map { UInt8(truncatingIfNeeded: $0 &* (index + 3) &+ ($0 / 144) * 7) }
        return Image(width: 48, height: 40, pixels: pixels)
    }

    func label(at index: Int) -> Int? { index % 3 }
    var classNames: [String] { ["a", "b", "c"] }
    var description: String { "synthetic (\(count) images)" }
}

final class DataLoaderTests: XCTestCase {
    private let recipe = MultiCropRecipe.dino(globalSize: 24, localSize: 12, localCount: 2)

    private func batches(_ loader: DataLoader, _ count: Int) throws -> [DataLoader.Batch] {
        try (0..<count).map { _ in try loader.next() }
    }

    private func assertIdentical(_ a: [DataLoader.Batch], _ b: [DataLoader.Batch], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.indices, y.indices, file: file, line: line)
            XCTAssertEqual(x.labels, y.labels, file: file, line: line)
            XCTAssertEqual(x.cursor, y.cursor, file: file, line: line)
            for (u, v) in zip(x.views, y.views) {
                XCTAssertEqual(u.shape, v.shape, file: file, line: line)
                XCTAssertTrue(u.elements == v.elements, "views differ at \(x.cursor)", file: file, line: line)
            }
        }
    }

    func testBatchesAreBitIdenticalWithOneAndTwoThreads() throws {
        let dataset = SyntheticDataset(count: 22)
        let one = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 4, seed: 9, threadCount: 1)
        let two = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 4, seed: 9, threadCount: 2, prefetchBatches: 3)
        XCTAssertEqual(one.batchesPerEpoch, 5)  // 22 images, the last 2 dropped.
        let first = try batches(one, 11), second = try batches(two, 11)
        assertIdentical(first, second)
        XCTAssertEqual(first[0].views.map(\.shape), [[4, 3, 24, 24], [4, 3, 24, 24], [4, 3, 12, 12], [4, 3, 12, 12]])
        XCTAssertEqual(first[10].cursor, DataLoader.Cursor(epoch: 2, position: 0))
        XCTAssertTrue(first[4].endsEpoch)
        XCTAssertEqual(first[0].labels, first[0].indices.map { $0 % 3 })
        // Each epoch visits distinct images, in a different order each time.
        let epoch0 = first[0..<5].flatMap(\.indices), epoch1 = first[5..<10].flatMap(\.indices)
        XCTAssertEqual(Set(epoch0).count, 20)
        XCTAssertNotEqual(epoch0, epoch1)
        let other = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 4, seed: 10, threadCount: 1)
        XCTAssertNotEqual(try other.next().indices, first[0].indices)
    }

    func testCursorRestoresTheSameBatches() throws {
        let dataset = SyntheticDataset(count: 16)
        let loader = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 4, seed: 1, threadCount: 2)
        let reference = try batches(loader, 7)
        XCTAssertEqual(loader.cursor, DataLoader.Cursor(epoch: 1, position: 3))
        let resumed = try DataLoader(
            dataset: dataset, recipe: recipe, batchSize: 4, seed: 1, threadCount: 1,
            start: DataLoader.Cursor(epoch: 0, position: 3))
        assertIdentical(try batches(resumed, 4), Array(reference[3..<7]))
        resumed.seek(to: DataLoader.Cursor(epoch: 1, position: 1))
        assertIdentical(try batches(resumed, 2), Array(reference[5..<7]))
    }

    func testRanksTakeTheirSliceOfEachGlobalBatch() throws {
        let dataset = SyntheticDataset(count: 26)
        let global = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 6, seed: 4, threadCount: 1)
        let ranks = try (0..<3).map {
            try DataLoader(dataset: dataset, recipe: recipe, batchSize: 2, seed: 4, threadCount: 1, rank: $0, worldSize: 3)
        }
        XCTAssertEqual(ranks[0].batchesPerEpoch, 4)
        for _ in 0..<4 {
            let whole = try global.next()
            let parts = try ranks.map { try $0.next() }
            XCTAssertEqual(parts.flatMap(\.indices), whole.indices)
            XCTAssertTrue(parts[1].views[0].elements == Array(whole.views[0].elements[2 * 3 * 24 * 24..<4 * 3 * 24 * 24]))
        }
    }

    func testUnreadableImagesAreSkippedAndCounted() throws {
        let dataset = SyntheticDataset(count: 12, unreadable: [2, 7])
        let loader = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 4, seed: 3, threadCount: 2)
        let epoch = try batches(loader, 3)
        XCTAssertTrue(epoch[2].endsEpoch)
        let indices = epoch.flatMap(\.indices)
        XCTAssertEqual(indices.count, 12)
        XCTAssertTrue(Set(indices).isDisjoint(with: [2, 7]))
        XCTAssertEqual(loader.skippedFileCount(epoch: 0), 2)
        // The same again with one thread: substitutes are deterministic too.
        let single = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 4, seed: 3, threadCount: 1)
        assertIdentical(try batches(single, 3), epoch)
    }

    /// A dataset none of whose images can be read any more stops the run with an error naming
    /// it, instead of trapping in a loader thread.
    func testADatasetWithNoReadableImageLeftThrows() throws {
        let dataset = SyntheticDataset(count: 8, unreadable: Set(0..<8))
        let loader = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 4, seed: 1, threadCount: 2)
        XCTAssertThrowsError(try loader.next()) { error in
            XCTAssertEqual(
                error as? DataError,
                DataError(path: dataset.description, problem: "no image can be read any more (removed or damaged during the run)"))
        }
        XCTAssertThrowsError(try loader.next(), "later batches fail too")
    }

    func testTruncatedAndGarbageFilesInAFolderAreSkipped() throws {
        let folder = "/tmp/swiftssl-loader-\(getpid())"
        let images = DataDecodingTests.imageFolder
        XCTAssertEqual(system("""
            rm -rf '\(folder)' && mkdir -p '\(folder)' && cd '\(folder)' && cp '\(images)/baseline.jpg' a.jpg \
            && cp '\(images)/rgb.png' b.png && cp '\(images)/grey.jpg' c.jpg && cp '\(images)/palette.png' d.png \
            && head -c 700 '\(images)/progressive.jpg' > e.jpg && head -c 900 '\(images)/rgba.png' > f.png \
            && echo garbage > g.jpg && cp '\(images)/rgb16.png' h.png
            """), 0)
        defer { _ = system("rm -rf '\(folder)'") }
        let dataset = try ImageFolderDataset(path: folder)
        XCTAssertEqual(dataset.count, 8)
        let loader = try DataLoader(dataset: dataset, recipe: recipe, batchSize: 8, seed: 2, threadCount: 2)
        let batch = try loader.next()
        XCTAssertTrue(Set(batch.indices).isSubset(of: [0, 1, 2, 3, 7]), "\(batch.indices)")
        XCTAssertNil(batch.labels)
        XCTAssertEqual(loader.skippedFileCount(epoch: 0), 3)
    }

    func testTooSmallDatasetIsAnError() {
        XCTAssertThrowsError(try DataLoader(dataset: SyntheticDataset(count: 3), recipe: recipe, batchSize: 4, seed: 0))
    }
}
