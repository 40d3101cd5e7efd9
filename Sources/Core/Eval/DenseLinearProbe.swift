/// A linear classifier on frozen patch tokens, scored per pixel (mIoU, pixel accuracy).
///
/// Training targets are per patch: the majority class of each patch's pixels
/// (``PixelLabels/patchMajorityLabels(gridHeight:gridWidth:classCount:)``; patches without a
/// labelled pixel are left out). This trains on one row per patch, which is cheap and, at the
/// patch resolution the classifier predicts anyway, loses only the sub-patch detail that nearest
/// upsampling cannot express. Evaluation upsamples each patch's prediction to its pixels
/// (nearest) and accumulates a confusion matrix against the pixel labels.
///
/// The optimisation and the learning-rate sweep are those of ``LinearProbe``; the sweep keeps
/// the learning rate with the best validation mIoU.
public struct DenseLinearProbe {
    /// The number of classes; labels outside `0..<classCount` are ignored.
    public var classCount: Int
    /// The optimisation settings and learning rates to sweep.
    public var probe: LinearProbe

    public init(classCount: Int, probe: LinearProbe = LinearProbe(epochs: 20)) {
        self.classCount = classCount
        self.probe = probe
    }

    /// Trains on `train`/`trainLabels` and scores every learning rate on `validation`;
    /// `progress` is advanced as by ``LinearProbe/fit(trainFeatures:trainLabels:validationFeatures:validationLabels:classCount:progress:)``.
    public func fit(
        train: PatchFeatures, trainLabels: PixelLabels, validation: PatchFeatures, validationLabels: PixelLabels,
        progress: ProgressReporter? = nil
    ) -> DenseProbeResult {
        train.checkMatches(trainLabels)
        validation.checkMatches(validationLabels)
        let patchLabels = trainLabels.patchMajorityLabels(
            gridHeight: train.gridHeight, gridWidth: train.gridWidth, classCount: classCount)
        let labelled = patchLabels.indices.filter { patchLabels[$0] >= 0 }
        let rows = train.rows.gatherRows(labelled)
        let targets = labelled.map { patchLabels[$0] }
        let sweep = probe.sweep(features: rows, labels: targets, classCount: classCount, progress: progress) { classifier in
            let metrics = validationLabels.evaluate(
                patchPredictions: classifier.predict(validation.rows),
                gridHeight: validation.gridHeight, gridWidth: validation.gridWidth, classCount: classCount)
            return (metrics.meanIntersectionOverUnion, metrics)
        }
        return DenseProbeResult(
            metrics: sweep.best.evaluation, learningRate: sweep.best.learningRate,
            sweep: sweep.scores.map { .init(learningRate: $0.learningRate, meanIntersectionOverUnion: $0.score) },
            classifier: sweep.best.classifier)
    }
}

/// The outcome of a ``DenseLinearProbe`` sweep.
public struct DenseProbeResult {
    /// One learning rate of the sweep and the validation mIoU it reached.
    public struct Trial: Sendable, Equatable {
        public var learningRate: Double
        /// The validation mIoU, a fraction in [0, 1].
        public var meanIntersectionOverUnion: Double
    }

    /// The pixel-level scores of the best classifier on the validation split.
    public var metrics: SegmentationMetrics
    /// The learning rate of the best classifier.
    public var learningRate: Double
    /// Every learning rate tried, in sweep order.
    public var sweep: [Trial]
    /// The best classifier (patch token → class).
    public var classifier: LinearClassifier
}
