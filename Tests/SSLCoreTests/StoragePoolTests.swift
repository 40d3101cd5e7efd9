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

    /// A step whose phases use different sizes (activations, then gradients) of as many bytes
    /// each finds every buffer of both phases again in its next step.
    func testKeepsTheBuffersOfEveryPhaseForTheNextStep() {
        let pool = StoragePool(capacityBytes: 0)
        func phases() -> Set<UInt> {
            let activations = (0..<2).map { _ in pool.allocate(count: count) }
            activations.forEach { pool.release($0, count: count) }
            let gradients = (0..<1).map { _ in pool.allocate(count: count * 2) }
            gradients.forEach { pool.release($0, count: count * 2) }
            return Set((activations + gradients).map { UInt(bitPattern: $0) })
        }
        let first = phases()
        XCTAssertEqual(phases(), first)
        XCTAssertEqual(pool.cachedBytes, 4 * bytes)
    }

    /// Beyond twice the most bytes ever live at once, freed buffers go back to the system.
    func testUnmapsWhatWouldExceedTwiceTheLargestWorkingSet() {
        let pool = StoragePool(capacityBytes: 0)
        for units in [1, 2, 4] {
            pool.release(pool.allocate(count: count * units), count: count * units)
        }
        XCTAssertEqual(pool.cachedBytes, 7 * bytes, "at most four units were live at once: up to eight are kept")

        pool.release(pool.allocate(count: count * 3), count: count * 3)
        XCTAssertEqual(pool.cachedBytes, 7 * bytes, "keeping three more units would exceed twice the four ever live")
    }
}
