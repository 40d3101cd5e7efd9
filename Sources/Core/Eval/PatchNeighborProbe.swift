#if canImport(Glibc)
import Glibc
#endif

/// A training-free dense probe: every test patch takes the weighted vote of its `k` most
/// cosine-similar train patches, and the patch predictions are scored per pixel.
///
/// Train patches carry the majority label of their pixels (patches without a labelled pixel do
/// not vote). Votes are weighted exp(similarity / temperature) as in DINO's image k-NN, which
/// also settles ties between equally frequent labels; remaining exact ties go to the lower class.
public struct PatchNeighborProbe {
    /// The number of classes; labels outside `0..<classCount` are ignored.
    public var classCount: Int
    /// The number of voting neighbours (clamped to the number of labelled train patches).
    public var neighborCount: Int
    /// The temperature of the vote weights.
    public var temperature: Float

    public init(classCount: Int, neighborCount: Int = 10, temperature: Float = 0.07) {
        precondition(classCount >= 1 && neighborCount >= 1, "PatchNeighborProbe: invalid settings.")
        self.classCount = classCount
        self.neighborCount = neighborCount
        self.temperature = temperature
    }

    /// The predicted class of every test patch, `test.imageCount · patches` values.
    public func predict(train: PatchFeatures, trainLabels: PixelLabels, test: PatchFeatures) -> [Int] {
        train.checkMatches(trainLabels)
        let patchLabels = trainLabels.patchMajorityLabels(
            gridHeight: train.gridHeight, gridWidth: train.gridWidth, classCount: classCount)
        let labelled = patchLabels.indices.filter { patchLabels[$0] >= 0 }
        precondition(!labelled.isEmpty, "PatchNeighborProbe: no train patch has a label.")
        let search = CosineNeighborSearch(references: train.rows.gatherRows(labelled))
        let voters = labelled.map { patchLabels[$0] }
        var predictions: [Int] = []
        predictions.reserveCapacity(test.imageCount * test.tokens.shape[1])
        search.forEachChunk(of: test.rows, neighborCount: min(neighborCount, labelled.count)) { chunk in
            var scores = [Float](repeating: 0, count: classCount)
            for row in 0..<chunk.queries.count {
                for c in scores.indices { scores[c] = 0 }
                for position in (row * chunk.neighborCount)..<((row + 1) * chunk.neighborCount) {
                    scores[voters[chunk.indices[position]]] += expf(chunk.similarities[position] / temperature)
                }
                predictions.append(scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) }!)
            }
        }
        return predictions
    }

    /// Predicts every test patch and scores the predictions against `testLabels` per pixel.
    public func evaluate(
        train: PatchFeatures, trainLabels: PixelLabels, test: PatchFeatures, testLabels: PixelLabels
    ) -> SegmentationMetrics {
        test.checkMatches(testLabels)
        return testLabels.evaluate(
            patchPredictions: predict(train: train, trainLabels: trainLabels, test: test),
            gridHeight: test.gridHeight, gridWidth: test.gridWidth, classCount: classCount)
    }
}
