/// Multi-head attention in which only a class token queries: keys and values come from the
/// class token and the other tokens (CaiT's class attention), with separate `q`, `k`, `v`
/// projections.
public final class ClassAttention: Module {
    public let heads: Int
    public let q: Linear, k: Linear, v: Linear, proj: Linear

    public init(features: Int, heads: Int, generator: inout RandomGenerator) {
        precondition(features % heads == 0, "ClassAttention: \(features) features do not split into \(heads) heads.")
        self.heads = heads
        q = Linear(inputFeatures: features, outputFeatures: features, generator: &generator)
        k = Linear(inputFeatures: features, outputFeatures: features, generator: &generator)
        v = Linear(inputFeatures: features, outputFeatures: features, generator: &generator)
        proj = Linear(inputFeatures: features, outputFeatures: features, generator: &generator)
    }

    public override var submodules: [(name: String, module: Module)] {
        [("q", q), ("k", k), ("v", v), ("proj", proj)]
    }

    /// Attends from row 0 of `sequence` (`[batch, 1 + tokens, features]`) over all rows.
    ///
    /// - Returns: the updated class row, `[batch, 1, features]`, and the attention
    ///   probabilities `[batch, heads, 1, 1 + tokens]`.
    public func callAsFunction(_ sequence: Tensor) -> (output: Tensor, probabilities: Tensor) {
        let query = q(sequence.sliced(0..<1, axis: 1))
        let (attended, probabilities) = Tensor.attention(query: query, key: k(sequence), value: v(sequence), heads: heads)
        return (proj(attended), probabilities)
    }
}

/// A class-attention block: the class token attends over itself and the tokens, then passes
/// through an MLP, each with a residual connection; the tokens are not updated. Parameter
/// names follow SelfPatch's `cls_blocks.i.*`.
public final class ClassAttentionBlock: Module {
    public let norm1: LayerNorm
    public let attn: ClassAttention
    public let norm2: LayerNorm
    public let mlp: MLP

    public init(features: Int, heads: Int, mlpRatio: Int = 4, layerNormEpsilon: Float = 1e-6, generator: inout RandomGenerator) {
        norm1 = LayerNorm(features: features, epsilon: layerNormEpsilon)
        attn = ClassAttention(features: features, heads: heads, generator: &generator)
        norm2 = LayerNorm(features: features, epsilon: layerNormEpsilon)
        mlp = MLP(features: features, hiddenFeatures: mlpRatio * features, generator: &generator)
    }

    public override var submodules: [(name: String, module: Module)] {
        [("norm1", norm1), ("attn", attn), ("norm2", norm2), ("mlp", mlp)]
    }

    /// Updates `classToken` (`[batch, 1, features]`) from `tokens` (`[batch, length, features]`).
    public func callAsFunction(tokens: Tensor, classToken: Tensor) -> Tensor {
        let sequence = norm1(Tensor.concatenate([classToken, tokens], axis: 1))
        let updated = classToken + attn(sequence).output
        return updated + mlp(norm2(updated))
    }
}
