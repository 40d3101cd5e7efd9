/// Labelled images ready for probes: resized to the backbone's input size and normalised.
public struct EvaluationImages {
    /// `[count, 3, size, size]`.
    public var images: Tensor
    public var labels: [Int]

    /// The first `count` images of a seeded shuffle of `dataset` (all when `nil`), each resized
    /// as a whole to `size × size` (bicubic) and normalised; the dataset must be labelled.
    public static func classification(
        _ dataset: any ImageDataset, count: Int?, size: Int, seed: UInt64,
        normalization: ImageNormalization = .imageNet
    ) throws -> EvaluationImages {
        let subset = DatasetSubset(dataset, count: count ?? dataset.count, seed: seed, stream: 0xE7A1)
        let images = Tensor(uninitializedShape: [subset.count, 3, size, size])
        var labels: [Int] = []
        for (position, index) in subset.indices.enumerated() {
            guard let label = dataset.label(at: index) else {
                throw DataError(path: dataset.description, problem: "has no labels, which the k-NN and linear probes need")
            }
            labels.append(label)
            let image = try dataset.image(at: index)
            normalization.write(
                image.resized(region: PixelRegion(top: 0, left: 0, height: image.height, width: image.width),
                              width: size, height: size, interpolation: .bicubic),
                to: images.storage.base + position * 3 * size * size)
        }
        return EvaluationImages(images: images, labels: labels)
    }
}

/// Images with a class per pixel, for the dense probes.
public struct SegmentationImages {
    /// `[count, 3, size, size]`.
    public var images: Tensor
    public var labels: PixelLabels

    /// The first `count` mosaics of `dataset`, normalised (their canvas size must be a multiple
    /// of the patch size the backbone uses).
    public static func mosaics(
        _ dataset: MosaicSegmentationDataset, count: Int, normalization: ImageNormalization = .imageNet
    ) -> SegmentationImages {
        let size = dataset.canvasSize, count = min(count, dataset.count)
        let images = Tensor(uninitializedShape: [count, 3, size, size])
        var labels: [Int] = []
        labels.reserveCapacity(count * size * size)
        for index in 0..<count {
            let (image, mask) = dataset.segmentation(at: index)
            normalization.write(image, to: images.storage.base + index * 3 * size * size)
            labels += mask.map(Int.init)
        }
        return SegmentationImages(images: images, labels: PixelLabels(labels: labels, imageCount: count, height: size, width: size))
    }
}

/// The probes a run reports, on fixed evaluation sets: weighted k-NN (and optionally a linear
/// probe) on image features, and the patch k-NN (and optionally a linear) dense probe on
/// patch features.
public struct EvaluationSuite {
    public var classificationTrain: EvaluationImages?
    public var classificationTest: EvaluationImages?
    public var classCount = 10
    public var segmentationTrain: SegmentationImages?
    public var segmentationTest: SegmentationImages?
    public var segmentationClassCount = 11
    /// Run the (slower) linear probes too.
    public var includeLinearProbes = false
    /// k of the k-NN probes.
    public var neighborCounts = [10, 20]

    public init() {}

    /// The built-in evaluation sets: `trainCount` / `testCount` Fashion-MNIST images (from the
    /// train and test splits) resized to `imageSize` for the k-NN and linear probes, and
    /// `mosaicCount` / `mosaicCount / 2` mosaics for the dense probes, their canvas about 56
    /// pixels and a multiple of `patchSize`. The test sets draw with `seed + 1`.
    public static func fashionMNIST(
        imageSize: Int, patchSize: Int, trainCount: Int, testCount: Int, mosaicCount: Int, seed: UInt64
    ) throws -> EvaluationSuite {
        let train = try FashionMNISTDataset(split: .train), test = try FashionMNISTDataset(split: .test)
        let canvas = max(2, (56 + patchSize - 1) / patchSize) * patchSize
        var suite = EvaluationSuite()
        suite.classificationTrain = try EvaluationImages.classification(train, count: trainCount, size: imageSize, seed: seed)
        suite.classificationTest = try EvaluationImages.classification(test, count: testCount, size: imageSize, seed: seed + 1)
        suite.segmentationTrain = SegmentationImages.mosaics(
            MosaicSegmentationDataset(source: train, canvasSize: canvas, seed: seed), count: mosaicCount)
        suite.segmentationTest = SegmentationImages.mosaics(
            MosaicSegmentationDataset(source: test, canvasSize: canvas, seed: seed + 1), count: mosaicCount / 2)
        return suite
    }

    /// Every configured probe on `backbone`, keyed `<prefix>/knn/top1@20`, `<prefix>/dense_knn/mIoU`, …;
    /// the image-level probes read `imageEmbedding` when a task provides one.
    public func evaluate(
        _ backbone: VisionTransformer, prefix: String, imageEmbedding: ((BackboneFeatures) -> Tensor)? = nil
    ) -> [String: Double] {
        var metrics: [String: Double] = [:]
        func add(_ values: [String: Double]) {
            for (key, value) in values { metrics["\(prefix)/\(key)"] = value }
        }
        if let train = classificationTrain, let test = classificationTest {
            let trainFeatures = backbone.extractFeatures(train.images, imageEmbedding: imageEmbedding).images
            let testFeatures = backbone.extractFeatures(test.images, imageEmbedding: imageEmbedding).images
            let knn = KNearestNeighborClassifier(classCount: classCount, neighborCounts: neighborCounts).evaluate(
                trainFeatures: trainFeatures, trainLabels: train.labels, testFeatures: testFeatures, testLabels: test.labels)
            add(knn.metrics(prefix: "knn"))
            if includeLinearProbes {
                let linear = LinearProbe(epochs: 30).fit(
                    trainFeatures: trainFeatures, trainLabels: train.labels, validationFeatures: testFeatures,
                    validationLabels: test.labels, classCount: classCount)
                add(["linear/top1": linear.top1])
            }
        }
        if let train = segmentationTrain, let test = segmentationTest {
            guard let trainPatches = backbone.extractFeatures(train.images, includePatches: true).patches,
                let testPatches = backbone.extractFeatures(test.images, includePatches: true).patches
            else { return metrics }
            let neighbors = PatchNeighborProbe(classCount: segmentationClassCount).evaluate(
                train: trainPatches, trainLabels: train.labels, test: testPatches, testLabels: test.labels)
            add(neighbors.metrics(prefix: "dense_knn"))
            if includeLinearProbes {
                let linear = DenseLinearProbe(classCount: segmentationClassCount).fit(
                    train: trainPatches, trainLabels: train.labels, validation: testPatches, validationLabels: test.labels)
                add(linear.metrics.metrics(prefix: "dense_linear"))
            }
        }
        return metrics
    }
}
