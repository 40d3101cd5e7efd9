import SSLCore

/// MoCo v3 for ViTs (Chen, Xie & He, 2021; github facebookresearch/moco-v3): a symmetric InfoNCE loss between the
/// predictor output of one view and the momentum encoder's projection of the other.
///
/// Uses the first two views. The momentum encoder is the run's EMA teacher; for the exact
/// MoCo v3 recipe the trainer updates it before the keys are computed (`--teacher-update
/// before-forward`), which the `mocov3` preset sets.
public final class MoCoTask: PretextTask {
    public struct Configuration: TaskConfiguration {
        public var dimension = 256
        public var mlpDimension = 4096
        public var temperature = 0.2

        public init() {}

        enum CodingKeys: String, CodingKey {
            case dimension = "dim"
            case mlpDimension = "mlp-dim"
            case temperature = "temperature"
        }

        public static let help: [String: String] = [
            "dim": "Output width of the projector and predictor.",
            "mlp-dim": "Hidden width of the projector and predictor.",
            "temperature": "Softmax temperature τ of the contrastive loss (the loss is scaled by 2τ).",
        ]
    }

    public static let name = "moco"
    public static let summary = "MoCo v3 contrastive learning with a momentum encoder (Chen et al., 2021)."
    /// MoCo v3's two symmetric views, crops of scale 0.08…1.
    public static let augmentation: AugmentationRecipe? = .twoView

    public let configuration: Configuration
    public let projector: Sequential
    public let predictor: Sequential
    public let momentumProjector: Sequential
    public let heads: TaskHeads

    public init(configuration: Configuration, setup: TaskSetup) throws {
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        let width = setup.backbone.embedDimension
        func mlp(layers: Int, input: Int) -> Sequential {
            Self.projectionMLP(
                layers: layers, inputDimension: input, hiddenDimension: configuration.mlpDimension,
                outputDimension: configuration.dimension, collective: setup.collective, generator: &generator)
        }
        projector = mlp(layers: 3, input: width)
        predictor = mlp(layers: 2, input: configuration.dimension)
        momentumProjector = mlp(layers: 3, input: width)
        heads = TaskHeads([.head("head", projector, teacher: momentumProjector), .head("predictor", predictor)])
    }

    public var requirements: TaskRequirements {
        TaskRequirements(minimumGlobalViews: 2, needsImageEmbedding: true)
    }

    public var state: [(name: String, tensor: Tensor)] { [] }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let forward = step.forward
        // Separate calls per view, so batch norm uses each view's own statistics.
        let queries = (0..<2).map { predictor(projector(forward.imageEmbedding($0, role: .student))) }
        let keys = (0..<2).map { view in
            GradientMode.withoutGradient { momentumProjector(forward.imageEmbedding(view, role: .teacher)) }
        }
        let first = contrastiveLoss(queries[0], keys[1], step.collective)
        let second = contrastiveLoss(queries[1], keys[0], step.collective)
        return TaskLoss(total: first + second, terms: ["ctr_12": Double(first.scalar), "ctr_21": Double(second.scalar)])
    }

    /// InfoNCE of `query` against the keys of every process, the positive of local row n being
    /// global row n + batch·rank, scaled by 2τ.
    private func contrastiveLoss(_ query: Tensor, _ key: Tensor, _ collective: Collective) -> Tensor {
        let batch = query.shape[0]
        let allKeys = collective.allGather(GradientMode.withoutGradient { key.l2Normalized() })
        let logits = query.l2Normalized().matmul(allKeys.transposed())
        let positives = (0..<batch).map { $0 + batch * collective.rank }
        let temperature = configuration.temperature
        return logits.crossEntropy(labels: positives, temperature: Float(temperature)).mean() * Float(2 * temperature)
    }
}

extension MoCoTask {
    /// MoCo v3's projector and predictor (`_build_mlp` in moco-v3's `moco/builder.py`): `layers`
    /// bias-free linear layers, each but the last followed by batch norm and ReLU, the last by a
    /// batch norm without affine parameters; batch statistics over the global per-view batch
    /// (`collective`), as MoCo v3's SyncBN.
    static func projectionMLP(
        layers: Int, inputDimension: Int, hiddenDimension: Int, outputDimension: Int, collective: Collective,
        generator: inout RandomGenerator
    ) -> Sequential {
        var steps: [Sequential.Layer] = []
        for layer in 0..<layers {
            let isLast = layer == layers - 1
            let input = layer == 0 ? inputDimension : hiddenDimension, output = isLast ? outputDimension : hiddenDimension
            steps.append(.linear(Linear(defaultInitializationWith: input, outputFeatures: output, bias: false, generator: &generator)))
            let norm = BatchNorm1d(features: output, affine: !isLast)
            norm.collective = collective
            steps.append(.batchNorm(norm))
            if !isLast { steps.append(.relu) }
        }
        return Sequential(steps)
    }
}
