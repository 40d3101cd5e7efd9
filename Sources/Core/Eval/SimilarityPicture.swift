extension Image {
    /// The cosine similarity of one patch to every patch of the same image (`patches`:
    /// `[gridHeight · gridWidth, dim]`), min-max scaled to the viridis colour map, each patch a
    /// `scale × scale` block; the query patch is outlined in red and the `highlighted` patches
    /// (e.g. the neighbours SelfPatch picks as positives) in white.
    public static func similarityMap(
        patches: Tensor, query: Int, highlighted: [Int] = [], gridHeight: Int, gridWidth: Int, scale: Int
    ) -> Image {
        precondition(
            patches.rank == 2 && patches.shape[0] == gridHeight * gridWidth,
            "similarityMap: patches \(patches.describe) must be [\(gridHeight * gridWidth), dim].")
        precondition(query >= 0 && query < patches.shape[0], "similarityMap: no patch \(query).")
        let normalized = GradientMode.withoutGradient { patches.detached().l2Normalized() }
        let dimension = patches.shape[1]
        let similarities = normalized.withElements { values in
            (0..<patches.shape[0]).map { patch in
                (0..<dimension).reduce(Float(0)) { $0 + values[patch * dimension + $1] * values[query * dimension + $1] }
            }
        }
        var image = heatMap(similarities, gridHeight: gridHeight, gridWidth: gridWidth, scale: scale)
        for patch in highlighted { image.outline(patch: patch, gridWidth: gridWidth, scale: scale, colour: (255, 255, 255)) }
        image.outline(patch: query, gridWidth: gridWidth, scale: scale, colour: (255, 0, 0))
        return image
    }

    /// Draws a one-pixel frame around `patch`'s `scale × scale` block.
    mutating func outline(patch: Int, gridWidth: Int, scale: Int, colour: (UInt8, UInt8, UInt8)) {
        let left = (patch % gridWidth) * scale, top = (patch / gridWidth) * scale
        for offset in 0..<scale {
            for (x, y) in [(left + offset, top), (left + offset, top + scale - 1), (left, top + offset), (left + scale - 1, top + offset)] {
                self[x, y] = colour
            }
        }
    }
}
