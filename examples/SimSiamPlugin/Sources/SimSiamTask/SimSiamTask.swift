import SSLCore

/// A SimSiam-style pretext task (Chen & He, 2021), written outside the framework to show how a
/// plugin is added: a projector and a predictor on the image embeddings of the first two
/// views, and the symmetric negative cosine between each view's prediction and the other
/// view's (stop-gradient) projection.
///
/// Everything is composed from `Tensor` operations, so there is no backward pass to write.
public final class SimSiamTask: PretextTask {
    /// The task's options; the coding keys are the command-line names (`--simsiam.dim`).
    public struct Configuration: TaskConfiguration {
        public var dimension = 256
        public var predictorDimension = 64

        public init() {}

        enum CodingKeys: String, CodingKey {
            case dimension = "dim"
            case predictorDimension = "predictor-dim"
        }

        public static let help: [String: String] = [
            "dim": "Output width of the projector.",
            "predictor-dim": "Hidden width of the predictor.",
        ]
    }

    public static let name = "simsiam"
    public static let summary = "SimSiam-style siamese prediction with a stop-gradient (example plugin)."

    public let projector: Linear
    public let projectorNorm: BatchNorm1d
    /// Linear, batch norm, ReLU, linear: keys `predictor.0`, `predictor.1`, `predictor.3`.
    public let predictor: Sequential
    public let heads: TaskHeads

    public init(configuration: Configuration, setup: TaskSetup) throws {
        var generator = setup.generator(for: Self.name)
        let width = setup.backbone.embedDimension
        projector = Linear(inputFeatures: width, outputFeatures: configuration.dimension, generator: &generator)
        projectorNorm = BatchNorm1d(features: configuration.dimension)
        predictor = Sequential([
            .linear(Linear(
                inputFeatures: configuration.dimension, outputFeatures: configuration.predictorDimension, generator: &generator)),
            .batchNorm(BatchNorm1d(features: configuration.predictorDimension)),
            .relu,
            .linear(Linear(
                inputFeatures: configuration.predictorDimension, outputFeatures: configuration.dimension, generator: &generator)),
        ])
        heads = TaskHeads([.head("projector", projector), .head("projector_norm", projectorNorm), .head("predictor", predictor)])
    }

    public var requirements: TaskRequirements {
        TaskRequirements(minimumGlobalViews: 2, needsImageEmbedding: true)
    }

    /// SimSiam keeps no state besides its parameters.
    public var state: [(name: String, tensor: Tensor)] { [] }

    public func loss(_ step: TaskStep) -> TaskLoss {
        let projections = (0..<2).map { projectorNorm(projector(step.forward.imageEmbedding($0, role: .student))) }
        let predictions = projections.map { predictor($0) }
        let first = negativeCosine(predictions[0], projections[1].detached())
        let second = negativeCosine(predictions[1], projections[0].detached())
        return TaskLoss(total: (first + second) * 0.5)
    }

    /// The mean over rows of −cos(a, b).
    private func negativeCosine(_ a: Tensor, _ b: Tensor) -> Tensor {
        -(a.l2Normalized() * b.l2Normalized()).sum(axes: [1]).mean()
    }
}
