/// Per-pixel class labels of a set of equally sized images, and their relation to a patch grid.
///
/// Pixel (y, x) of an image belongs to patch (y · gridHeight / height, x · gridWidth / width)
/// (integer division): the patches of a ViT when the sides are multiples of the patch size, and
/// a nearest-neighbour mapping otherwise. Labels outside `0..<classCount` mean "ignore".
public struct PixelLabels: Sendable, Equatable {
    /// The labels, image by image, row-major within an image.
    public var labels: [Int]
    /// The number of images.
    public var imageCount: Int
    /// The pixel rows per image.
    public var height: Int
    /// The pixel columns per image.
    public var width: Int

    public init(labels: [Int], imageCount: Int, height: Int, width: Int) {
        precondition(
            labels.count == imageCount * height * width,
            "PixelLabels: \(labels.count) labels for \(imageCount) images of \(height)×\(width).")
        self.labels = labels
        self.imageCount = imageCount
        self.height = height
        self.width = width
    }

    /// The patch (row-major in the grid) that pixel (`y`, `x`) falls into.
    @inline(__always)
    static func patch(y: Int, x: Int, height: Int, width: Int, gridHeight: Int, gridWidth: Int) -> Int {
        (y * gridHeight / height) * gridWidth + x * gridWidth / width
    }

    /// The label distribution of each patch's pixels: `classCount` fractions per patch
    /// (`imageCount · gridHeight · gridWidth · classCount` values), all zero for a patch without
    /// a pixel in `0..<classCount`. These are the soft labels of Hummingbird's memory bank
    /// (Balažević et al., "Towards in-context scene understanding", NeurIPS 2023).
    public func patchLabelDistributions(gridHeight: Int, gridWidth: Int, classCount: Int) -> [Float] {
        let counts = patchLabelCounts(gridHeight: gridHeight, gridWidth: gridWidth, classCount: classCount)
        var result = [Float](repeating: 0, count: counts.count)
        for start in stride(from: 0, to: counts.count, by: classCount) {
            let total = counts[start..<(start + classCount)].reduce(0, +)
            guard total > 0 else { continue }
            for c in 0..<classCount { result[start + c] = Float(counts[start + c]) / Float(total) }
        }
        return result
    }

    /// The majority label of each patch's pixels, `imageCount · gridHeight · gridWidth` values;
    /// ties go to the lower class, and a patch without a pixel in `0..<classCount` gets -1.
    public func patchMajorityLabels(gridHeight: Int, gridWidth: Int, classCount: Int) -> [Int] {
        let counts = patchLabelCounts(gridHeight: gridHeight, gridWidth: gridWidth, classCount: classCount)
        return stride(from: 0, to: counts.count, by: classCount).map { start in
            var best = -1, bestVotes = 0
            for c in 0..<classCount where counts[start + c] > bestVotes {
                best = c
                bestVotes = counts[start + c]
            }
            return best
        }
    }

    /// How many pixels of each class every patch holds, `classCount` counts per patch.
    private func patchLabelCounts(gridHeight: Int, gridWidth: Int, classCount: Int) -> [Int] {
        precondition(gridHeight <= height && gridWidth <= width, "PixelLabels: the grid is finer than the pixels.")
        let patches = gridHeight * gridWidth
        var counts = [Int](repeating: 0, count: imageCount * patches * classCount)
        for image in 0..<imageCount {
            let offset = image * height * width, patchOffset = image * patches
            for y in 0..<height {
                for x in 0..<width {
                    let label = labels[offset + y * width + x]
                    guard label >= 0 && label < classCount else { continue }
                    let patch = Self.patch(y: y, x: x, height: height, width: width, gridHeight: gridHeight, gridWidth: gridWidth)
                    counts[(patchOffset + patch) * classCount + label] += 1
                }
            }
        }
        return counts
    }

