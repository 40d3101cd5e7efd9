/// Labelled images ready for probes: resized to the backbone's input size and normalised.
public struct EvaluationImages {
    /// `[count, 3, size, size]`.
    public var images: Tensor
    public var labels: [Int]
    /// Each image's index in the dataset it was read from (`nil` for images made in memory).
    public var datasetIndices: [Int]?

    public init(images: Tensor, labels: [Int], datasetIndices: [Int]? = nil) {
        precondition(images.rank == 4 && images.shape[0] == labels.count, "EvaluationImages: \(labels.count) labels for images \(images.describe).")
        precondition(datasetIndices.map { $0.count == labels.count } ?? true, "EvaluationImages: one dataset index per image.")
        self.images = images
        self.labels = labels
        self.datasetIndices = datasetIndices
    }

    /// The first `count` images of a seeded shuffle of `dataset` (all when `nil`), each resized
    /// as a whole to `size × size` (bicubic) and normalised; the dataset must be labelled.
    public static func classification(
        _ dataset: any ImageDataset, count: Int?, size: Int, seed: UInt64,
        normalization: ImageNormalization = .imageNet
    ) throws -> EvaluationImages {
        let subset = DatasetSubset(dataset, count: count ?? dataset.count, seed: seed, stream: RandomGenerator.Stream.probeImages)
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
        return EvaluationImages(images: images, labels: labels, datasetIndices: subset.indices)
    }
}

/// Images with a class per pixel, for the dense probes.
public struct SegmentationImages {
    /// `[count, 3, size, size]`.
    public var images: Tensor
    public var labels: PixelLabels

    public init(images: Tensor, labels: PixelLabels) {
        precondition(
            images.rank == 4 && images.shape[0] == labels.imageCount && images.shape[2] == labels.height && images.shape[3] == labels.width,
            "SegmentationImages: labels of \(labels.imageCount) images of \(labels.height)×\(labels.width) for images \(images.describe).")
        self.images = images
        self.labels = labels
    }

    /// The first `count` scenes of `scenes`, normalised (their canvas size must be a multiple of
    /// the patch size the backbone uses).
    public static func scenes(
        _ scenes: FashionMNISTScenes, count: Int, normalization: ImageNormalization = .imageNet
    ) -> SegmentationImages {
        let size = scenes.canvasSize, count = min(count, scenes.count)
        let images = Tensor(uninitializedShape: [count, 3, size, size])
        var labels: [Int] = []
        labels.reserveCapacity(count * size * size)
        for index in 0..<count {
            let scene = scenes.scene(at: index)
            normalization.write(scene.image, to: images.storage.base + index * 3 * size * size)
            labels += scene.labels.map(Int.init)
        }
        return SegmentationImages(images: images, labels: PixelLabels(labels: labels, imageCount: count, height: size, width: size))
    }
}

/// The probes a run reports, on fixed evaluation sets: weighted k-NN (and optionally a linear
/// probe) on image features, and in-context patch retrieval and a linear segmentation probe on
/// patch features. Run it on the trained network, a randomly initialised one and raw pixels
/// (``PixelFeatureSource``) alike, so every figure stands beside its baselines.
public struct EvaluationSuite {
    public var classificationTrain: EvaluationImages?
    public var classificationTest: EvaluationImages?
    public var classCount = 10
    public var segmentationTrain: SegmentationImages?
    public var segmentationTest: SegmentationImages?
    /// Run the (slower) linear probe on image features too.
    public var includeLinearProbes = false
    /// k of the k-NN probes.
    public var neighborCounts = [10, 20]
    /// The in-context retrieval probe on the segmentation sets (its memory bank: every patch of
    /// ``segmentationTrain``).
    public var patchRetrieval = PatchNeighborProbe(classCount: 11)
    /// The linear segmentation probe on the segmentation sets; `nil` skips it.
    public var denseLinearProbe: DenseLinearProbe? = DenseLinearProbe(classCount: 11)
    /// Reports each stage of ``evaluate(_:prefix:)`` (feature passes, k-NN, retrieval, linear
    /// probe epochs) when set; `nil` keeps the probes quiet, as during training.
    public var progress: ProbeProgress?

    public init() {}

