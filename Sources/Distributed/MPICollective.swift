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

    /// Whether this process was started by an MPI launcher (OpenMPI's `mpirun`, or a PMI
    /// launcher such as SLURM's `srun`).
    public static var isLaunchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].contains { environment[$0] != nil }
    }

    /// The collective of this launch: MPI under a launcher, a single process otherwise. Under
    /// a launcher, the machine's cores are shared among the processes on it, so kernels and
    /// GEMMs do not oversubscribe them.
    public static func forThisProcess() throws -> Collective {
        guard isLaunchedByMPI else { return SingleProcessCollective() }
        let environment = ProcessInfo.processInfo.environment
        if let local = (environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? environment["SLURM_NTASKS_PER_NODE"]).flatMap(Int.init), local > 0 {
            Parallel.threadCount = max(1, ProcessInfo.processInfo.activeProcessorCount / local)
        }
        return try MPICollective()
    }

    /// Initialises MPI (once per process).
    public init() throws {
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
        let status = MPI_Allreduce(
            ssl_mpi_in_place(), tensor.storage.base, Int32(tensor.count), ssl_mpi_float(), ssl_mpi_sum(), ssl_mpi_comm_world())
        check(status, "all-reduce of \(tensor.describe)")
    }

    public func allGather(_ tensor: Tensor) -> Tensor {
        var shape = tensor.shape
        shape[0] *= worldSize
        let result = Tensor(uninitializedShape: shape)
        let status = MPI_Allgather(
            tensor.storage.base, Int32(tensor.count), ssl_mpi_float(), result.storage.base, Int32(tensor.count),
            ssl_mpi_float(), ssl_mpi_comm_world())
        check(status, "all-gather of \(tensor.describe)")
        return result
    }

    /// Stops the whole job when a collective fails (e.g. another rank died), rather than
    /// letting this rank continue alone.
    private func check(_ status: Int32, _ operation: String) {
        guard status != ssl_mpi_success() else { return }
        var message = [CChar](repeating: 0, count: 512)
        var length: Int32 = 0
        MPI_Error_string(status, &message, &length)
        FileHandle.standardError.write(
            Data("rank \(rank): MPI \(operation) failed (\(String(cString: message))); stopping the job.\n".utf8))
        MPI_Abort(ssl_mpi_comm_world(), 1)
    }
}

/// A failure to set up distributed training.
public struct DistributedError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
