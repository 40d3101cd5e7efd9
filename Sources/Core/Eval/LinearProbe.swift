#if canImport(Glibc)
import Glibc
#endif

/// Trains linear classifiers on frozen features, as DINO's linear evaluation does (facebookresearch/dino `eval_linear.py`):
/// weight ~ N(0, 0.01²), bias 0, cross-entropy, SGD with momentum 0.9 and no weight decay,
/// learning rate annealed per epoch along a cosine to 0, shuffled mini-batches (the last one may
/// be smaller). ``fit(trainFeatures:trainLabels:validationFeatures:validationLabels:classCount:)``
/// sweeps a few learning rates and keeps the one with the best validation top-1.
///
/// Everything random (initial weights, batch order) follows from ``seed``, and every learning
/// rate of the sweep starts from the same initial weights.
public struct LinearProbe {
    /// Passes over the training rows per learning rate.
    public var epochs: Int
    /// Rows per mini-batch.
    public var batchSize: Int
    /// The peak learning rates tried by the sweep.
    public var learningRates: [Double]
    /// The SGD momentum.
    public var momentum: Double
    /// Seeds the initial weights and the batch order.
    public var seed: UInt64

    public init(
        epochs: Int = 100, batchSize: Int = 256, learningRates: [Double] = [0.001, 0.01, 0.1, 1],
        momentum: Double = 0.9, seed: UInt64 = 0
    ) {
        precondition(epochs >= 1 && batchSize >= 1 && !learningRates.isEmpty, "LinearProbe: invalid settings.")
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRates = learningRates
        self.momentum = momentum
        self.seed = seed
    }

    /// The learning rate of epoch `epoch` for peak `learningRate`: PyTorch's
    /// `CosineAnnealingLR(T_max: epochs, eta_min: 0)` stepped once per epoch.
    public func learningRate(_ learningRate: Double, atEpoch epoch: Int) -> Double {
        0.5 * learningRate * (1 + cos(Double.pi * Double(epoch) / Double(epochs)))
    }

    /// The epochs of a whole sweep: ``epochs`` per learning rate.
    public var sweepEpochs: Int { epochs * learningRates.count }

    /// An `onEpoch` of ``train(features:labels:classCount:learningRate:onEpoch:)`` that advances
    /// `progress` through the sweep, the run of learning rate `sweepIndex` over `rows` rows.
    func reportingEpochs(to progress: ProgressReporter?, sweepIndex: Int, rows: Int) -> ((Int, Double) -> Void)? {
        progress.map { progress in
            { epoch, loss in
                let done = sweepIndex * epochs + epoch + 1
                progress.update(step: done, images: done * rows, loss: loss)
            }
        }
    }

    /// Trains one classifier with peak learning rate `learningRate`.
    ///
    /// - Parameters:
    ///   - features: `[count, dim]` frozen features.
    ///   - labels: one class in `0..<classCount` per row.
    ///   - onEpoch: called after every epoch with the epoch index and its mean training loss.
    public func train(
        features: Tensor, labels: [Int], classCount: Int, learningRate: Double,
        onEpoch: ((_ epoch: Int, _ loss: Double) -> Void)? = nil
    ) -> LinearClassifier {
        precondition(features.rank == 2, "LinearProbe: features must be [count, dim], got \(features.describe).")
        precondition(labels.count == features.shape[0], "LinearProbe: \(labels.count) labels for \(features.describe).")
        precondition(labels.allSatisfy { $0 >= 0 && $0 < classCount }, "LinearProbe: a label is outside 0..<\(classCount).")
        let count = features.shape[0], dimension = features.shape[1]
        var generator = RandomGenerator(seed: seed)
        let weight = Tensor.randomNormal([classCount, dimension], standardDeviation: 0.01, generator: &generator)
        let bias = Tensor.zeros([classCount])
        weight.requiresGradient = true
        bias.requiresGradient = true
        let optimizer = SGD(parameters: [("weight", weight), ("bias", bias)], learningRate: learningRate, momentum: momentum)
        let inputs = features.detached()
        for epoch in 0..<epochs {
            optimizer.learningRate = self.learningRate(learningRate, atEpoch: epoch)
            var order = Array(0..<count)
            var shuffler = RandomGenerator(seed: seed, path: [UInt64(epoch)])
            order.shuffle(using: &shuffler)
            var lossTotal = 0.0
            var start = 0
            while start < count {
                let batch = Array(order[start..<min(start + batchSize, count)])
                let targets = Tensor.zeros([batch.count, classCount])
                for (row, index) in batch.enumerated() { targets.storage.base[row * classCount + labels[index]] = 1 }
                let loss = GradientMode.withGradient {
                    inputs.gatherRows(batch).linear(weight: weight, bias: bias)
                        .softCrossEntropy(targets: targets, temperature: 1).mean()
                }
                loss.backward()
                optimizer.step()
                weight.gradient = nil
                bias.gradient = nil
                lossTotal += Double(loss.scalar) * Double(batch.count)
                start += batchSize
            }
            onEpoch?(epoch, lossTotal / Double(max(count, 1)))
        }
        weight.requiresGradient = false
        bias.requiresGradient = false
        return LinearClassifier(weight: weight, bias: bias)
    }

