import Foundation
import SSLCore
import Synchronization
import XCTest

/// The kernels' thread pool: every item of a region is visited exactly once, whether regions
/// follow each other closely (the workers still spinning), nest, or start from several threads
/// at once.
final class ParallelTests: XCTestCase {
    /// Counts visits per item; chunks write disjoint items, so plain stores suffice.
    private final class Visits: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Int>
        let count: Int
        init(_ count: Int) {
            self.count = count
            counts = .allocate(capacity: count)
            counts.initialize(repeating: 0, count: count)
        }
        deinit { counts.deallocate() }
        var all: [Int] { Array(UnsafeBufferPointer(start: counts, count: count)) }
    }

    func testEveryItemOnceOverManyRegions() {
        for count in [1, 2, 3, 7, 64, 1000] {
            let visits = Visits(count)
            for _ in 0..<200 {
                Parallel.forEachChunk(of: count, minimumChunk: 1) { _, range in
                    for index in range { visits.counts[index] += 1 }
                }
            }
            XCTAssertEqual(visits.all, [Int](repeating: 200, count: count), "count \(count)")
        }
    }

    func testChunksAreContiguousAndIndexed() {
        let chunks = Parallel.chunkCount(for: 10, minimumChunk: 1)
        let ranges = Mutex([Int: Range<Int>]())
        Parallel.forEachChunk(of: 10, minimumChunk: 1) { chunk, range in
            ranges.withLock { $0[chunk] = range }
        }
        let recorded = ranges.withLock { $0 }
        XCTAssertEqual(recorded.count, chunks)
        XCTAssertEqual((0..<chunks).flatMap { Array(recorded[$0]!) }, Array(0..<10))
    }

    func testNestedRegionsRunEveryItem() {
        let visits = Visits(64)
        Parallel.forEachChunk(of: 8, minimumChunk: 1) { _, outer in
            for row in outer {
                Parallel.forEachChunk(of: 8, minimumChunk: 1) { _, inner in
                    for column in inner { visits.counts[row * 8 + column] += 1 }
                }
            }
        }
        XCTAssertEqual(visits.all, [Int](repeating: 1, count: 64))
    }

    func testRegionsFromSeveralThreadsAtOnce() {
        let threads = 4, regions = 300, count = 257
        let visits = (0..<threads).map { _ in Visits(count) }
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for _ in 0..<regions {
                Parallel.forEachChunk(of: count, minimumChunk: 1) { _, range in
                    for index in range { visits[thread].counts[index] += 1 }
                }
            }
        }
        for thread in 0..<threads {
            XCTAssertEqual(visits[thread].all, [Int](repeating: regions, count: count), "thread \(thread)")
        }
    }
}
