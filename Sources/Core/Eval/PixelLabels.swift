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

    /// The majority label of each patch's pixels, `imageCount · gridHeight · gridWidth` values;
    /// ties go to the lower class, and a patch without a pixel in `0..<classCount` gets -1.
    public func patchMajorityLabels(gridHeight: Int, gridWidth: Int, classCount: Int) -> [Int] {
        precondition(gridHeight <= height && gridWidth <= width, "PixelLabels: the grid is finer than the pixels.")
        let patches = gridHeight * gridWidth
        var result = [Int](repeating: -1, count: imageCount * patches)
        var votes = [Int](repeating: 0, count: patches * classCount)
        for image in 0..<imageCount {
            for i in votes.indices { votes[i] = 0 }
            let offset = image * height * width
            for y in 0..<height {
                for x in 0..<width {
                    let label = labels[offset + y * width + x]
                    guard label >= 0 && label < classCount else { continue }
                    let patch = Self.patch(y: y, x: x, height: height, width: width, gridHeight: gridHeight, gridWidth: gridWidth)
                    votes[patch * classCount + label] += 1
                }
            }
            for patch in 0..<patches {
                var best = -1, bestVotes = 0
                for c in 0..<classCount where votes[patch * classCount + c] > bestVotes {
                    best = c
                    bestVotes = votes[patch * classCount + c]
                }
                result[image * patches + patch] = best
            }
        }
        return result
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
}
