/// Frozen patch tokens of a set of images on a common patch grid, the input of the dense probes.
public struct PatchFeatures {
    /// `[images, gridHeight · gridWidth, dim]`, patches row-major within the grid.
    public var tokens: Tensor
    /// The patch rows of the grid.
    public var gridHeight: Int
    /// The patch columns of the grid.
    public var gridWidth: Int

    public init(tokens: Tensor, gridHeight: Int, gridWidth: Int) {
        precondition(
            tokens.rank == 3 && tokens.shape[1] == gridHeight * gridWidth,
            "PatchFeatures: tokens \(tokens.describe) must be [images, \(gridHeight * gridWidth), dim].")
        self.tokens = tokens
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
    }

    /// The number of images.
    public var imageCount: Int { tokens.shape[0] }

    /// Every patch as one row, `[images · patches, dim]`.
    public var rows: Tensor {
        tokens.reshaped([tokens.shape[0] * tokens.shape[1], tokens.shape[2]])
    }

    /// Checks that `labels` describe the same images.
    func checkMatches(_ labels: PixelLabels) {
        precondition(
            labels.imageCount == imageCount,
            "Dense probe: \(labels.imageCount) label maps for \(imageCount) images of features.")
    }
}