    /// Per-pixel predictions from per-patch predictions (`imageCount · gridHeight · gridWidth`
    /// values) by nearest upsampling to this pixel grid.
    public func upsampling(patchPredictions: [Int], gridHeight: Int, gridWidth: Int) -> [Int] {
        let patches = gridHeight * gridWidth
        precondition(
            patchPredictions.count == imageCount * patches,
            "PixelLabels: \(patchPredictions.count) patch predictions for \(imageCount) images of \(gridHeight)×\(gridWidth).")
        var result = [Int](repeating: 0, count: labels.count)
        for image in 0..<imageCount {
            for y in 0..<height {
                for x in 0..<width {
                    let patch = Self.patch(y: y, x: x, height: height, width: width, gridHeight: gridHeight, gridWidth: gridWidth)
                    result[(image * height + y) * width + x] = patchPredictions[image * patches + patch]
                }
            }
        }
        return result
    }

    /// Scores per-patch predictions against these labels at pixel resolution.
    public func evaluate(patchPredictions: [Int], gridHeight: Int, gridWidth: Int, classCount: Int) -> SegmentationMetrics {
        var metrics = SegmentationMetrics(classCount: classCount)
        metrics.accumulate(
            predictions: upsampling(patchPredictions: patchPredictions, gridHeight: gridHeight, gridWidth: gridWidth),
            labels: labels)
        return metrics
    }

    /// Scores per-patch class scores (`imageCount · gridHeight · gridWidth · classCount` values)
    /// at pixel resolution: each pixel takes the class with the highest score after `upsampling`
    /// the score maps to the pixel grid (ties go to the lower class).
    public func evaluate(
        patchScores: [Float], gridHeight: Int, gridWidth: Int, classCount: Int, upsampling: ScoreUpsampling
    ) -> SegmentationMetrics {
        let patches = gridHeight * gridWidth
        precondition(
            patchScores.count == imageCount * patches * classCount,
            "PixelLabels: \(patchScores.count) patch scores for \(imageCount) images of \(gridHeight)×\(gridWidth), \(classCount) classes.")
        var predictions = [Int](repeating: 0, count: labels.count)
        var pixelScores = [Float](repeating: 0, count: classCount)
        for image in 0..<imageCount {
            let scores = image * patches * classCount
            for y in 0..<height {
                for x in 0..<width {
                    switch upsampling {
                    case .nearest:
                        let patch = Self.patch(y: y, x: x, height: height, width: width, gridHeight: gridHeight, gridWidth: gridWidth)
                        for c in 0..<classCount { pixelScores[c] = patchScores[scores + patch * classCount + c] }
                    case .bilinear:
                        let (rows, rowWeight) = Self.bilinearTaps(pixel: y, pixels: height, patches: gridHeight)
                        let (columns, columnWeight) = Self.bilinearTaps(pixel: x, pixels: width, patches: gridWidth)
                        for c in 0..<classCount {
                            func score(_ row: Int, _ column: Int) -> Float {
                                patchScores[scores + (row * gridWidth + column) * classCount + c]
                            }
                            let top = score(rows.0, columns.0) * (1 - columnWeight) + score(rows.0, columns.1) * columnWeight
                            let bottom = score(rows.1, columns.0) * (1 - columnWeight) + score(rows.1, columns.1) * columnWeight
                            pixelScores[c] = top * (1 - rowWeight) + bottom * rowWeight
                        }
                    }
                    var best = 0
                    for c in 1..<classCount where pixelScores[c] > pixelScores[best] { best = c }
                    predictions[(image * height + y) * width + x] = best
                }
            }
        }
        var metrics = SegmentationMetrics(classCount: classCount)
        metrics.accumulate(predictions: predictions, labels: labels)
        return metrics
    }

    /// The two patch positions pixel `pixel` interpolates between along one axis, and the weight
    /// of the second: PyTorch's `interpolate(mode: "bilinear", align_corners: False)`, clamped
    /// at the borders.
    static func bilinearTaps(pixel: Int, pixels: Int, patches: Int) -> ((Int, Int), Float) {
        let position = max(0, (Float(pixel) + 0.5) * Float(patches) / Float(pixels) - 0.5)
        let first = min(Int(position), patches - 1)
        let second = min(first + 1, patches - 1)
        return ((first, second), position - Float(first))
    }
}

/// How per-patch class scores become per-pixel scores.
public enum ScoreUpsampling: String, Sendable, CaseIterable {
    /// Every pixel takes its patch's scores.
    case nearest
    /// Scores interpolated between patch centres (PyTorch's bilinear, `align_corners=False`).
    case bilinear
}
