import SSLCore
import XCTest

/// RGB picture helpers: attention maps, PCA colours, similarity maps, tiling.
final class EvalPictureTests: XCTestCase {
    private let low = ColorMap.viridis(0), high = ColorMap.viridis(1)

    private func assertColour(
        _ actual: (red: UInt8, green: UInt8, blue: UInt8), _ expected: (red: UInt8, green: UInt8, blue: UInt8),
        _ message: String = "", file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(
            [actual.red, actual.green, actual.blue], [expected.red, expected.green, expected.blue], message, file: file, line: line)
    }

    func testViridisEnds() {
        assertColour(low, (68, 1, 84))
        assertColour(high, (253, 231, 37))
    }

    func testClassTokenAttentionPerHeadUpsampledToTheImage() {
        // One sample, two heads, a 2×2 grid (5 tokens); only the class rows matter.
        var values = [Float](repeating: 0, count: 2 * 5 * 5)
        values.replaceSubrange(0..<5, with: [0.2, 0.1, 0.2, 0.3, 0.2])
        values.replaceSubrange(25..<30, with: [0.6, 0.4, 0, 0, 0])
        let maps = Image.classTokenAttention(
            probabilities: Tensor(shape: [1, 2, 5, 5], elements: values), sample: 0, gridHeight: 2, gridWidth: 2, scale: 3)
        XCTAssertEqual(maps.count, 2)
        XCTAssertEqual(maps[0].width, 6)
        XCTAssertEqual(maps[0].height, 6)
        assertColour(maps[0][0, 0], low)
        assertColour(maps[0][2, 2], low)
        assertColour(maps[0][0, 5], high, "patch 2 (bottom left) has the most attention")
        assertColour(maps[1][1, 1], high)
        assertColour(maps[1][4, 4], low)
    }

    func testPrincipalComponentsColourTheMainDirectionRed() {
        // Patches spread mostly along dimension 1, a little (uncorrelated) along dimension 2.
        let patches = Tensor(shape: [1, 4, 3], elements: [
            0, -3, 0.5,
            0, -1, -0.5,
            0, 1, -0.5,
            0, 3, 0.5,
        ])
        let pictures = Image.principalComponents(patches: patches, gridHeight: 2, gridWidth: 2, scale: 1)
        XCTAssertEqual(pictures.count, 1)
        XCTAssertEqual((0..<4).map { pictures[0][$0 % 2, $0 / 2].red }, [0, 85, 170, 255])
        XCTAssertEqual((0..<4).map { pictures[0][$0 % 2, $0 / 2].green }, [255, 0, 0, 255])
    }

    func testSimilarityMapOutlinesTheQuery() {
        let patches = Tensor(shape: [4, 2], elements: [1, 0, 0.9, 0.1, 0, 1, -1, 0])
        let map = Image.similarityMap(patches: patches, query: 0, gridHeight: 2, gridWidth: 2, scale: 3)
        assertColour(map[0, 0], (255, 0, 0))
        assertColour(map[1, 1], high, "the query is most similar to itself")
        assertColour(map[4, 4], low, "patch 3 points the other way")
        let marked = Image.similarityMap(patches: patches, query: 0, highlighted: [1], gridHeight: 2, gridWidth: 2, scale: 3)
        assertColour(marked[3, 0], (255, 255, 255), "the chosen neighbour is outlined in white")
        assertColour(marked[4, 1], map[4, 1], "inside the outline")
        assertColour(marked[0, 0], (255, 0, 0))
    }

    func testTilingAndImageConversion() {
        let grey = Image.fromImage(Tensor(shape: [1, 1, 2], elements: [-1, 1]))
        XCTAssertEqual(grey.pixels, [0, 0, 0, 255, 255, 255])
        let tiled = Image.tiled([grey, grey, grey], columns: 2, spacing: 1)
        XCTAssertEqual(tiled.width, 5)
        XCTAssertEqual(tiled.height, 3)
        assertColour(tiled[2, 0], (255, 255, 255))
        assertColour(tiled[3, 0], (0, 0, 0))
        assertColour(tiled[1, 2], (255, 255, 255))
        assertColour(tiled[4, 2], (255, 255, 255), "empty cell")
    }
}
