import XCTest
@testable import SSLCore

final class StoragePoolTests: XCTestCase {
    private let count = StoragePool.minimumPooledCount * 2
    private var bytes: Int { count * MemoryLayout<Float>.stride }

    /// A step whose tensors outgrow the capacity still gets every buffer back in the next step:
    /// the pool keeps as many freed bytes as were ever live at once.
    func testKeepsAsManyBytesAsWereEverLive() {
        let pool = StoragePool(capacityBytes: 0)
        let first = (0..<4).map { _ in pool.allocate(count: count) }
        first.forEach { pool.release($0, count: count) }
        XCTAssertEqual(pool.cachedBytes, 4 * bytes)

        let second = (0..<4).map { _ in pool.allocate(count: count) }
        XCTAssertEqual(Set(second.map { UInt(bitPattern: $0) }), Set(first.map { UInt(bitPattern: $0) }))
        XCTAssertEqual(pool.cachedBytes, 0)
        second.forEach { pool.release($0, count: count) }
    }

    /// Beyond the most bytes ever live at once, freed buffers go back to the system.
    func testUnmapsWhatWouldExceedTheLargestWorkingSet() {
        let pool = StoragePool(capacityBytes: 0)
        let small = pool.allocate(count: count)
        let large = pool.allocate(count: count * 2)
        pool.release(large, count: count * 2)
        pool.release(small, count: count)
        XCTAssertEqual(pool.cachedBytes, 3 * bytes, "three units were live at once: all are kept")

        let largest = pool.allocate(count: count * 4)
        pool.release(largest, count: count * 4)
        XCTAssertEqual(pool.cachedBytes, 3 * bytes, "keeping four more units would exceed the four ever live")
    }
}
