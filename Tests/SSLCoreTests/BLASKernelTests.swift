import SSLCore
import XCTest

/// Which OpenBLAS kernels a process asks for: the processor's best family when the library
/// fell back to generic ones, never against an `OPENBLAS_CORETYPE` already set.
final class BLASKernelTests: XCTestCase {
    func testGenericFallbackIsReplacedByTheProcessorsFamily() {
        XCTAssertEqual(BLAS.kernelFamilyOverride(current: "Prescott", vectorLevel: 2, requested: nil), "SkylakeX")
        XCTAssertEqual(BLAS.kernelFamilyOverride(current: "Prescott", vectorLevel: 1, requested: nil), "Haswell")
        XCTAssertEqual(BLAS.kernelFamilyOverride(current: "Sandybridge", vectorLevel: 2, requested: nil), "SkylakeX")
    }

    func testRightOrRequestedFamiliesAreKept() {
        XCTAssertNil(BLAS.kernelFamilyOverride(current: "SkylakeX", vectorLevel: 2, requested: nil))
        XCTAssertNil(BLAS.kernelFamilyOverride(current: "Cooperlake", vectorLevel: 2, requested: nil))
        XCTAssertNil(BLAS.kernelFamilyOverride(current: "Haswell", vectorLevel: 1, requested: nil))
        XCTAssertNil(BLAS.kernelFamilyOverride(current: "Zen", vectorLevel: 1, requested: nil))
        XCTAssertNil(BLAS.kernelFamilyOverride(current: "Prescott", vectorLevel: 0, requested: nil))
        XCTAssertNil(BLAS.kernelFamilyOverride(current: "Prescott", vectorLevel: 2, requested: "Haswell"), "the environment's choice stands")
    }
}
