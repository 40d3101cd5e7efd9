/// The pictures a run report shows for a backbone on a few images: the last block's
/// class-token attention per head, the principal components of the patch features, and each
/// image's patch similarity to its centre patch with its most similar neighbours outlined (the
/// positives a patch-level task such as SelfPatch picks).
public enum RunPictures {
    /// Writes the pictures as PNG files into `folder`, named with `prefix`, and returns them
    /// for a ``RunSummary``; `neighborCount` neighbours are outlined (the run's
    /// ``TrainingRecipe/patchNeighborCount(registry:)``).
    public static func write(
        backbone: VisionTransformer, images: Tensor, folder: String, prefix: String, scale: Int = 8, neighborCount: Int = 4
    ) throws -> [RunSummary.Picture] {
        let recorder = ActivationRecorder()
        let wasTraining = backbone.isTraining
        backbone.setTraining(false)
        defer { backbone.setTraining(wasTraining) }
        let features = GradientMode.withoutGradient { backbone.features(images, recorder: recorder) }
        let height = features.gridHeight, width = features.gridWidth
        let count = images.shape[0]
        var pictures: [RunSummary.Picture] = []
        func save(_ image: Image, _ name: String, _ title: String) throws {
            let path = "\(folder)/\(prefix)-\(name).png"
            try ImageEncoder.writePNG(image, to: path)
            pictures.append(RunSummary.Picture(title: title, path: path))
        }
        let inputs = (0..<count).map { Image.fromImage(images.sliced($0..<($0 + 1)).reshaped(Array(images.shape.dropFirst()))) }
        try save(Image.tiled(inputs.map { $0.scaled(by: max(1, scale * height / $0.height)) }, columns: count), "inputs", "\(prefix): inputs")
        if backbone.classSlots > 0, let attention = recorder.activations["blocks.\(backbone.blocks.count - 1)/attn_probs"] {
            let maps = (0..<count).flatMap { Image.classTokenAttention(probabilities: attention, sample: $0, gridHeight: height, gridWidth: width, scale: scale) }
            try save(Image.tiled(maps, columns: backbone.configuration.heads), "attention", "\(prefix): last-block class-token attention per head (rows: images)")
        }
        let patches = features.outputPatches
        try save(Image.tiled(Image.principalComponents(patches: patches, gridHeight: height, gridWidth: width, scale: scale), columns: count),
                 "pca", "\(prefix): first three principal components of the patch features")
        // Patch-level tasks match on the raw last-block tokens, so the map shows those.
        let centre = (height / 2) * width + width / 2
        let rawPatches = features.lastBlockPatches
        let chosen = NeighborTable(height: height, width: width).mostSimilarNeighbors(rawPatches, count: neighborCount)
        let maps = (0..<count).map { sample in
            let cells = height * width, first = (sample * cells + centre) * neighborCount
            return Image.similarityMap(
                patches: rawPatches.sliced(sample..<(sample + 1)).reshaped([cells, -1]), query: centre,
                highlighted: chosen[first..<(first + neighborCount)].map { $0 - sample * cells },
                gridHeight: height, gridWidth: width, scale: scale)
        }
        try save(Image.tiled(maps, columns: count), "similarity",
                 "\(prefix): last-block cosine similarity to the centre patch (red); white: its \(neighborCount) most similar neighbours")
        return pictures
    }
}

extension Image {
    /// The image enlarged `factor` times by repeating pixels.
    public func scaled(by factor: Int) -> Image {
        guard factor > 1 else { return self }
        var result = Image(width: width * factor, height: height * factor, repeating: 0)
        for y in 0..<result.height {
            for x in 0..<result.width {
                for channel in 0..<3 { result[x, y, channel] = self[x / factor, y / factor, channel] }
            }
        }
        return result
    }
}
