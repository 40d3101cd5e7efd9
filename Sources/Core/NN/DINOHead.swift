/// DINO's projection head: an MLP to a bottleneck, L2 normalisation, and a weight-normalised
/// linear layer to `outputDimension` prototypes.
///
/// Parameter names follow PyTorch's `DINOHead`: `mlp.0`, `mlp.2`, `mlp.4` (with batch norm
/// `mlp.0`, `mlp.1`, `mlp.3`, `mlp.4`, `mlp.6`), `last_layer.weight_g` `[K, 1]` and
/// `last_layer.weight_v` `[K, bottleneck]`. With `normalizeLastLayer` the magnitudes `g` stay 1 and
/// frozen, so every logit is a cosine similarity.
public final class DINOHead: Module {
    /// The MLP's layers in order, with their positions in PyTorch's `nn.Sequential`.
    public let layers: [(index: Int, linear: Linear, batchNorm: BatchNorm1d?)]
    /// `v`, `[outputDimension, bottleneckDimension]`.
    public let lastLayerDirection: Tensor
    /// `g`, `[outputDimension, 1]`.
    public let lastLayerMagnitude: Tensor
    private let singleLayer: Bool

    public init(
        inputDimension: Int, outputDimension: Int, hiddenDimension: Int = 2048,
        bottleneckDimension: Int = 256, layerCount: Int = 3, batchNorm: Bool = false,
        normalizeLastLayer: Bool = true, generator: inout RandomGenerator
    ) {
        precondition(layerCount >= 1, "DINOHead needs at least one MLP layer.")
        var layers: [(Int, Linear, BatchNorm1d?)] = []
        var index = 0
        for layer in 0..<layerCount {
            let input = layer == 0 ? inputDimension : hiddenDimension
            let output = layer == layerCount - 1 ? bottleneckDimension : hiddenDimension
            let linear = Linear(inputFeatures: input, outputFeatures: output, generator: &generator)
            let isLast = layer == layerCount - 1
            let norm = batchNorm && !isLast ? BatchNorm1d(features: output) : nil
            layers.append((index, linear, norm))
            index += isLast ? 1 : (norm == nil ? 2 : 3)
        }
        self.layers = layers
        singleLayer = layerCount == 1
        let bound = 1 / Float(bottleneckDimension).squareRoot()
        lastLayerDirection = Tensor.randomUniform(
            [outputDimension, bottleneckDimension], lower: -bound, upper: bound, generator: &generator)
        lastLayerDirection.requiresGradient = true
        lastLayerMagnitude = Tensor.ones([outputDimension, 1])
        lastLayerMagnitude.requiresGradient = !normalizeLastLayer
    }

    public override var ownParameters: [(name: String, tensor: Tensor)] {
        [("last_layer.weight_g", lastLayerMagnitude), ("last_layer.weight_v", lastLayerDirection)]
    }

    public override var submodules: [(name: String, module: Module)] {
        if singleLayer { return [("mlp", layers[0].linear)] }
        return layers.flatMap { layer -> [(name: String, module: Module)] in
            [("mlp.\(layer.index)", layer.linear as Module)]
                + (layer.batchNorm.map { [("mlp.\(layer.index + 1)", $0 as Module)] } ?? [])
        }
    }

    /// The bottleneck features before normalisation, `[rows, bottleneck]`.
    public func bottleneck(_ x: Tensor) -> Tensor {
        // Every layer but the first reads GELU of the previous output, fused into its GEMM.
        var hidden = layers[0].linear(x)
        for index in layers.indices.dropFirst() {
            if let norm = layers[index - 1].batchNorm { hidden = norm(hidden) }
            hidden = hidden.geluLinear(weight: layers[index].linear.weight, bias: layers[index].linear.bias)
        }
        return hidden
    }

    /// The effective last-layer matrix `g · v / ‖v‖` (rows of unit norm when `g` = 1).
    public var lastLayerWeight: Tensor {
        Tensor.weightNormalized(direction: lastLayerDirection, magnitude: lastLayerMagnitude)
    }

    /// Prototype logits for `x` of shape `[rows, inputDimension]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        bottleneck(x).l2Normalized().weightNormalizedLinear(direction: lastLayerDirection, magnitude: lastLayerMagnitude)
    }
}
