import CKernels
import COpenBLAS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Matrix products: float32 through oneDNN and OpenBLAS, or with bfloat16 operands (``BF16``)
/// inside ``BLAS/withPrecision(_:_:)``.
///
/// Both libraries run on one thread and large products are split across cores here, by rows
/// of the result (or columns when there are few rows), so that the library has one threading
/// system: the libraries' own spinning workers would otherwise compete with the kernels'
/// threads for the cores. Each float32 part of at least ``oneDNNMinimumMultiplyAdds``
/// multiply-adds runs on oneDNN's `sgemm` and smaller ones on OpenBLAS, where each is faster:
/// on a 2-core AMD Zen 4 oneDNN 2.6 runs the ViT layers' gradient products (thousands of token
/// rows by 192–768) 10–25 % faster than OpenBLAS 0.3.21 and their forward products as fast, and
/// OpenBLAS the per-head attention products (50 × 50 × 64) 20–100 % faster (BENCHMARKS.md).
public enum BLAS {
    /// A library that computes float32 products.
    public enum Library: String, CaseIterable, Sendable {
        /// oneDNN's `dnnl_sgemm`.
        case oneDNN
        /// OpenBLAS's `cblas_sgemm`.
        case openBLAS
    }

    /// Parts of products with at least this many multiply-adds run on oneDNN.
    public static let oneDNNMinimumMultiplyAdds = 1 << 20

    /// The number format products read their operands in.
    public enum Precision: String, Codable, CaseIterable, Sendable {
        /// Float32 operands: the reference fixtures' precision.
        case float32 = "fp32"
        /// Operands rounded to bfloat16 as they are packed, products summed in float32
        /// (``BF16``); float32 where the processor lacks AVX512_BF16.
        case bfloat16 = "bf16"
    }

    private static let scopedPrecision = Atomic<Bool>(false)

    /// The precision of products run without one of their own: ``Precision/float32`` except
    /// inside ``withPrecision(_:_:)``.
    public static var precision: Precision { scopedPrecision.load(ordering: .relaxed) ? .bfloat16 : .float32 }

    /// Runs `body` with every product that names no precision in `precision`, on every thread
    /// (training runs one step at a time, so the setting is process-wide). Asking for bfloat16
    /// on a processor without AVX512_BF16 prints a one-time notice and runs in float32.
    public static func withPrecision<Result>(_ precision: Precision, _ body: () throws -> Result) rethrows -> Result {
        let bfloat16 = precision == .bfloat16 && BF16.runsOnThisProcessor()
        let previous = scopedPrecision.exchange(bfloat16, ordering: .relaxed)
        defer { scopedPrecision.store(previous, ordering: .relaxed) }
        return try body()
    }

    private static let singleThreaded: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// C ← alpha · op(A) · op(B) + beta · C for row-major matrices, where op(A) is M×K and
    /// op(B) is K×N.
    ///
    /// - Parameters:
    ///   - transposeA: read A as its transpose (A is stored K×M).
    ///   - transposeB: read B as its transpose (B is stored N×K).
    ///   - lda, ldb, ldc: leading dimensions (row strides) of the stored matrices.
    ///   - parallel: split a large product across cores; pass `false` from code that already
    ///     runs on several threads.
    ///   - precision: the operands' format; by default ``precision``. Bfloat16 products run
    ///     on ``BF16`` where the processor supports it.
    ///   - library: the float32 library for every part (for measurements); by default each
    ///     part goes to the faster one for its size.
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        parallel: Bool = true, precision: Precision? = nil, library: Library? = nil
    ) {
        _ = singleThreaded
        let product = MatrixProduct(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        let bfloat16 = (precision ?? self.precision) == .bfloat16 && BF16.isSupported
        product.run(parallel: parallel) { part in
            if bfloat16, part.m * part.n * part.k >= BF16.minimumMultiplyAdds {
                BF16.multiply(part)
                return
            }
            let chosen = library ?? (part.m * part.n * part.k >= oneDNNMinimumMultiplyAdds ? .oneDNN : .openBLAS)
            if chosen == .oneDNN, OneDNN.multiply(part) { return }
            cblas_sgemm(
                CblasRowMajor, part.transposeA ? CblasTrans : CblasNoTrans, part.transposeB ? CblasTrans : CblasNoTrans,
                Int32(part.m), Int32(part.n), Int32(part.k), part.alpha, part.a, Int32(part.lda),
                part.b, Int32(part.ldb), part.beta, part.c, Int32(part.ldc))
        }
    }

    /// The OpenBLAS build and the kernel it selected for this processor.
    public static var configuration: String {
        "\(String(cString: openblas_get_config())) (core \(String(cString: openblas_get_corename())))"
    }
}

extension BLAS {
    /// The OpenBLAS kernel family in use (`openblas_get_corename`), e.g. `SkylakeX`.
    public static var kernelFamily: String { String(cString: openblas_get_corename()) }

    /// The kernel family to ask OpenBLAS for through `OPENBLAS_CORETYPE`, or `nil` when the one
    /// it chose is right: a processor newer than the library (Debian's OpenBLAS 0.3.21 does not
    /// know Emerald Rapids, for one) makes it fall back to its generic `Prescott` kernels, which
    /// run matrix products about four times slower than the AVX-512 ones the processor has.
    ///
    /// - Parameters:
    ///   - current: the family OpenBLAS chose.
    ///   - vectorLevel: 2 when the processor has AVX-512 (F, BW, VL, DQ), 1 for AVX2 with FMA.
    ///   - requested: the `OPENBLAS_CORETYPE` already set, which is always respected.
    public static func kernelFamilyOverride(current: String, vectorLevel: Int, requested: String?) -> String? {
        guard requested == nil else { return nil }
        let avx512Families: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
        let avx2Families = avx512Families.union(["haswell", "zen"])
        switch vectorLevel {
        case 2 where !avx512Families.contains(current.lowercased()): return "SkylakeX"
        case 1 where !avx2Families.contains(current.lowercased()): return "Haswell"
        default: return nil
        }
    }

    /// Starts this program again with `OPENBLAS_CORETYPE` set when OpenBLAS chose kernels
    /// slower than the processor supports (see ``kernelFamilyOverride(current:vectorLevel:requested:)``).
    /// OpenBLAS reads the variable only when it loads, before `main`, hence the restart; call
    /// this first thing in `main`, before any thread or MPI starts. Returns only when no
    /// restart is needed or it failed.
    public static func restartWithNativeKernelsIfNeeded() {
        let requested = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        guard let family = kernelFamilyOverride(current: kernelFamily, vectorLevel: Int(ssl_cpu_vector_level()), requested: requested)
        else { return }
        setenv("OPENBLAS_CORETYPE", family, 1)
        // The resolved path, so the restarted process keeps its name (not "exe").
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return }
        execv(buffer, CommandLine.unsafeArgv)
    }
}
