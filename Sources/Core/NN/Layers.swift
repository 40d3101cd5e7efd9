/// A fully connected layer `y = x · weightᵀ + bias`, weight `[outputFeatures, inputFeatures]`.
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    /// A layer with weights from a truncated normal (std 0.02, DINO's ViT initialisation) and
    /// zero biases.
    public init(inputFeatures: Int, outputFeatures: Int, bias: Bool = true, generator: inout RandomGenerator) {
        weight = Tensor.truncatedNormal([outputFeatures, inputFeatures], standardDeviation: 0.02, generator: &generator)
        weight.requiresGradient = true
        self.bias = bias ? Tensor.zeros([outputFeatures]) : nil
        self.bias?.requiresGradient = true
    }

    /// A layer with PyTorch's default `nn.Linear` initialisation, U(±1/√inputFeatures) for
    /// weight and bias.
    public init(defaultInitializationWith inputFeatures: Int, outputFeatures: Int, bias: Bool = true,
                generator: inout RandomGenerator) {
        let bound = 1 / Float(inputFeatures).squareRoot()
        weight = Tensor.randomUniform([outputFeatures, inputFeatures], lower: -bound, upper: bound, generator: &generator)
        weight.requiresGradient = true
        self.bias = bias ? Tensor.randomUniform([outputFeatures], lower: -bound, upper: bound, generator: &generator) : nil
        self.bias?.requiresGradient = true
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight: weight, bias: bias) }
}

/// Layer normalisation over the last axis with learned scale and shift.
public final class LayerNorm: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let epsilon: Float

    public init(features: Int, epsilon: Float = 1e-6) {
        weight = Tensor.ones([features])
        bias = Tensor.zeros([features])
        weight.requiresGradient = true
        bias.requiresGradient = true
        self.epsilon = epsilon
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] { [("weight", weight), ("bias", bias)] }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, epsilon: epsilon) }
}

/// Batch normalisation of `[batch, features]` with running statistics, as `BatchNorm1d`.
public final class BatchNorm1d: Module {
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVariance: Tensor
    /// The number of training batches seen, saved as PyTorch's `num_batches_tracked`.
    public let batchesTracked: Tensor
    public let momentum: Float
    public let epsilon: Float
    /// When set, training statistics cover the batches of all its processes (synchronised
    /// batch norm).
    public var collective: Collective?

    public init(features: Int, affine: Bool = true, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        weight = affine ? Tensor.ones([features]) : nil
        bias = affine ? Tensor.zeros([features]) : nil
        weight?.requiresGradient = true
        bias?.requiresGradient = true
        runningMean = Tensor.zeros([features])
        runningVariance = Tensor.ones([features])
        batchesTracked = Tensor.zeros([])
        self.momentum = momentum
        self.epsilon = epsilon
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] {
        [weight.map { ("weight", $0) }, bias.map { ("bias", $0) }].compactMap { $0 }
    }

    public override var ownBuffers: [(name: String, tensor: Tensor)] {
        [("running_mean", runningMean), ("running_var", runningVariance), ("num_batches_tracked", batchesTracked)]
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        if isTraining { batchesTracked.storage.base[0] += 1 }
        return x.batchNorm(
            weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
            training: isTraining, momentum: momentum, epsilon: epsilon, collective: collective)
    }
}

/// A 3 × 3 convolution (stride 1, padding 1) as patches + one GEMM, with PyTorch's `Conv2d`
/// parameters and default initialisation.
public final class Convolution3x3: Module {
    /// `[outputChannels, inputChannels, 3, 3]`.
    public let weight: Tensor
    public let bias: Tensor

    public init(inputChannels: Int, outputChannels: Int, generator: inout RandomGenerator) {
        let bound = 1 / Float(inputChannels * 9).squareRoot()
        weight = Tensor.randomUniform([outputChannels, inputChannels, 3, 3], lower: -bound, upper: bound, generator: &generator)
        bias = Tensor.randomUniform([outputChannels], lower: -bound, upper: bound, generator: &generator)
        weight.requiresGradient = true
        bias.requiresGradient = true
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] {
        [("weight", weight), ("bias", bias)]
    }

    /// Convolves `[batch, channels, height, width]` images, then applies GELU: `[batch,
    /// outputChannels, height, width]`.
    public func geluConvolution(_ images: Tensor) -> Tensor {
        let outputChannels = weight.shape[0]
        let rows = images.patches(size: 3, stride: 1, padding: 1)
            .linear(weight: weight.reshaped([outputChannels, -1]), bias: bias)
            .gelu()
        return rows.transposed(1, 2).reshaped([images.shape[0], outputChannels, images.shape[2], images.shape[3]])
    }
}

/// The transformer feed-forward network: `fc2(GELU(fc1(x)))`.
public final class MLP: Module {
    public let fc1: Linear
    public let fc2: Linear

    public init(features: Int, hiddenFeatures: Int, generator: inout RandomGenerator) {
        fc1 = Linear(inputFeatures: features, outputFeatures: hiddenFeatures, generator: &generator)
        fc2 = Linear(inputFeatures: hiddenFeatures, outputFeatures: features, generator: &generator)
    }

    public override var submodules: [(name: String, module: Module)] { [("fc1", fc1), ("fc2", fc2)] }

    public func callAsFunction(_ x: Tensor, recorder: ActivationRecorder? = nil) -> Tensor {
        activateAndProject(fc1(x), recorder: recorder)
    }

    /// `fc2(GELU(hidden))` for the output of `fc1`.
    func activateAndProject(_ hidden: Tensor, recorder: ActivationRecorder?) -> Tensor {
        recorder?.record("fc1", hidden)
        if let recorder { recorder.record("gelu", GradientMode.withoutGradient { hidden.gelu() }) }
        let output = hidden.geluLinear(weight: fc2.weight, bias: fc2.bias)
        recorder?.record("fc2", output)
        return output
    }
}

/// Receives named intermediate activations during a forward pass, for tests, attention maps and
/// feature extraction.
public final class ActivationRecorder {
    /// The activations recorded so far, by dotted name.
    public private(set) var activations: [String: Tensor] = [:]
    private let prefix: String

    public init() { prefix = "" }

    private init(prefix: String, sharing parent: ActivationRecorder) {
        self.prefix = prefix
        self.parent = parent
    }

    private var parent: ActivationRecorder?

    /// Stores `tensor` under `name` (within this recorder's scope).
    public func record(_ name: String, _ tensor: Tensor) {
        if let parent {
            parent.record(prefix + name, tensor)
        } else {
            activations[prefix + name] = tensor.detached()
        }
    }

    /// A recorder that stores under `scope/` within this one.
    public func scoped(_ scope: String) -> ActivationRecorder {
        ActivationRecorder(prefix: scope + "/", sharing: self)
    }
}
