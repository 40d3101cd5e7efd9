import CMPI
import Foundation
import SSLCore

#if canImport(Glibc)
import Glibc
#endif

/// The collective interface over MPI, for data-parallel training launched with
/// `mpirun -np N ssl-run …` (or `srun`): every process trains on its shard of each global
/// batch, gradients and task statistics are summed across processes.
///
/// A run started without `mpirun` never initialises MPI; it uses ``SingleProcessCollective``.
public final class MPICollective: Collective {
    public let rank: Int
    public let worldSize: Int
    /// How many seconds a collective waits for the other processes before it stops the job:
    /// a process that died would otherwise leave the others waiting forever.
    public let timeout: Double

    /// The collective of this launch (``ProcessLaunch/current``): MPI under a launcher, a
    /// single process otherwise. (Under a launcher, ``Parallel/threadCount`` is already this
    /// process's share of the machine's cores.)
    public static func forThisProcess(timeout: Double = 600) throws -> Collective {
        guard ProcessLaunch.current.isLaunchedByMPI else { return SingleProcessCollective() }
        return try MPICollective(timeout: timeout)
    }

    /// Initialises MPI (once per process); collectives stop the job after `timeout` seconds.
    public init(timeout: Double = 600) throws {
        precondition(timeout > 0, "The collective timeout must be positive, got \(timeout).")
        self.timeout = timeout
        var provided: Int32 = 0
        guard MPI_Init_thread(nil, nil, ssl_mpi_thread_funneled(), &provided) == ssl_mpi_success() else {
            throw DistributedError("MPI could not be initialised.")
        }
        // Failures come back as error codes (reported below) instead of aborting silently.
        MPI_Comm_set_errhandler(ssl_mpi_comm_world(), ssl_mpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(ssl_mpi_comm_world(), &rank)
        MPI_Comm_size(ssl_mpi_comm_world(), &size)
        self.rank = Int(rank)
        self.worldSize = Int(size)
        atexit { MPI_Finalize() }
    }

    public func allReduceSum(_ tensor: Tensor) {
        let operation = "all-reduce of \(tensor.describe)"
        var request: MPI_Request?
        check(MPI_Iallreduce(
            ssl_mpi_in_place(), tensor.storage.base, Int32(tensor.count), ssl_mpi_float(), ssl_mpi_sum(), ssl_mpi_comm_world(),
            &request), operation)
        wait(for: &request, operation)
    }

    public func allGather(_ tensor: Tensor) -> Tensor {
        var shape = tensor.shape
        shape[0] *= worldSize
        let result = Tensor(uninitializedShape: shape)
        let operation = "all-gather of \(tensor.describe)"
        var request: MPI_Request?
        check(MPI_Iallgather(
            tensor.storage.base, Int32(tensor.count), ssl_mpi_float(), result.storage.base, Int32(tensor.count),
            ssl_mpi_float(), ssl_mpi_comm_world(), &request), operation)
        wait(for: &request, operation)
        return result
    }

    /// Waits for a non-blocking collective, at most ``timeout`` seconds: it polls briefly, then
    /// every 0.2 ms so that a waiting process leaves the cores to the others.
    private func wait(for request: inout MPI_Request?, _ operation: String) {
        let start = MonotonicClock.seconds
        var done: Int32 = 0
        var polls = 0
        while true {
            check(MPI_Test(&request, &done, ssl_mpi_status_ignore()), operation)
            if done != 0 { return }
            polls += 1
            guard polls > 1000 else { continue }
            usleep(200)
            if MonotonicClock.seconds - start > timeout {
                stopJob("the \(operation) waited more than \(Int(timeout)) s for the other processes (did one stop?)")
            }
        }
    }

    /// Stops every process of the job after this one failed with `error`: the others may be
    /// waiting in a collective and would never return.
    public func abortJob(reporting error: Error) -> Never {
        stopJob("\(error)")
    }

    /// Stops the whole job when a collective fails (e.g. another rank died), rather than
    /// letting this rank continue alone.
    private func check(_ status: Int32, _ operation: String) {
        guard status != ssl_mpi_success() else { return }
        var message = [CChar](repeating: 0, count: 512)
        var length: Int32 = 0
        MPI_Error_string(status, &message, &length)
        stopJob("MPI \(operation) failed (\(String(decoding: message.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)))")
    }

    /// Reports `problem` and ends every process of the job.
    private func stopJob(_ problem: String) -> Never {
        FileHandle.standardError.write(Data("Error on rank \(rank) of \(worldSize): \(problem)\nStopping all \(worldSize) processes.\n".utf8))
        MPI_Abort(ssl_mpi_comm_world(), 1)
        exit(1)
    }
}

/// A failure to set up distributed training.
public struct DistributedError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
