/// Frozen features of a set of images, the input of the probes.
public struct ExtractedFeatures {
    /// One image feature per image, `[images, dim]`: the class token after the final norm (as
    /// DINO's k-NN and linear protocols use), the embedding a task provides in its place, or
    /// the mean patch token for a backbone with neither.
    public var images: Tensor
    /// The patch tokens after the final norm, when requested.
    public var patches: PatchFeatures?
}

extension VisionTransformer {
    /// Runs the backbone in evaluation mode and without gradients over `images`
    /// (`[count, 3, height, width]`) in batches of `batchSize`, restoring its mode afterwards.
    ///
    /// - Parameters:
    ///   - includePatches: also keep every patch token (`count · patches · dim` floats).
    ///   - imageEmbedding: the image feature of a pass, when a task provides one (e.g.
    ///     ``Trainer/imageEmbedding`` for the teacher); by default the class token.
    ///   - progress: advanced by one step per batch.
    public func extractFeatures(
        _ images: Tensor, batchSize: Int = 64, includePatches: Bool = false,
        imageEmbedding: ((BackboneFeatures) -> Tensor)? = nil, progress: ProgressReporter? = nil
    ) -> ExtractedFeatures {
        precondition(images.rank == 4 && batchSize >= 1, "extractFeatures: images \(images.describe) must be [count, 3, height, width].")
        let wasTraining = isTraining
        setTraining(false)
        defer { setTraining(wasTraining) }
        var imageBatches: [Tensor] = [], patchBatches: [Tensor] = []
        var grid = (height: 0, width: 0)
        GradientMode.withoutGradient {
            var start = 0
            while start < images.shape[0] {
                let end = min(start + batchSize, images.shape[0])
                let features = features(images.sliced(start..<end, axis: 0))
                let patches = features.outputPatches
                imageBatches.append(imageEmbedding?(features) ?? features.classToken ?? patches.mean(axes: [1]))
                if includePatches { patchBatches.append(patches) }
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
}
