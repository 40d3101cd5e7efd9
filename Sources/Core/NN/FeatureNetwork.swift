/// A backbone as its features are read — by the tasks during training, by the probes and by
/// feature extraction: the backbone's tokens, and an image embedding that is the backbone's
/// class token unless an embedding head computes it (the task heads that provide the image
/// embedding, such as SelfPatch's aggregation head in the original recipe).
///
/// A trainer builds one for either network (`trainer.featureNetwork(.teacher)`), and a
/// checkpoint gives one (`FeatureNetwork(checkpoint:network:registry:)`), so code probes the
/// same embedding as `ssl-run eval`.
public struct FeatureNetwork {
    /// The backbone.
    public let backbone: VisionTransformer
    /// Computes the image embedding `[batch, dim]` of a backbone pass in place of the class
    /// token; `nil` when the class token serves.
    public let embeddingHead: ((BackboneFeatures) -> Tensor)?

    public init(backbone: VisionTransformer, embeddingHead: ((BackboneFeatures) -> Tensor)? = nil) {
        self.backbone = backbone
        self.embeddingHead = embeddingHead
    }

    /// The backbone's features of `images` (`[batch, 3, height, width]`).
    public func features(_ images: Tensor) -> BackboneFeatures {
        backbone.features(images)
    }

    /// The image embedding `[batch, dim]` of a pass of this network's backbone: the embedding
    /// head's output, else the class token after the final norm.
    public func imageEmbedding(of features: BackboneFeatures) -> Tensor {
        if let embeddingHead { return embeddingHead(features) }
        guard let token = features.classToken else {
            preconditionFailure(
                "The backbone has no class token and no task provides an image embedding; "
                    + "enable the class token or add a task with an aggregation head.")
        }
        return token
    }
}
