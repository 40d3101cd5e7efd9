extension Tensor {
    /// Rows of zeros with a 1 at each label: shape `[labels.count, classes]`, no gradient.
    public static func oneHot(_ labels: [Int], classes: Int) -> Tensor {
        precondition(classes > 0, "oneHot: classes must be positive, got \(classes).")
        let result = Tensor.zeros([labels.count, classes])
        for (row, label) in labels.enumerated() {
            precondition((0..<classes).contains(label), "oneHot: label \(label) of row \(row) is not in 0..<\(classes).")
            result.storage.base[row * classes + label] = 1
        }
        return result
    }

    /// The position of each row's largest element along the last axis (the first on ties).
    public func argmax() -> [Int] {
        precondition(rank >= 1 && shape[rank - 1] > 0, "argmax on \(describe).")
        let columns = shape[rank - 1], values = storage.base
        return (0..<rowCount).map { row in
            let line = values + row * columns
            var best = 0
            for column in 1..<max(columns, 1) where line[column] > line[best] { best = column }
            return best
        }
    }

    /// The cross-entropy `−log softmax(self / temperature)[label]` of each row of logits
    /// `[N, C]` against integer labels in `0..<C`: shape `[N]`, differentiable in the logits.
    public func crossEntropy(labels: [Int], temperature: Float = 1) -> Tensor {
        precondition(rank == 2 && labels.count == shape[0], "crossEntropy: \(labels.count) labels for logits \(describe).")
        return softCrossEntropy(targets: .oneHot(labels, classes: shape[1]), temperature: temperature)
    }
}
