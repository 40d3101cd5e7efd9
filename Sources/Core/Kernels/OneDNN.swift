import COneDNN

#if canImport(Glibc)
import Glibc
#endif

/// oneDNN's single-precision matrix product (`dnnl_sgemm`), run on the calling thread.
///
/// Debian's oneDNN threads with OpenMP, and the engine splits products across cores itself
/// (``MatrixProduct``), so each call first sets the calling thread's OpenMP team size to one
/// through `omp_set_num_threads`, looked up at run time in the OpenMP library that oneDNN
/// loaded. Where that function is missing, oneDNN would start threads of its own beside the
/// engine's, so ``isUsable`` is false and products stay with OpenBLAS.
enum OneDNN {
    private typealias SetThreadCount = @convention(c) (Int32) -> Void

    private static let setThreadCount: SetThreadCount? = {
        // A null handle is RTLD_DEFAULT: every library loaded with the program.
        guard let symbol = dlsym(nil, "omp_set_num_threads") else { return nil }
        return unsafeBitCast(symbol, to: SetThreadCount.self)
    }()

    /// Whether products can run on oneDNN within the engine's threading.
    static var isUsable: Bool { setThreadCount != nil }

    /// Runs `part` single-threaded; returns false (having done nothing) when oneDNN is not
    /// usable or rejects the product.
    static func multiply(_ part: MatrixProduct) -> Bool {
        guard let setThreadCount else { return false }
        setThreadCount(1)
        let status = dnnl_sgemm(
            part.transposeA ? CChar(UInt8(ascii: "T")) : CChar(UInt8(ascii: "N")),
            part.transposeB ? CChar(UInt8(ascii: "T")) : CChar(UInt8(ascii: "N")),
            Int64(part.m), Int64(part.n), Int64(part.k), part.alpha, part.a, Int64(part.lda),
            part.b, Int64(part.ldb), part.beta, part.c, Int64(part.ldc))
        return status == dnnl_success
    }
}
