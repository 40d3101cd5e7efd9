/// Turns normalised images into the features the probes read: a backbone's, or raw pixels, the
/// baseline every figure stands beside.
public protocol ProbeFeatureSource {
    /// One feature row per image of `images` (`[count, 3, height, width]`): `[count, dim]`;
    /// `progress`, when given, is advanced by one step per batch of
    /// ``FeatureNetwork/featureBatchSize`` images.
    func imageFeatures(_ images: Tensor, progress: ProgressReporter?) -> Tensor
    /// One feature row per patch of `images` (`[count, 3, height, width]`), `progress` as for
    /// ``imageFeatures(_:progress:)``.
    func patchFeatures(_ images: Tensor, progress: ProgressReporter?) -> PatchFeatures
}

extension ProbeFeatureSource {
    /// One feature row per image of `images`, without progress.
    public func imageFeatures(_ images: Tensor) -> Tensor { imageFeatures(images, progress: nil) }
    /// One feature row per patch of `images`, without progress.
    public func patchFeatures(_ images: Tensor) -> PatchFeatures { patchFeatures(images, progress: nil) }
}

/// A frozen network's features: the image feature a ``FeatureReadout`` reads, and the patch
/// tokens after the final norm.
public struct BackboneFeatureSource: ProbeFeatureSource {
    /// The network probed (run in evaluation mode, without gradients), with its image embedding.
    public var network: FeatureNetwork
    /// Which features make the image feature.
    public var readout: FeatureReadout

    public init(network: FeatureNetwork, readout: FeatureReadout = .classToken) {
        self.network = network
        self.readout = readout
    }

    public func imageFeatures(_ images: Tensor, progress: ProgressReporter?) -> Tensor {
        network.extractFeatures(images, readout: readout, progress: progress).images
    }

    public func patchFeatures(_ images: Tensor, progress: ProgressReporter?) -> PatchFeatures {
        // The dense probes read patch tokens only; any read-out that applies serves the pass.
        FeatureNetwork(backbone: network.backbone)
            .extractFeatures(images, readout: .meanPatch, includePatches: true, progress: progress).patches!
    }
}

/// Raw pixels as features: the normalised image flattened for the image probes, and each
/// patch's `patchSize × patchSize × 3` normalised values for the patch probes.
public struct PixelFeatureSource: ProbeFeatureSource {
    /// The side of the patches, that of the backbone compared with.
    public var patchSize: Int

    public init(patchSize: Int) {
        precondition(patchSize >= 1, "PixelFeatureSource: the patch size must be positive, got \(patchSize).")
        self.patchSize = patchSize
    }

    /// The pixels need no pass, so `progress` is not advanced.
    public func imageFeatures(_ images: Tensor, progress: ProgressReporter?) -> Tensor {
        images.reshaped([images.shape[0], images.count / max(images.shape[0], 1)])
    }

    /// The pixels need no pass, so `progress` is not advanced.
    public func patchFeatures(_ images: Tensor, progress: ProgressReporter?) -> PatchFeatures {
        PatchFeatures(
            tokens: GradientMode.withoutGradient { images.detached().patches(size: patchSize) },
            gridHeight: images.shape[2] / patchSize, gridWidth: images.shape[3] / patchSize)
    }
}