    /// The built-in evaluation sets: `trainCount` / `testCount` Fashion-MNIST images (from the
    /// train and test splits) resized to `imageSize` for the k-NN and linear probes, and
    /// `sceneCount` / `testSceneCount` ``FashionMNISTScenes`` for the dense probes, their canvas
    /// ``FashionMNISTScenes/canvasSize(patchSize:)``. The test sets draw with `seed + 1`.
    public static func fashionMNIST(
        imageSize: Int, patchSize: Int, trainCount: Int, testCount: Int, sceneCount: Int, testSceneCount: Int, seed: UInt64
    ) throws -> EvaluationSuite {
        let train = try FashionMNISTDataset(split: .train), test = try FashionMNISTDataset(split: .test)
        let canvas = FashionMNISTScenes.canvasSize(patchSize: patchSize)
        var suite = EvaluationSuite()
        suite.classificationTrain = try EvaluationImages.classification(train, count: trainCount, size: imageSize, seed: seed)
        suite.classificationTest = try EvaluationImages.classification(test, count: testCount, size: imageSize, seed: seed + 1)
        suite.segmentationTrain = SegmentationImages.scenes(
            FashionMNISTScenes(source: train, canvasSize: canvas, seed: seed), count: sceneCount)
        suite.segmentationTest = SegmentationImages.scenes(
            FashionMNISTScenes(source: test, canvasSize: canvas, seed: seed + 1), count: testSceneCount)
        return suite
    }

    /// The settings of the dense probes in words (memory size, k, temperature), for a summary.
    public func denseProbeDescription(patchSize: Int) -> String? {
        guard let train = segmentationTrain, let test = segmentationTest else { return nil }
        let patches = (train.labels.height / patchSize) * (train.labels.width / patchSize)
        var text = "\(train.labels.imageCount) train / \(test.labels.imageCount) test scenes of \(train.labels.width) px; "
            + "dense_retrieval: memory of \(train.labels.imageCount * patches) patches, k = \(patchRetrieval.neighborCount), "
            + "softmax temperature \(patchRetrieval.temperature), \(patchRetrieval.upsampling.rawValue) upsampling"
        if let denseLinearProbe {
            text += "; dense_linear: \(denseLinearProbe.probe.epochs) epochs, learning rates "
                + denseLinearProbe.probe.learningRates.map { "\($0)" }.joined(separator: "/")
        }
        return text
    }

    /// Every configured probe on the features of `source`, keyed `<prefix>/knn/top1@20`,
    /// `<prefix>/dense_retrieval/mIoU`, `<prefix>/dense_linear/mIoU`, …; each stage is reported
    /// to ``progress`` as `<prefix>: <stage>`.
    public func evaluate(_ source: some ProbeFeatureSource, prefix: String) -> [String: Double] {
        var metrics: [String: Double] = [:]
        func add(_ values: [String: Double]) {
            for (key, value) in values { metrics["\(prefix)/\(key)"] = value }
        }
        func stage<Result>(_ name: String, steps: Int? = nil, _ work: (ProgressReporter?) -> Result) -> Result {
            progress.map { $0.stage("\(prefix): \(name)", steps: steps, work) } ?? work(nil)
        }
        func features<Features>(of images: Tensor, _ role: String, _ extract: (Tensor, ProgressReporter?) -> Features) -> Features {
            let count = images.shape[0]
            return stage("features of \(count) \(role) images", steps: FeatureNetwork.featureBatchCount(count)) { extract(images, $0) }
        }
        if let train = classificationTrain, let test = classificationTest {
            let trainFeatures = features(of: train.images, "train", source.imageFeatures)
            let testFeatures = features(of: test.images, "test", source.imageFeatures)
            let knn = stage("k-NN") { _ in
                KNearestNeighborClassifier(classCount: classCount, neighborCounts: neighborCounts).evaluate(
                    trainFeatures: trainFeatures, trainLabels: train.labels, testFeatures: testFeatures, testLabels: test.labels)
            }
            add(knn.metrics(prefix: "knn"))
            if includeLinearProbes {
                let probe = LinearProbe(epochs: 30)
                let linear = stage("linear probe", steps: probe.sweepEpochs) { progress in
                    probe.fit(
                        trainFeatures: trainFeatures, trainLabels: train.labels, validationFeatures: testFeatures,
                        validationLabels: test.labels, classCount: classCount, progress: progress)
                }
                add(["linear/top1": linear.top1])
            }
        }
        if let train = segmentationTrain, let test = segmentationTest {
            let trainPatches = features(of: train.images, "train scene", source.patchFeatures)
            let testPatches = features(of: test.images, "test scene", source.patchFeatures)
            let retrieval = stage("patch retrieval") { _ in
                patchRetrieval.evaluate(train: trainPatches, trainLabels: train.labels, test: testPatches, testLabels: test.labels)
            }
            add(retrieval.metrics(prefix: "dense_retrieval"))
            if let denseLinearProbe {
                let linear = stage("linear segmentation probe", steps: denseLinearProbe.probe.sweepEpochs) { progress in
                    denseLinearProbe.fit(
                        train: trainPatches, trainLabels: train.labels, validation: testPatches, validationLabels: test.labels,
                        progress: progress)
                }
                add(linear.metrics.metrics(prefix: "dense_linear"))
            }
        }
        return metrics
    }
}
