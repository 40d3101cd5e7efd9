/// A confusion matrix over per-pixel predictions, and the segmentation scores derived from it.
///
/// Labels outside `0..<classCount` (e.g. an "ignore" value such as 255) are skipped, as are
/// their predictions.
public struct SegmentationMetrics: Sendable, Equatable {
    /// The number of classes.
    public let classCount: Int
    /// Counts indexed `[truth * classCount + prediction]`.
    public private(set) var confusion: [Int]

    public init(classCount: Int) {
        precondition(classCount >= 1, "SegmentationMetrics needs at least one class.")
        self.classCount = classCount
        confusion = [Int](repeating: 0, count: classCount * classCount)
    }

    /// Metrics for a given confusion matrix (rows truth, columns prediction).
    public init(confusion: [[Int]]) {
        self.init(classCount: confusion.count)
        precondition(confusion.allSatisfy { $0.count == classCount }, "SegmentationMetrics: the confusion matrix must be square.")
        self.confusion = confusion.flatMap { $0 }
    }

    /// Adds one pixel per pair of `predictions` and `labels`.
    public mutating func accumulate(predictions: [Int], labels: [Int]) {
        precondition(predictions.count == labels.count, "SegmentationMetrics: \(predictions.count) predictions for \(labels.count) labels.")
        for (prediction, truth) in zip(predictions, labels) where truth >= 0 && truth < classCount {
            precondition(prediction >= 0 && prediction < classCount, "SegmentationMetrics: prediction \(prediction) outside 0..<\(classCount).")
            confusion[truth * classCount + prediction] += 1
        }
    }

    /// Adds the counts of `other`, which must have as many classes.
    public mutating func merge(_ other: SegmentationMetrics) {
        precondition(other.classCount == classCount, "SegmentationMetrics: class counts differ.")
        for i in confusion.indices { confusion[i] += other.confusion[i] }
    }

    /// The number of pixels counted.
    public var pixelCount: Int { confusion.reduce(0, +) }

    /// The fraction of counted pixels whose prediction is right.
    public var pixelAccuracy: Double {
        let total = pixelCount
        guard total > 0 else { return 0 }
        return Double((0..<classCount).reduce(0) { $0 + confusion[$1 * classCount + $1] }) / Double(total)
    }

    /// Intersection over union per class: TP / (TP + FP + FN), `nil` for a class that neither
    /// occurs in the labels nor is predicted.
    public var classIntersectionOverUnion: [Double?] {
        (0..<classCount).map { c in
            let truePositives = confusion[c * classCount + c]
            var union = 0
            for other in 0..<classCount {
                union += confusion[c * classCount + other] + confusion[other * classCount + c]
            }
            union -= truePositives
            return union == 0 ? nil : Double(truePositives) / Double(union)
        }
    }

    /// The mean IoU over the classes present (those with a non-`nil` IoU: in the labels or the
    /// predictions), 0 when nothing was counted.
    public var meanIntersectionOverUnion: Double {
        let present = classIntersectionOverUnion.compactMap { $0 }
        return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
    }

    /// The scores as named metrics for a run log: `prefix/mIoU` and `prefix/pixel_accuracy`.
    public func metrics(prefix: String) -> [String: Double] {
        ["\(prefix)/mIoU": meanIntersectionOverUnion, "\(prefix)/pixel_accuracy": pixelAccuracy]
    }
}
