/// Which frozen features of a backbone stand for a whole image in the image-level probes.
///
/// DINO's protocols read the class token: its k-NN evaluation the last block's after the final
/// norm (``classToken``), its linear evaluation those of the last four blocks concatenated
/// (``lastFourClassTokens``, `get_intermediate_layers(x, 4)` in facebookresearch/dino
/// `eval_linear.py`).
public enum FeatureReadout: String, CaseIterable, Sendable {
    /// The class token after the final norm, or the image embedding a task provides in its place
    /// (e.g. SelfPatch's aggregation head when the backbone has no class token).
    case classToken = "class"
    /// The mean of the last block's patch tokens after the final norm.
    case meanPatch = "mean-patch"
    /// ``classToken`` and ``meanPatch`` concatenated.
    case classAndMeanPatch = "class+mean-patch"
    /// The class tokens of the last four blocks, each through the final norm, concatenated.
    case lastFourClassTokens = "last4-class"

    /// The blocks ``lastFourClassTokens`` reads.
    public static let intermediateBlockCount = 4

    /// The read-outs that apply to a backbone of `configuration`, when a task provides an image
    /// embedding for it (`hasImageEmbedding`) or not.
    public static func available(for configuration: VisionTransformerConfiguration, hasImageEmbedding: Bool) -> [FeatureReadout] {
        allCases.filter { $0.unavailability(for: configuration, hasImageEmbedding: hasImageEmbedding) == nil }
    }

    /// Why this read-out does not apply to a backbone of `configuration`, or `nil` when it does.
    public func unavailability(for configuration: VisionTransformerConfiguration, hasImageEmbedding: Bool) -> String? {
        switch self {
        case .meanPatch:
            return nil
        case .classToken, .classAndMeanPatch:
            return configuration.classToken || hasImageEmbedding
                ? nil : "needs a class token or a task's image embedding, and this backbone has neither"
        case .lastFourClassTokens:
            guard configuration.classToken else { return "needs a backbone class token, and this backbone has none" }
            return configuration.depth >= Self.intermediateBlockCount
                ? nil : "needs \(Self.intermediateBlockCount) blocks, and this backbone has \(configuration.depth)"
        }
    }

    /// The width of this read-out's feature for a backbone of `configuration` (for ``classToken``
    /// its class token's width; a task's image embedding may differ).
    public func dimension(for configuration: VisionTransformerConfiguration) -> Int {
        switch self {
        case .classToken, .meanPatch: configuration.embedDimension
        case .classAndMeanPatch: 2 * configuration.embedDimension
        case .lastFourClassTokens: Self.intermediateBlockCount * configuration.embedDimension
        }
    }
}
