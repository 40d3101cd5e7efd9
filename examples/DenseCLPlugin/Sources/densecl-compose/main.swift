import DenseCLTask
import Foundation
import SSLCore
import SSLPlugins

// SwiftSSL used from code rather than from `ssl-run`: DINO, SelfPatch and this package's
// DenseCL task composed in one run with a scheduled weight, trained for a few steps through a
// `TrainingSession`, the checkpoint reloaded as a `FeatureNetwork` and probed by k-NN.
//
//     densecl-compose <output folder> [steps]
//
// The output folder must not hold a run of another configuration (a run of this one resumes).
let arguments = CommandLine.arguments
guard arguments.count >= 2, let steps = arguments.count > 2 ? Int(arguments[2]) : 3 else {
    FileHandle.standardError.write(Data("usage: densecl-compose <output folder> [steps]\n".utf8))
    exit(64)
}
let output = arguments[1]

do {
    // The built-in tasks and ours, by name.
    var registry = TaskRegistry.builtIn
    registry.register(DenseCLTask.self)

    // A tiny ViT (48 wide, 1 block, 4-pixel patches) on 16-pixel global and 12-pixel local
    // crops: 4×4 and 3×3 patch grids, enough for SelfPatch's 8 neighbours.
    let head = ["out-dim": "64", "hidden-dim": "32", "bottleneck-dim": "16"]
    var recipe = TrainingRecipe(
        backbone: VisionTransformerConfiguration(embedDimension: 48, depth: 1, heads: 2, patchSize: 4, imageSize: 16),
        views: ViewPlan(globalCount: 2, globalSize: 16, localCount: 2, localSize: 12),
        tasks: [
            TaskSelection(name: "dino", options: head),
            TaskSelection(name: "selfpatch", weight: 0.1, options: head),
            // DenseCL's weight rises from 0 at the start to 0.5 halfway, then stays there;
            // `<task>.weight` in metrics.jsonl logs it.
            TaskSelection(name: "densecl", weight: try TaskWeight(parsing: "0@0:0.5@50%"), options: ["dim": "32", "hidden-dim": "32"]),
        ],
        epochs: 1, batchSize: 16, seed: 0)
    recipe.optimization.warmup = .steps(1)
    recipe.data = DataSource(subset: 64)
    // The augmentation the tasks agree on (SelfPatch's multi-crop scales).
    recipe.augmentation = try registry.augmentation(agreedBy: recipe.tasks.map(\.name))

    let fashion = try FashionMNISTDataset(split: .train)
    var options = SessionOptions(outputFolder: output)
    options.maximumSteps = steps
    options.loaderThreads = 1
    options.logEverySteps = 1
    let checkpoint: String
    do {
        let session = try TrainingSession(
            recipe: recipe, registry: registry, dataset: DatasetSubset(fashion, count: 64, seed: recipe.seed, stream: 0),
            options: options)
        print("trained: \(try session.run())")
        checkpoint = session.checkpointPath
    }

    // The teacher as a feature extractor, with whatever image embedding its tasks provide.
    let network = try FeatureNetwork(checkpoint: checkpoint, network: .teacher, registry: registry)
    func probeSet(_ split: FashionMNISTDataset.Split, count: Int) throws -> (images: Tensor, labels: [Int]) {
        let subset = DatasetSubset(try FashionMNISTDataset(split: split), count: count, seed: 1, stream: 1)
        var tensors: [Tensor] = [], labels: [Int] = []
        for index in 0..<subset.count {
            let image = try subset.image(at: index)
            let whole = PixelRegion(top: 0, left: 0, height: image.height, width: image.width)
            let small = image.resized(region: whole, width: 16, height: 16, interpolation: .bicubic)
            tensors.append(ImageNormalization.imageNet.tensor(small).reshaped([1, 3, 16, 16]))
            labels.append(subset.label(at: index)!)
        }
        return (Tensor.concatenate(tensors, axis: 0), labels)
    }
    let train = try probeSet(.train, count: 200), test = try probeSet(.test, count: 100)
    let result = KNearestNeighborClassifier(classCount: 10, neighborCounts: [10, 20]).evaluate(
        trainFeatures: network.extractFeatures(train.images).images, trainLabels: train.labels,
        testFeatures: network.extractFeatures(test.images).images, testLabels: test.labels)
    for (name, value) in result.metrics().sorted(by: { $0.key < $1.key }) {
        print("\(name) \(String(format: "%.1f%%", 100 * value))")
    }
} catch {
    FileHandle.standardError.write(Data("densecl-compose: \(error)\n".utf8))
    exit(1)
}