    /// Trains one classifier per learning rate of ``learningRates`` and keeps the one with the
    /// highest top-1 accuracy on the validation rows (the smaller learning rate on ties).
    ///
    /// Pass the test split as validation when there is no separate one, as DINO does.
    ///
    /// - Parameter progress: advanced by one step per epoch of each learning rate
    ///   (``sweepEpochs`` steps in all), with the epoch's mean training loss.
    public func fit(
        trainFeatures: Tensor, trainLabels: [Int], validationFeatures: Tensor, validationLabels: [Int], classCount: Int,
        progress: ProgressReporter? = nil
    ) -> LinearProbeResult {
        let sweep = sweep(features: trainFeatures, labels: trainLabels, classCount: classCount, progress: progress) { classifier in
            let top1 = classifier.accuracy(validationFeatures, labels: validationLabels)
            return (top1, top1)
        }
        return LinearProbeResult(
            top1: sweep.best.evaluation, learningRate: sweep.best.learningRate,
            sweep: sweep.scores.map { .init(learningRate: $0.learningRate, top1: $0.score) }, classifier: sweep.best.classifier)
    }

    /// Trains one classifier per learning rate of ``learningRates`` and keeps the one whose
    /// `evaluate` scores highest (the smaller learning rate on ties), with its evaluation and
    /// every learning rate's score in sweep order; `progress` advances by one step per epoch.
    func sweep<Evaluation>(
        features: Tensor, labels: [Int], classCount: Int, progress: ProgressReporter?,
        evaluate: (LinearClassifier) -> (score: Double, evaluation: Evaluation)
    ) -> (best: (learningRate: Double, classifier: LinearClassifier, evaluation: Evaluation),
          scores: [(learningRate: Double, score: Double)]) {
        var best: (learningRate: Double, classifier: LinearClassifier, evaluation: Evaluation, score: Double)?
        var scores: [(learningRate: Double, score: Double)] = []
        for (index, rate) in learningRates.enumerated() {
            let classifier = train(
                features: features, labels: labels, classCount: classCount, learningRate: rate,
                onEpoch: reportingEpochs(to: progress, sweepIndex: index, rows: features.shape[0]))
            let (score, evaluation) = evaluate(classifier)
            scores.append((rate, score))
            if best == nil || score > best!.score { best = (rate, classifier, evaluation, score) }
        }
        return ((best!.learningRate, best!.classifier, best!.evaluation), scores)
    }
}

/// The outcome of a ``LinearProbe`` sweep.
public struct LinearProbeResult {
    /// One learning rate of the sweep and the validation top-1 it reached.
    public struct Trial: Sendable, Equatable {
        public var learningRate: Double
        /// Validation top-1 accuracy as a fraction in [0, 1].
        public var top1: Double
    }

    /// The best validation top-1 accuracy, a fraction in [0, 1].
    public var top1: Double
    /// The learning rate that reached it.
    public var learningRate: Double
    /// Every learning rate tried, in sweep order.
    public var sweep: [Trial]
    /// The classifier trained with ``learningRate``.
    public var classifier: LinearClassifier
}
