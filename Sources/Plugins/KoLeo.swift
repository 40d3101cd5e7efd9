import SSLCore

/// KoLeo: the Kozachenko-Leonenko differential-entropy regulariser (Sablayrolles et al.,
/// "Spreading vectors for similarity search", ICLR 2019) as DINOv2 applies it
/// (facebookresearch/dinov2 `dinov2/loss/koleo_loss.py` `KoLeoLoss` and
/// `dinov2/train/ssl_meta_arch.py`).
///
/// For each global crop separately, the student's image embeddings of the process's batch are
/// L2-normalised and each is pushed away from its nearest neighbour in that batch:
/// `−mean_i log(‖x_i − x_nn(i)‖ + ε)`. The crops' terms are summed, so the two crops of one
/// image are never compared. DINOv2 weights the sum by 0.1 and reads the backbone's normed
/// class token; here it reads the run's image embedding (the class token unless a task
/// provides one). Any task mix with an image embedding can add it.
public final class KoLeoTask: PretextTask {
    /// KoLeo has no options besides its weight (`--weights`).
    public struct Configuration: TaskConfiguration {
        public init() {}
        public static let help: [String: String] = [:]
    }

    public static let name = "koleo"
    public static let summary = "KoLeo nearest-neighbour entropy regulariser on the image embeddings (Sablayrolles et al., 2019; DINOv2)."
    /// DINOv2's `dino.koleo_loss_weight`.
    public static let defaultWeight = 0.1
    /// `ε` of DINOv2's normalisation, pairwise distance and logarithm.
    public static let epsilon: Float = 1e-8

    public let heads = TaskHeads()
    public let state: [(name: String, tensor: Tensor)] = []

    public init(configuration: Configuration, setup: TaskSetup) throws {}

    public var requirements: TaskRequirements {
        TaskRequirements(needsImageEmbedding: true, minimumImagesPerProcess: 2)
    }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        let terms = (0..<forward.globalViewCount).map { Self.regularizer(forward.imageEmbedding($0, role: .student)) }
        return TaskLoss(total: terms.dropFirst().reduce(terms[0], +))
    }

    /// `KoLeoLoss.forward` on one crop's embeddings `[batch, dim]`: the mean over rows of
    /// `−log(‖x̂_i − x̂_j + ε‖ + ε)`, `x̂` the L2-normalised rows and `j` the row with the largest
    /// inner product with `x̂_i` other than `i` itself (`pairwise_NNs_inner`; ties go to the
    /// lowest index). The neighbour choice is a constant; gradients flow through both rows.
    public static func regularizer(_ embeddings: Tensor) -> Tensor {
        precondition(embeddings.rank == 2 && embeddings.shape[0] >= 2, "KoLeo needs [batch ≥ 2, dim] embeddings, got \(embeddings.describe).")
        let normalized = embeddings.l2Normalized(epsilon: epsilon)
        let neighbors = nearestNeighbors(normalized)
        // PyTorch's `PairwiseDistance(2, eps)` adds ε to the difference before the norm.
        let distances = ((normalized - normalized.gatherRows(neighbors)) + epsilon).squared().sum(axes: [1]).squareRoot()
        return -(distances + epsilon).log().mean()
    }

    /// For every row of `normalized`, the index of the other row with the largest inner product.
    public static func nearestNeighbors(_ normalized: Tensor) -> [Int] {
        let rows = normalized.shape[0]
        let products = GradientMode.withoutGradient { normalized.matmul(normalized.transposed()) }
        return products.withElements { dots in
            (0..<rows).map { row in
                var best = row == 0 ? 1 : 0
                for column in 0..<rows where column != row && dots[row * rows + column] > dots[row * rows + best] {
                    best = column
                }
                return best
            }
        }
    }
}
