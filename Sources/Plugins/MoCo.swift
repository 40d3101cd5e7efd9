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
    public let projector: ProjectionMLP
    public let predictor: ProjectionMLP
    public let momentumProjector: ProjectionMLP
    public let heads: TaskHeads

    public init(configuration: Configuration, setup: TaskSetup) throws {
        self.configuration = configuration
        var generator = setup.generator(for: Self.name)
        let width = setup.backbone.embedDimension
        projector = ProjectionMLP(
            layers: 3, inputDimension: width, hiddenDimension: configuration.mlpDimension,
            outputDimension: configuration.dimension, lastBatchNorm: true, generator: &generator)
        predictor = ProjectionMLP(
            layers: 2, inputDimension: configuration.dimension, hiddenDimension: configuration.mlpDimension,
            outputDimension: configuration.dimension, lastBatchNorm: true, generator: &generator)
        momentumProjector = ProjectionMLP(
            layers: 3, inputDimension: width, hiddenDimension: configuration.mlpDimension,
            outputDimension: configuration.dimension, lastBatchNorm: true, generator: &generator)
        // Batch statistics over the global per-view batch, as MoCo v3's SyncBN.
        for norm in projector.norms + predictor.norms + momentumProjector.norms { norm.collective = setup.collective }
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
        let labels = Tensor.zeros(logits.shape)
        for row in 0..<batch { labels.storage.base[row * logits.shape[1] + row + batch * collective.rank] = 1 }
        let temperature = configuration.temperature
        return logits.softCrossEntropy(targets: labels, temperature: Float(temperature)).mean() * Float(2 * temperature)
    }
}

/// MoCo v3's projector and predictor: `layers` bias-free linear layers, each but the last
/// followed by batch norm and ReLU, the last optionally by a batch norm without affine
/// parameters. Keys follow PyTorch's `nn.Sequential` numbering (`0`, `1`, `3`, `4`, `6`, `7`).
public final class ProjectionMLP: Module {
    public let linears: [Linear]
    public let norms: [BatchNorm1d]

    public init(
        layers: Int, inputDimension: Int, hiddenDimension: Int, outputDimension: Int, lastBatchNorm: Bool,
        generator: inout RandomGenerator
    ) {
        var linears: [Linear] = [], norms: [BatchNorm1d] = []
        for layer in 0..<layers {
            let input = layer == 0 ? inputDimension : hiddenDimension
            let isLast = layer == layers - 1
            let output = isLast ? outputDimension : hiddenDimension
            linears.append(Linear(defaultInitializationWith: input, outputFeatures: output, bias: false, generator: &generator))
            if !isLast {
                norms.append(BatchNorm1d(features: output))
            } else if lastBatchNorm {
                norms.append(BatchNorm1d(features: output, affine: false))
            }
        }
        self.linears = linears
        self.norms = norms
    }

    public override var submodules: [(name: String, module: Module)] {
        var result: [(name: String, module: Module)] = []
        for (layer, linear) in linears.enumerated() {
            result.append(("\(3 * layer)", linear))
            if layer < norms.count { result.append(("\(3 * layer + 1)", norms[layer])) }
        }
        return result
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var hidden = x
        for (layer, linear) in linears.enumerated() {
            hidden = linear(hidden)
            if layer < norms.count { hidden = norms[layer](hidden) }
            if layer < linears.count - 1 { hidden = hidden.relu() }
        }
        return hidden
    }
}
