#if canImport(Glibc)
import Glibc
#endif

/// The health of one task's training at one step: cheap signals of collapse, which the trainer
/// logs as `<task>.teacher_entropy`, `<task>.teacher_kl_uniform` and `<task>.embedding_std`
/// and a ``CollapseMonitor`` watches.
public struct TaskHealth: Sendable, Equatable {
    /// The teacher's output distributions, for a task that distils into prototypes.
    public var teacher: TeacherDistribution?
    /// The spread of the student's embeddings.
    public var embeddingSpread: EmbeddingSpread?

    public init(teacher: TeacherDistribution? = nil, embeddingSpread: EmbeddingSpread? = nil) {
        self.teacher = teacher
        self.embeddingSpread = embeddingSpread
    }

    /// The values to log, by term name.
    public var terms: [String: Double] {
        var terms: [String: Double] = [:]
        if let teacher {
            terms["teacher_entropy"] = teacher.entropy
            terms["teacher_kl_uniform"] = teacher.klDivergenceToUniform
        }
        if let embeddingSpread { terms["embedding_std"] = embeddingSpread.standardDeviation }
        return terms
    }
}

/// Entropy and KL-to-uniform of a batch of teacher distributions over K prototypes.
///
/// The mean per-sample entropy is near log K when the teacher collapses to the uniform
/// distribution and low when it is sharp. The KL divergence of the batch-mean distribution to
/// uniform is near log K when one prototype takes every sample (the other collapse) and low
/// when the batch spreads over the prototypes. A healthy DINO teacher has both low.
public struct TeacherDistribution: Sendable, Equatable {
    /// The mean over samples of −Σₖ pₖ log pₖ (nats).
    public var entropy: Double
    /// KL(mean distribution ‖ uniform) = log K − H(mean distribution) (nats).
    public var klDivergenceToUniform: Double
    /// K.
    public var prototypeCount: Int

    /// Measures teacher probabilities `[samples, K]` (or any rank; the last axis is K) whose
    /// rows sum to 1.
    public init(probabilities: Tensor) {
        precondition(probabilities.rank >= 1 && probabilities.count > 0, "TeacherDistribution: empty probabilities.")
        let classes = probabilities.shape[probabilities.rank - 1]
        let rows = probabilities.count / classes
        var entropyTotal = 0.0
        var meanDistribution = [Double](repeating: 0, count: classes)
        probabilities.withElements { p in
            for row in 0..<rows {
                for k in 0..<classes {
                    let value = Double(p[row * classes + k])
                    if value > 0 { entropyTotal -= value * Glibc.log(value) }
                    meanDistribution[k] += value
                }
            }
        }
        var meanEntropy = 0.0
        for k in 0..<classes {
            let value = meanDistribution[k] / Double(rows)
            if value > 0 { meanEntropy -= value * Glibc.log(value) }
        }
        entropy = entropyTotal / Double(rows)
        klDivergenceToUniform = Glibc.log(Double(classes)) - meanEntropy
        prototypeCount = classes
    }

    /// log K: the entropy of the uniform distribution, and the largest KL to it.
    public var maximumEntropy: Double { Glibc.log(Double(prototypeCount)) }
}

/// The spread of a batch of embeddings (SimSiam's collapse check): the mean over dimensions of
/// the per-dimension standard deviation (unbiased, as `torch.std`) of the L2-normalised rows.
/// It is 0 when every sample maps to the same point and about 1/√dim for well-spread embeddings.
public struct EmbeddingSpread: Sendable, Equatable {
    public var standardDeviation: Double
    /// The embeddings' width.
    public var dimension: Int

    /// Measures `embeddings` (`[samples ≥ 2, dim]`).
    public init(embeddings: Tensor) {
        precondition(embeddings.rank == 2 && embeddings.shape[0] >= 2, "EmbeddingSpread needs [samples ≥ 2, dim].")
        let rows = embeddings.shape[0], columns = embeddings.shape[1]
        let normalized = GradientMode.withoutGradient { embeddings.detached().l2Normalized() }
        var total = 0.0
        normalized.withElements { values in
            for column in 0..<columns {
                var mean = 0.0
                for row in 0..<rows { mean += Double(values[row * columns + column]) }
                mean /= Double(rows)
                var squares = 0.0
                for row in 0..<rows {
                    let deviation = Double(values[row * columns + column]) - mean
                    squares += deviation * deviation
                }
                total += (squares / Double(rows - 1)).squareRoot()
            }
        }
        standardDeviation = total / Double(columns)
        dimension = columns
    }

    /// The spread of embeddings scattered evenly over the sphere: 1/√dim.
    public var wellSpread: Double { 1 / Double(dimension).squareRoot() }
}
