#if canImport(Glibc)
import Glibc
#endif

/// Cheap signals of a self-supervised run's health, logged alongside the losses.
///
/// - Teacher entropy (mean per-sample entropy of the teacher's output distribution): near
///   log K when the teacher collapses to the uniform distribution, low when it is sharp.
/// - KL divergence of the batch-mean teacher distribution to uniform: near log K when one
///   dimension dominates every sample (the other collapse), low when the batch spreads over
///   the prototypes. A healthy DINO teacher has both low.
/// - Embedding standard deviation (SimSiam's collapse check): the mean over dimensions of the
///   per-dimension standard deviation of L2-normalised embeddings; 0 when every sample maps to
///   the same point, about 1/√dim for well-spread embeddings.
/// - Gradient norm: the L2 norm of a set of gradients (e.g. one task's on the shared backbone).
public enum HealthMetrics {
    /// Entropy and KL-to-uniform of a batch of teacher distributions.
    public struct TeacherDistribution: Sendable, Equatable {
        /// The mean over samples of −Σₖ pₖ log pₖ (nats).
        public var entropy: Double
        /// KL(mean distribution ‖ uniform) = log K − H(mean distribution) (nats).
        public var klDivergenceToUniform: Double
    }

    /// Measures teacher probabilities `[samples, K]` (or any rank; the last axis is K) whose
    /// rows sum to 1.
    public static func teacherDistribution(_ probabilities: Tensor) -> TeacherDistribution {
        precondition(probabilities.rank >= 1 && probabilities.count > 0, "teacherDistribution: empty probabilities.")
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
        return TeacherDistribution(
            entropy: entropyTotal / Double(rows), klDivergenceToUniform: Glibc.log(Double(classes)) - meanEntropy)
    }

    /// The mean over dimensions of the per-dimension standard deviation (unbiased, as
    /// `torch.std`) of the L2-normalised rows of `embeddings` (`[samples, dim]`, at least two
    /// samples).
    public static func embeddingStandardDeviation(_ embeddings: Tensor) -> Double {
        precondition(embeddings.rank == 2 && embeddings.shape[0] >= 2, "embeddingStandardDeviation needs [samples ≥ 2, dim].")
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
        return total / Double(columns)
    }

    /// The L2 norm of all gradients of `parameters` taken together (parameters without a
    /// gradient count as zero).
    public static func gradientNorm(_ parameters: [(name: String, tensor: Tensor)]) -> Double {
        parameters.reduce(0.0) { $0 + ($1.tensor.gradient?.sumOfSquares ?? 0) }.squareRoot()
    }
}
