#if canImport(Glibc)
import Glibc
#endif

/// DINO's weighted k-nearest-neighbour classifier on frozen image features (facebookresearch/dino `eval_knn.py`).
///
/// Train and test features are L2-normalised; each test row retrieves its `k` most cosine-similar
/// train rows, each neighbour votes for its class with weight exp(similarity / temperature), and
/// classes are ranked by their summed weights. A test row counts for top-1 when its class ranks
/// first and for top-5 when it is among the first min(5, k). Test rows are processed in chunks
/// of any size (one GEMM each), so there is no lower or upper limit on the test-set size.
public struct KNearestNeighborClassifier {
    /// The numbers of neighbours to evaluate; each is clamped to the train-set size.
    public var neighborCounts: [Int]
    /// The temperature of the vote weights exp(similarity / temperature).
    public var temperature: Float
    /// The number of classes; labels are in `0..<classCount`.
    public var classCount: Int

    public init(classCount: Int, neighborCounts: [Int] = [10, 20, 100, 200], temperature: Float = 0.07) {
        precondition(classCount >= 1, "KNearestNeighborClassifier needs at least one class.")
        precondition(
            !neighborCounts.isEmpty && neighborCounts.allSatisfy { $0 >= 1 },
            "KNearestNeighborClassifier: neighbour counts must be positive, got \(neighborCounts).")
        self.classCount = classCount
        self.neighborCounts = neighborCounts
        self.temperature = temperature
    }

    /// Classifies every test row and scores the predictions against `testLabels`.
    ///
    /// - Parameters:
    ///   - trainFeatures: `[trainCount, dim]`, not necessarily normalised.
    ///   - testFeatures: `[testCount, dim]`.
    public func evaluate(
        trainFeatures: Tensor, trainLabels: [Int], testFeatures: Tensor, testLabels: [Int]
    ) -> KNearestNeighborResult {
        let search = CosineNeighborSearch(references: trainFeatures)
        precondition(trainLabels.count == search.count, "k-NN: \(trainLabels.count) train labels for \(search.count) rows.")
        precondition(testLabels.count == testFeatures.shape[0], "k-NN: \(testLabels.count) test labels for \(testFeatures.describe).")
        for label in trainLabels + testLabels {
            precondition(label >= 0 && label < classCount, "k-NN: label \(label) outside 0..<\(classCount).")
        }
        let counts = effectiveNeighborCounts(trainCount: search.count)
        var top1 = [Int](repeating: 0, count: counts.count), top5 = top1
        search.forEachChunk(of: testFeatures, neighborCount: counts.last!) { chunk in
            var scores = [Float](repeating: 0, count: classCount)
            for (row, query) in chunk.queries.enumerated() {
                for c in scores.indices { scores[c] = 0 }
                var counted = 0
                for (position, k) in counts.enumerated() {
                    while counted < k {
                        let neighbor = row * chunk.neighborCount + counted
                        scores[trainLabels[chunk.indices[neighbor]]] += expf(chunk.similarities[neighbor] / temperature)
                        counted += 1
                    }
                    let rank = Self.rank(of: testLabels[query], in: scores)
                    if rank == 0 { top1[position] += 1 }
                    if rank < min(5, k) { top5[position] += 1 }
                }
            }
        }
        return KNearestNeighborResult(accuracies: counts.indices.map {
            .init(neighborCount: counts[$0], top1Correct: top1[$0], top5Correct: top5[$0], total: testLabels.count)
        })
    }

    /// The neighbour counts clamped to `trainCount`, ascending, without repeats.
    public func effectiveNeighborCounts(trainCount: Int) -> [Int] {
        Array(Set(neighborCounts.map { min($0, trainCount) })).sorted()
    }

    /// The position of class `label` when classes are sorted by descending score, equal scores
    /// ordered by class index.
    static func rank(of label: Int, in scores: [Float]) -> Int {
        let own = scores[label]
        var rank = 0
        for (other, score) in scores.enumerated() where score > own || (score == own && other < label) {
            rank += 1
        }
        return rank
    }
}

/// The accuracies of a ``KNearestNeighborClassifier`` evaluation, one per neighbour count.
public struct KNearestNeighborResult: Sendable, Equatable {
    /// Top-1 and top-5 accuracy for one number of neighbours.
    public struct Accuracy: Sendable, Equatable {
        /// The number of neighbours (after clamping to the train-set size).
        public var neighborCount: Int
        /// Test rows whose class ranked first.
        public var top1Correct: Int
        /// Test rows whose class ranked among the first min(5, k).
        public var top5Correct: Int
        /// The number of test rows.
        public var total: Int

        /// The top-1 accuracy as a fraction in [0, 1].
        public var top1: Double { total == 0 ? 0 : Double(top1Correct) / Double(total) }
        /// The top-5 accuracy as a fraction in [0, 1].
        public var top5: Double { total == 0 ? 0 : Double(top5Correct) / Double(total) }
    }

    /// One entry per distinct neighbour count, ascending.
    public var accuracies: [Accuracy]

    /// The entry for `neighborCount` neighbours, if it was evaluated.
    public func accuracy(neighborCount: Int) -> Accuracy? {
        accuracies.first { $0.neighborCount == neighborCount }
    }

    /// The entry with the highest top-1 accuracy (the smaller k on ties).
    public var best: Accuracy {
        accuracies.reduce(accuracies[0]) { $1.top1Correct > $0.top1Correct ? $1 : $0 }
    }

    /// The accuracies as named metrics for a run log: `knn/top1@k` and `knn/top5@k`.
    public func metrics(prefix: String = "knn") -> [String: Double] {
        var metrics: [String: Double] = [:]
        for accuracy in accuracies {
            metrics["\(prefix)/top1@\(accuracy.neighborCount)"] = accuracy.top1
            metrics["\(prefix)/top5@\(accuracy.neighborCount)"] = accuracy.top5
        }
        return metrics
    }
}
