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
    /// (Sizes more than twice apart, so that none is lent to another.)
    func testUnmapsWhatWouldExceedTwiceTheLargestWorkingSet() {
        let pool = StoragePool(capacityBytes: 0)
        let large = (0..<2).map { _ in pool.allocate(count: count * 5) }
        large.forEach { pool.release($0, count: count * 5) }
        XCTAssertEqual(pool.cachedBytes, 10 * bytes, "ten units were live at once: up to twenty are kept")

        let middle = (0..<4).map { _ in pool.allocate(count: count * 2) }
        middle.forEach { pool.release($0, count: count * 2) }
        XCTAssertEqual(pool.cachedBytes, 18 * bytes)

        let small = (0..<5).map { _ in pool.allocate(count: count / 2) }
        small.forEach { pool.release($0, count: count / 2) }
        XCTAssertEqual(pool.cachedBytes, 20 * bytes, "the fifth half unit would exceed twice the ten ever live")
    }

    /// A request that finds no kept buffer of its size borrows the smallest kept one of up to
    /// twice its size instead of mapping a new one; given back, it is kept under its own size.
    func testLendsAKeptBufferUpToTwiceTheSize() {
        let pool = StoragePool(capacityBytes: 0)
        let buffers = [1, 4, 6].map { pool.allocate(count: count * $0) }
        for (buffer, units) in zip(buffers, [1, 4, 6]) { pool.release(buffer, count: count * units) }

        let borrowed = pool.allocate(count: count * 3)
        XCTAssertEqual(borrowed, buffers[1], "three units borrow the four-unit buffer, the smallest large enough")
        XCTAssertEqual(pool.cachedBytes, 7 * bytes)
        pool.release(borrowed, count: count * 3)
        XCTAssertEqual(pool.cachedBytes, 11 * bytes)
        XCTAssertEqual(pool.allocate(count: count * 4), buffers[1], "kept under its own four units")

        let fresh = pool.allocate(count: count * 2)
        XCTAssertFalse(buffers.contains(fresh), "the six-unit buffer is more than twice two units")
    }
}
