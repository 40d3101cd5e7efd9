import SSLCore
import XCTest

/// The share of the machine's cores a process takes, from its launch.
final class ProcessLaunchTests: XCTestCase {
    func testProcessesOfAnMPILaunchShareTheCores() {
        let alone = ProcessLaunch(environment: [:])
        XCTAssertFalse(alone.isLaunchedByMPI)
        XCTAssertEqual(alone.threadsPerProcess(cores: 8), 8)
        let openMPI = ProcessLaunch(environment: ["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"])
        XCTAssertTrue(openMPI.isLaunchedByMPI)
        XCTAssertEqual(openMPI.threadsPerProcess(cores: 8), 4)
        XCTAssertEqual(openMPI.threadsPerProcess(cores: 1), 1, "at least one thread")
        let slurm = ProcessLaunch(environment: ["PMI_SIZE": "6", "SLURM_NTASKS_PER_NODE": "3"])
        XCTAssertEqual(slurm.threadsPerProcess(cores: 12), 4)
        XCTAssertEqual(ProcessLaunch(environment: ["PMIX_RANK": "0", "OMPI_COMM_WORLD_LOCAL_SIZE": "0"]).threadsPerProcess(cores: 8), 8)
        XCTAssertEqual(
            ProcessLaunch(environment: ["SLURM_NTASKS_PER_NODE": "4"]).threadsPerProcess(cores: 8), 8,
            "a SLURM job step not started by an MPI launcher keeps the cores")
    }
}
