import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Splits coarse work across the machine's cores.
///
/// Waking a worker thread costs tens of microseconds, so only work of at least about half a
/// millisecond per chunk is worth splitting; smaller work runs on the calling thread.
public enum Parallel {
    /// The number of threads kernels split work across; defaults to the number of cores.
    nonisolated(unsafe) public static var threadCount = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    /// Calls `body` on disjoint, contiguous sub-ranges covering `0..<count`, in parallel when
    /// each chunk would hold at least `minimumChunk` items.
    ///
    /// - Parameters:
    ///   - count: the number of items.
    ///   - minimumChunk: the smallest number of items worth a thread of its own.
    ///   - body: receives the chunk index and its range of items.
    public static func forEachChunk(
        of count: Int, minimumChunk: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void
    ) {
        let chunks = chunkCount(for: count, minimumChunk: minimumChunk)
        if chunks <= 1 {
            if count > 0 { body(0, 0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                task.value(chunk, start..<end)
            }
        }
    }

    /// How many chunks `forEachChunk(of:minimumChunk:_:)` uses for `count` items.
    public static func chunkCount(for count: Int, minimumChunk: Int) -> Int {
        max(1, min(threadCount, count / max(minimumChunk, 1)))
    }
}

/// Carries a value across a concurrency boundary that the caller knows to be safe: kernels
/// write disjoint ranges of one buffer from several threads.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
