/// Multi-head self-attention with one packed `qkv` projection and an output projection.
public final class Attention: Module {
    public let heads: Int
    public let qkv: Linear
    public let proj: Linear

    public init(features: Int, heads: Int, qkvBias: Bool = true, generator: inout RandomGenerator) {
        precondition(features % heads == 0, "Attention: \(features) features do not split into \(heads) heads.")
        self.heads = heads
        qkv = Linear(inputFeatures: features, outputFeatures: 3 * features, bias: qkvBias, generator: &generator)
        proj = Linear(inputFeatures: features, outputFeatures: features, generator: &generator)
    }

    public override var submodules: [(name: String, module: Module)] { [("qkv", qkv), ("proj", proj)] }

    /// Attends over `x` of shape `[batch, length, features]`.
    public func callAsFunction(_ x: Tensor, recorder: ActivationRecorder? = nil) -> Tensor {
        attend(packed: qkv(x), recorder: recorder)
    }

    /// Attends given the `qkv` projection's output; with a `residual`, returns `residual` plus
    /// the attention's output.
    func attend(packed: Tensor, addingTo residual: Tensor? = nil, recorder: ActivationRecorder?) -> Tensor {
        recorder?.record("qkv", packed)
        let (attended, probabilities) = Tensor.selfAttention(qkv: packed, heads: heads)
        recorder?.record("attn_probs", probabilities)
        return attended.linear(weight: proj.weight, bias: proj.bias, addingTo: residual)
    }
}

/// A pre-norm transformer block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`, each branch
/// with stochastic depth in training.
public final class Block: Module {
    public let norm1: LayerNorm
    public let attn: Attention
    public let norm2: LayerNorm
    public let mlp: MLP
    public let dropPathRate: Float

    public init(
        features: Int, heads: Int, mlpRatio: Int = 4, qkvBias: Bool = true, dropPathRate: Float = 0,
        layerNormEpsilon: Float = 1e-6, generator: inout RandomGenerator
    ) {
        norm1 = LayerNorm(features: features, epsilon: layerNormEpsilon)
        attn = Attention(features: features, heads: heads, qkvBias: qkvBias, generator: &generator)
        norm2 = LayerNorm(features: features, epsilon: layerNormEpsilon)
        mlp = MLP(features: features, hiddenFeatures: mlpRatio * features, generator: &generator)
        self.dropPathRate = dropPathRate
    }

    public override var submodules: [(name: String, module: Module)] {
        [("norm1", norm1), ("attn", attn), ("norm2", norm2), ("mlp", mlp)]
    }

    public func callAsFunction(
        _ x: Tensor, generator: inout RandomGenerator, recorder: ActivationRecorder? = nil
    ) -> Tensor {
        let rate = isTraining ? dropPathRate : 0
        if let recorder { recorder.record("norm1", GradientMode.withoutGradient { norm1(x) }) }
        // LayerNorm and the projection that reads it run as one operation (see layerNormLinear).
        let packed = x.layerNormLinear(
            normWeight: norm1.weight, normBias: norm1.bias, epsilon: norm1.epsilon, weight: attn.qkv.weight, bias: attn.qkv.bias)
        if rate == 0 && recorder == nil {
            // The biases and skip connections are added in the passes that read the products
            // (linear(weight:bias:addingTo:), geluLinear): no product starts from a bias and no
            // skip connection takes a pass of its own. Drop path, or a recorder keeping every
            // intermediate, takes the path below.
            let residual = attn.attend(packed: packed, addingTo: x, recorder: nil)
            let product = residual.layerNormLinear(
                normWeight: norm2.weight, normBias: norm2.bias, epsilon: norm2.epsilon, weight: mlp.fc1.weight, bias: nil)
            return product.geluLinear(
                preActivationBias: mlp.fc1.bias, weight: mlp.fc2.weight, bias: mlp.fc2.bias, addingTo: residual)
        }
        let attended = attn.attend(packed: packed, recorder: recorder)
        recorder?.record("attn_out", attended)
        let residual = x + attended.dropPath(rate: rate, generator: &generator)
        recorder?.record("residual1", residual)
        if let recorder { recorder.record("norm2", GradientMode.withoutGradient { norm2(residual) }) }
        let hidden = residual.layerNormLinear(
            normWeight: norm2.weight, normBias: norm2.bias, epsilon: norm2.epsilon, weight: mlp.fc1.weight, bias: mlp.fc1.bias)
        let output = residual + mlp.activateAndProject(hidden, recorder: recorder).dropPath(rate: rate, generator: &generator)
        recorder?.record("output", output)
        return output
    }
}
