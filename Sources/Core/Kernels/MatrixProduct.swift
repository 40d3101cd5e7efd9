/// One matrix product C ← alpha · op(A) · op(B) + beta · C over row-major matrices, where
/// op(A) is m×k and op(B) is k×n, and how it is split across cores.
///
/// Every product kernel of the engine runs single-threaded on a part of C; this type cuts a
/// large product into parts by rows of C (or by columns when there are few rows), so the
/// engine keeps one threading system.
struct MatrixProduct {
    var transposeA: Bool, transposeB: Bool
    var m: Int, n: Int, k: Int
    var alpha: Float
    var a: UnsafePointer<Float>, lda: Int
    var b: UnsafePointer<Float>, ldb: Int
    var beta: Float
    var c: UnsafeMutablePointer<Float>, ldc: Int

    /// Products below this many multiply-adds run on the calling thread: waking a worker costs
    /// tens of microseconds.
    static let parallelThreshold = 4_000_000

    /// Runs `kernel` over the product, on parts split across cores when `parallel` is set and
    /// the product is large. An empty product does nothing and a product with `k == 0` scales C
    /// by `beta` without calling `kernel`.
    func run(parallel: Bool, kernel: (MatrixProduct) -> Void) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            scaleResult()
            return
        }
        guard parallel, Parallel.threadCount > 1, m * n * k >= Self.parallelThreshold else {
            kernel(self)
            return
        }
        let product = UncheckedSendable(self)
        if m >= n {
            Parallel.forEachChunk(of: m, minimumChunk: 16) { _, rows in kernel(product.value.rows(rows)) }
        } else {
            Parallel.forEachChunk(of: n, minimumChunk: 16) { _, columns in kernel(product.value.columns(columns)) }
        }
    }

    /// The part of the product that writes `range` of C's rows (rows of op(A)).
    func rows(_ range: Range<Int>) -> MatrixProduct {
        var part = self
        part.m = range.count
        part.a = transposeA ? a + range.lowerBound : a + range.lowerBound * lda
        part.c = c + range.lowerBound * ldc
        return part
    }

    /// The part of the product that writes `range` of C's columns (columns of op(B)).
    func columns(_ range: Range<Int>) -> MatrixProduct {
        var part = self
        part.n = range.count
        part.b = transposeB ? b + range.lowerBound * ldb : b + range.lowerBound
        part.c = c + range.lowerBound
        return part
    }

    private func scaleResult() {
        for row in 0..<m {
            let line = c + row * ldc
            if beta == 0 {
                line.update(repeating: 0, count: n)
            } else {
                for column in 0..<n { line[column] *= beta }
            }
        }
    }
}
