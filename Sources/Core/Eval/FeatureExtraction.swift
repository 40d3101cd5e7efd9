/// Frozen features of a set of images, the input of the probes.
public struct ExtractedFeatures {
    /// One image feature per image, `[images, dim]`, as a ``FeatureReadout`` reads it.
    public var images: Tensor
    /// The patch tokens after the final norm, when requested.
    public var patches: PatchFeatures?
}

extension FeatureNetwork {
    /// The images per batch of ``extractFeatures(_:batchSize:readout:includePatches:progress:)``.
    public static let featureBatchSize = 64

    /// The batches in which ``extractFeatures(_:batchSize:readout:includePatches:progress:)``
    /// runs over `imageCount` images: the steps of its progress.
    public static func featureBatchCount(_ imageCount: Int, batchSize: Int = featureBatchSize) -> Int {
        (imageCount + batchSize - 1) / batchSize
    }

    /// Runs the backbone in evaluation mode and without gradients over `images`
    /// (`[count, 3, height, width]`) in batches of `batchSize`, restoring its mode afterwards.
    ///
    /// - Parameters:
    ///   - readout: which features make the image feature; it must apply to this network
    ///     (``FeatureReadout/unavailability(for:hasImageEmbedding:)``).
    ///     ``FeatureReadout/classToken`` reads the network's image embedding.
    ///   - includePatches: also keep every patch token (`count · patches · dim` floats).
    ///   - progress: advanced by one step per batch.
    public func extractFeatures(
        _ images: Tensor, batchSize: Int = featureBatchSize, readout: FeatureReadout = .classToken, includePatches: Bool = false,
        progress: ProgressReporter? = nil
    ) -> ExtractedFeatures {
        precondition(images.rank == 4 && batchSize >= 1, "extractFeatures: images \(images.describe) must be [count, 3, height, width].")
        if let reason = readout.unavailability(for: backbone.configuration, hasImageEmbedding: embeddingHead != nil) {
            preconditionFailure("extractFeatures: the read-out '\(readout.rawValue)' \(reason).")
        }
        let wasTraining = backbone.isTraining
        backbone.setTraining(false)
        defer { backbone.setTraining(wasTraining) }
        var imageBatches: [Tensor] = [], patchBatches: [Tensor] = []
        var grid = (height: 0, width: 0)
        GradientMode.withoutGradient {
            var start = 0
            while start < images.shape[0] {
                let end = min(start + batchSize, images.shape[0])
                let recorder = readout == .lastFourClassTokens ? ActivationRecorder() : nil
                let features = backbone.features(images.sliced(start..<end, axis: 0), recorder: recorder)
                imageBatches.append(imageFeatures(features, readout: readout, recorder: recorder))
                if includePatches { patchBatches.append(features.outputPatches) }
                grid = (features.gridHeight, features.gridWidth)
                progress?.update(step: (start / batchSize) + 1, images: end)
                start = end
            }
        }
        return ExtractedFeatures(
            images: Tensor.concatenate(imageBatches, axis: 0),
            patches: includePatches
                ? PatchFeatures(tokens: Tensor.concatenate(patchBatches, axis: 0), gridHeight: grid.height, gridWidth: grid.width)
                : nil)
    }

    /// The image features of one pass, `[batch, dim]`; `recorder` holds the pass's block
    /// outputs for ``FeatureReadout/lastFourClassTokens``.
    private func imageFeatures(_ pass: BackboneFeatures, readout: FeatureReadout, recorder: ActivationRecorder?) -> Tensor {
        switch readout {
        case .classToken:
            return imageEmbedding(of: pass)
        case .meanPatch:
            return pass.outputPatches.mean(axes: [1])
        case .classAndMeanPatch:
            return Tensor.concatenate([imageEmbedding(of: pass), pass.outputPatches.mean(axes: [1])], axis: 1)
        case .lastFourClassTokens:
            // DINO's `get_intermediate_layers(x, 4)`: each block's tokens through the final norm.
            let depth = backbone.blocks.count
            return Tensor.concatenate(
                ((depth - FeatureReadout.intermediateBlockCount)..<depth).map { block in
                    backbone.features(
                        lastBlock: recorder!.activations["blocks.\(block)/output"]!,
                        gridHeight: pass.gridHeight, gridWidth: pass.gridWidth
                    ).classToken!
                }, axis: 1)
        }
    }
}
