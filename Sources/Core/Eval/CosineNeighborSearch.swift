/// Finds, for each query row, the rows of a reference set with the highest cosine similarity.
///
/// Both sets are L2-normalised, the similarities of a chunk of queries to all references are one
/// GEMM, and the `k` best of each row are kept, so memory stays bounded for any number of
/// queries. Neighbours come in descending similarity; equal similarities keep the lower
/// reference index first.
public struct CosineNeighborSearch {
    /// The L2-normalised references, `[references, dim]`.
    public let references: Tensor
    /// The most similarity values held at once (a chunk of queries × all references).
    public var maximumChunkElements: Int

    /// The neighbours of a contiguous chunk of queries.
    public struct Chunk {
        /// The positions of the queries of this chunk.
        public var queries: Range<Int>
        /// The number of neighbours per query.
        public var neighborCount: Int
        /// Reference indices, `neighborCount` per query, most similar first.
        public var indices: [Int]
        /// The cosine similarities matching ``indices``.
        public var similarities: [Float]
    }

    /// Prepares a search over `references`, `[count, dim]` (normalised here).
    public init(references: Tensor, maximumChunkElements: Int = 1 << 23) {
        precondition(references.rank == 2, "CosineNeighborSearch: references must be [count, dim], got \(references.describe).")
        self.references = GradientMode.withoutGradient { references.detached().l2Normalized() }
        self.maximumChunkElements = maximumChunkElements
    }

    /// The number of references.
    public var count: Int { references.shape[0] }

    /// Calls `body` with the `neighborCount` nearest references of every query of `queries`
    /// (`[count, dim]`, normalised here), chunk by chunk in query order.
    public func forEachChunk(of queries: Tensor, neighborCount: Int, _ body: (Chunk) throws -> Void) rethrows {
        let dimension = references.shape[1]
        precondition(
            queries.rank == 2 && queries.shape[1] == dimension,
            "CosineNeighborSearch: queries \(queries.describe) must be [count, \(dimension)].")
        precondition(
            neighborCount >= 1 && neighborCount <= count,
            "CosineNeighborSearch: \(neighborCount) neighbours requested from \(count) references.")
        let normalized = GradientMode.withoutGradient { queries.detached().l2Normalized() }
        let queryCount = queries.shape[0]
        let rowsPerChunk = max(1, min(queryCount, maximumChunkElements / max(count, 1)))
        let similarities = Tensor(uninitializedShape: [rowsPerChunk, count])
        var start = 0
        while start < queryCount {
            let rows = min(rowsPerChunk, queryCount - start)
            BLAS.gemm(
                transposeB: true, m: rows, n: count, k: dimension,
                a: normalized.storage.base + start * dimension, lda: dimension,
                b: references.storage.base, ldb: dimension, c: similarities.storage.base, ldc: count)
            var indices = [Int](repeating: 0, count: rows * neighborCount)
            var values = [Float](repeating: 0, count: rows * neighborCount)
            indices.withUnsafeMutableBufferPointer { indexBuffer in
                values.withUnsafeMutableBufferPointer { valueBuffer in
                    let pointers = UncheckedSendable((similarities.storage.base, indexBuffer.baseAddress!, valueBuffer.baseAddress!))
                    let columns = count
                    Parallel.forEachChunk(of: rows, minimumChunk: max(1, 200_000 / max(columns, 1))) { _, range in
                        let (line, index, value) = pointers.value
                        for row in range {
                            Self.selectLargest(
                                line + row * columns, count: columns, keep: neighborCount,
                                indices: index + row * neighborCount, values: value + row * neighborCount)
                        }
                    }
                }
            }
            try body(Chunk(queries: start..<(start + rows), neighborCount: neighborCount, indices: indices, similarities: values))
            start += rows
        }
    }

    /// Writes the `keep` largest of `count` values, in descending order (ties: lower index
    /// first), using a bounded heap whose root is the worst value kept.
    static func selectLargest(
        _ line: UnsafePointer<Float>, count: Int, keep: Int,
        indices: UnsafeMutablePointer<Int>, values: UnsafeMutablePointer<Float>
    ) {
        /// Whether entry `a` ranks below entry `b`.
        func worse(_ a: Int, _ b: Int) -> Bool { line[a] < line[b] || (line[a] == line[b] && a > b) }
        var heap = [Int]()
        heap.reserveCapacity(keep)
        func siftDown(_ start: Int) {
            var parent = start
            while true {
                let left = 2 * parent + 1, right = left + 1
                var worst = parent
                if left < heap.count && worse(heap[left], heap[worst]) { worst = left }
                if right < heap.count && worse(heap[right], heap[worst]) { worst = right }
                if worst == parent { return }
                heap.swapAt(parent, worst)
                parent = worst
            }
        }
        // Candidates arrive in ascending index order, so one equal to the worst kept value
        // ranks below it: only strictly larger values can enter a full heap (NaN never does).
        var threshold = -Float.infinity
        for candidate in 0..<count {
            if heap.count < keep {
                heap.append(candidate)
                var child = heap.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    guard worse(heap[child], heap[parent]) else { break }
                    heap.swapAt(child, parent)
                    child = parent
                }
                if heap.count == keep { threshold = line[heap[0]] }
            } else if line[candidate] > threshold {
                heap[0] = candidate
                siftDown(0)
                threshold = line[heap[0]]
            }
        }
        heap.sort { worse($1, $0) }
        for (position, index) in heap.enumerated() {
            indices[position] = index
            values[position] = line[index]
        }
    }
}
