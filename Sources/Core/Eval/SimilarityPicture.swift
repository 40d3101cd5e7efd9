extension Image {
    /// The cosine similarity of one patch to every patch of the same image (`patches`:
    /// `[gridHeight · gridWidth, dim]`), min-max scaled to the viridis colour map, each patch a
    /// `scale × scale` block; the query patch is outlined in red.
    public static func similarityMap(
        patches: Tensor, query: Int, gridHeight: Int, gridWidth: Int, scale: Int
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
        let left = (query % gridWidth) * scale, top = (query / gridWidth) * scale
        for offset in 0..<scale {
            for (x, y) in [(left + offset, top), (left + offset, top + scale - 1), (left, top + offset), (left + scale - 1, top + offset)] {
                image[x, y] = (255, 0, 0)
            }
        }
        return image
    }
}
