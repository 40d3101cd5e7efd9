#if canImport(Glibc)
import Glibc
#endif

/// A training-free dense probe by in-context patch retrieval, after Hummingbird (Balažević et
/// al., "Towards in-context scene understanding", NeurIPS 2023).
///
/// The memory bank holds every train patch that covers a labelled pixel, with its soft label:
/// the label distribution of its pixels. Each test patch retrieves its `k` most cosine-similar
/// memory patches, weights them by the softmax of similarity / temperature over those `k`, and
/// predicts the weighted mean of their soft labels; the patch predictions are upsampled to the
/// pixels (bilinearly by default, as Hummingbird does) and each pixel takes its most likely class.
public struct PatchNeighborProbe {
    /// The number of classes; labels outside `0..<classCount` are ignored.
    public var classCount: Int
    /// The number of retrieved memory patches (clamped to the memory size).
    public var neighborCount: Int
    /// The temperature of the softmax over the neighbours' similarities.
    public var temperature: Float
    /// How patch predictions become pixel predictions.
    public var upsampling: ScoreUpsampling

    public init(classCount: Int, neighborCount: Int = 30, temperature: Float = 0.02, upsampling: ScoreUpsampling = .bilinear) {
        precondition(classCount >= 1 && neighborCount >= 1 && temperature > 0, "PatchNeighborProbe: invalid settings.")
        self.classCount = classCount
        self.neighborCount = neighborCount
        self.temperature = temperature
        self.upsampling = upsampling
    }

    /// The memory bank of `train`: the rows of its patches that cover a labelled pixel, and
    /// their soft labels (`classCount` fractions per row).
    public func memory(train: PatchFeatures, trainLabels: PixelLabels) -> (patches: Tensor, softLabels: [Float]) {
        train.checkMatches(trainLabels)
        let distributions = trainLabels.patchLabelDistributions(
            gridHeight: train.gridHeight, gridWidth: train.gridWidth, classCount: classCount)
        let labelled = (0..<(distributions.count / classCount)).filter { patch in
            distributions[(patch * classCount)..<((patch + 1) * classCount)].contains { $0 > 0 }
        }
        precondition(!labelled.isEmpty, "PatchNeighborProbe: no train patch has a label.")
        return (train.rows.gatherRows(labelled), labelled.flatMap { distributions[($0 * classCount)..<(($0 + 1) * classCount)] })
    }

    /// The predicted label distribution of every test patch, `classCount` values per patch.
    public func predict(train: PatchFeatures, trainLabels: PixelLabels, test: PatchFeatures) -> [Float] {
        let (patches, softLabels) = memory(train: train, trainLabels: trainLabels)
        let search = CosineNeighborSearch(references: patches)
        var predictions = [Float](repeating: 0, count: test.imageCount * test.tokens.shape[1] * classCount)
        var weights = [Float](repeating: 0, count: min(neighborCount, search.count))
        search.forEachChunk(of: test.rows, neighborCount: weights.count) { chunk in
            for row in 0..<chunk.queries.count {
                let neighbors = (row * chunk.neighborCount)..<((row + 1) * chunk.neighborCount)
                // Softmax over the neighbours; the first is the most similar.
                let largest = chunk.similarities[neighbors.lowerBound]
                var total: Float = 0
                for (slot, position) in neighbors.enumerated() {
                    weights[slot] = expf((chunk.similarities[position] - largest) / temperature)
                    total += weights[slot]
                }
                let output = (chunk.queries.lowerBound + row) * classCount
                for (slot, position) in neighbors.enumerated() {
                    let label = chunk.indices[position] * classCount, weight = weights[slot] / total
                    for c in 0..<classCount { predictions[output + c] += weight * softLabels[label + c] }
                }
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
            patchScores: predict(train: train, trainLabels: trainLabels, test: test),
            gridHeight: test.gridHeight, gridWidth: test.gridWidth, classCount: classCount, upsampling: upsampling)
    }
}
