import CKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Splits coarse work across this process's share of the machine's cores.
///
/// The chunks run on the calling thread and on persistent worker threads (`ssl_parallel_run` in
/// CKernels), which spin for about 0.2 ms after each region before they park: a training step
/// runs hundreds of regions a fraction of a millisecond apart, and waking a parked thread costs
/// tens of microseconds, as Dispatch's `concurrentPerform` did for every region here (the
/// spinning pool made the DINO step 19 % and the main job's step 7.5 % faster in bf16). Work of
/// less than some tens of microseconds per chunk still runs best on the calling thread alone.
///
/// What stays global, and why: ``threadCount`` is a property of the process (how many cores
/// it may use), decided once from the machine and the launch before anything reads it, and
/// constant afterwards, so kernels deep in a backward pass need no context passed to them. The
/// other process-wide settings are OpenBLAS's (one thread, set by ``BLAS``: this type splits
/// the work instead) and the command line's task registry, set once before parsing.
public enum Parallel {
    /// The number of threads kernels split work across, and the default number of data-loading
    /// threads: the cores of the machine divided among the processes an MPI launcher started
    /// on it (``ProcessLaunch/threadsPerProcess(cores:)``).
    public static let threadCount = ProcessLaunch.current.threadsPerProcess(cores: sysconf(Int32(_SC_NPROCESSORS_ONLN)))

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
            var region = Region(body: body, count: count, chunks: chunks)
            withUnsafeMutablePointer(to: &region) { pointer in
                ssl_parallel_run(Int64(chunks), Int32(threadCount), { context, chunk in
                    let region = context!.assumingMemoryBound(to: Region.self).pointee
                    let index = Int(chunk)
                    region.body(index, region.count * index / region.chunks ..< region.count * (index + 1) / region.chunks)
                }, pointer)
            }
        }
    }

    /// What the chunks of one ``forEachChunk(of:minimumChunk:_:)`` region read.
    private struct Region {
        let body: (_ chunk: Int, _ range: Range<Int>) -> Void
        let count: Int, chunks: Int
    }

    /// The fewest rows of `width` floats worth a thread of their own in a row-wise pass (about
    /// 64 Ki elements): the `minimumChunk` of the element-wise passes over token matrices.
    public static func minimumRows(ofWidth width: Int) -> Int {
        max(1, 65_536 / max(width, 1))
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

/// How this process was launched: alone, or by an MPI launcher (OpenMPI's `mpirun`, or a PMI
/// launcher such as SLURM's `srun`) with other processes on the same machine, which share its
/// cores.
public struct ProcessLaunch: Sendable {
    /// Whether an MPI launcher started this process.
    public let isLaunchedByMPI: Bool
    /// The processes of the launch on this machine (1 when unknown or alone).
    public let processesOnThisMachine: Int

    /// The launch the environment variables `environment` describe.
    public init(environment: [String: String]) {
        isLaunchedByMPI = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].contains { environment[$0] != nil }
        let local = (environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? environment["SLURM_NTASKS_PER_NODE"]).flatMap { Int($0) }
        processesOnThisMachine = isLaunchedByMPI ? max(1, local ?? 1) : 1
    }

    /// This process's launch.
    public static let current = ProcessLaunch(environment: ProcessInfo.processInfo.environment)

    /// This process's share of `cores`: at least one thread, so that the processes on the
    /// machine do not oversubscribe it.
    public func threadsPerProcess(cores: Int) -> Int {
        max(1, cores / processesOnThisMachine)
    }
}
