/// A linear classifier on frozen features, `logits = features · weightᵀ + bias`.
public struct LinearClassifier {
    /// `[classCount, dim]`.
    public let weight: Tensor
    /// `[classCount]`.
    public let bias: Tensor

    public init(weight: Tensor, bias: Tensor) {
        precondition(
            weight.rank == 2 && bias.shape == [weight.shape[0]],
            "LinearClassifier: weight \(weight.describe) and bias \(bias.describe) do not fit.")
        self.weight = weight
        self.bias = bias
    }

    /// The number of classes.
    public var classCount: Int { weight.shape[0] }

    /// The most likely class of every row of `features` (`[count, dim]`), evaluated in chunks
    /// of `chunkSize` rows; ties go to the lower class index.
    public func predict(_ features: Tensor, chunkSize: Int = 4096) -> [Int] {
        precondition(
            features.rank == 2 && features.shape[1] == weight.shape[1],
            "LinearClassifier: features \(features.describe) must be [count, \(weight.shape[1])].")
        var predictions: [Int] = []
        predictions.reserveCapacity(features.shape[0])
        GradientMode.withoutGradient {
            var start = 0
            while start < features.shape[0] {
                let end = min(start + chunkSize, features.shape[0])
                let logits = features.sliced(start..<end, axis: 0).linear(weight: weight, bias: bias)
                logits.withElements { values in
                    for row in 0..<(end - start) {
                        let line = values[(row * classCount)..<((row + 1) * classCount)]
                        predictions.append(line.indices.max { line[$0] < line[$1] || (line[$0] == line[$1] && $0 > $1) }! - row * classCount)
                    }
                }
                start = end
            }
        }
        return predictions
    }

    /// The fraction of rows of `features` classified as `labels`.
    public func accuracy(_ features: Tensor, labels: [Int]) -> Double {
        precondition(labels.count == features.shape[0], "LinearClassifier: \(labels.count) labels for \(features.describe).")
        guard !labels.isEmpty else { return 0 }
        let correct = zip(predict(features), labels).filter { $0 == $1 }.count
        return Double(correct) / Double(labels.count)
    }
}
