import ArgumentParser
import Foundation
import SSLCore

extension SSLRun {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval",
            abstract: "Probe a checkpoint or exported backbone: weighted k-NN, in-context patch retrieval and a linear "
                + "segmentation probe on Fashion-MNIST scenes (and a linear probe), beside a randomly initialised "
                + "backbone of the same architecture and raw pixels.")

        @Option(help: "A checkpoint (checkpoint.h5) or an exported backbone file.") var checkpoint: String
        @Option(help: "Which network of a checkpoint.") var network: CheckpointNetwork = .teacher
        @Option(help: "The image feature of the k-NN and linear probes.")
        var readout: FeatureReadout = .classToken
        @Option(help: "Labelled training images for the probes (default: Fashion-MNIST train).") var data: String?
        @Option(help: "Labelled test images (default: Fashion-MNIST test).") var testData: String?
        @Option(help: "Training images used by the probes.") var trainCount = 10000
        @Option(help: "Test images used by the probes.") var testCount = 2000
        @Option(
            name: .customLong("scene-count"),
            help: "Fashion-MNIST scenes for the dense probes (the retrieval memory; test gets half).")
        var sceneCount = 200
        @Flag(help: "Also train a linear probe on the image features (slower).") var linear = false
        @Flag(inversion: .prefixedEnableDisable, help: "Also probe a randomly initialised backbone of the same architecture and raw pixels.")
        var baselines = true
        @Option(help: "Write summary.json, pictures and report.html into this run folder (default: the checkpoint's folder).")
        var output: String?

        func validate() throws {
            guard trainCount > 0 else { throw ValidationError("--train-count must be positive, got \(trainCount).") }
            guard testCount > 0 else { throw ValidationError("--test-count must be positive, got \(testCount).") }
            guard sceneCount >= 2 else { throw ValidationError("--scene-count must be at least 2 (test gets half), got \(sceneCount).") }
        }

        func run() throws {
            let trained = try FeatureNetwork.load(checkpoint, network: network)
            try trained.validate(readout, flag: "--readout")
            let configuration = trained.backbone.configuration
            var suite: EvaluationSuite
            if data == nil && testData == nil {
                suite = try EvaluationSuite.fashionMNIST(
                    imageSize: configuration.imageSize, patchSize: configuration.patchSize, trainCount: trainCount,
                    testCount: testCount, sceneCount: sceneCount, testSceneCount: sceneCount / 2, seed: 0)
            } else {
                suite = EvaluationSuite()
                let train = try DataOptions.open(data, split: .train), test = try DataOptions.open(testData ?? data, split: .test)
                suite.classificationTrain = try EvaluationImages.classification(train, count: trainCount, size: configuration.imageSize, seed: 0)
                suite.classificationTest = try EvaluationImages.classification(test, count: testCount, size: configuration.imageSize, seed: 1)
                suite.classCount = max(train.classNames.count, (suite.classificationTrain!.labels.max() ?? 0) + 1)
            }
            suite.includeLinearProbes = linear
            suite.progress = ProbeProgress()
            suite.neighborCounts = [10, 20, 100, 200]
            let folder = output ?? URL(fileURLWithPath: checkpoint).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var networks = [(name: "trained", network: trained)]
            if baselines { networks.append(("random", try FeatureNetwork.randomlyInitialized(like: checkpoint, trained: trained))) }
            var metrics: [String: Double] = [:]
            var pictures: [RunSummary.Picture] = []
            /// Probes `source` into `metrics` under `name`, reporting the time taken.
            func probe(_ source: some ProbeFeatureSource, as name: String, described description: String) {
                let seconds = MonotonicClock.measure {
                    metrics.merge(suite.evaluate(source, prefix: name)) { $1 }
                }
                FileHandle.standardError.write(Data("Probed \(description) in \(String(format: "%.1f", seconds)) s.\n".utf8))
            }
            for (name, network) in networks {
                probe(network.featureSource(readout: readout), as: name, described: "the \(name) backbone")
                let samples = suite.classificationTest!.images.sliced(0..<min(4, testCount))
                pictures += try RunPictures.write(
                    backbone: network.backbone, images: samples, folder: folder, prefix: name,
                    neighborCount: FeatureNetwork.patchNeighborCount(checkpoint: checkpoint))
            }
            if baselines { probe(PixelFeatureSource(patchSize: configuration.patchSize), as: "pixels", described: "raw pixels") }
            let report = try RunReport(folder: folder)
            var summary = (try? RunReport.loadRun(folder: folder).summary) ?? RunSummary(name: URL(fileURLWithPath: folder).lastPathComponent)
            summary.metrics.merge(metrics) { $1 }
            summary.pictures = pictures
            summary.details["checkpoint"] = checkpoint
            summary.details["network"] = network.rawValue
            summary.details["readout"] = readout.rawValue
            summary.details["dense probes"] = suite.denseProbeDescription(patchSize: configuration.patchSize)
            try report.writeSummary(summary)
            let page = try report.writeReport()
            if !(try TensorBoardEventWriter.eventFiles(in: folder)).isEmpty {
                // The probes and pictures join the training run's TensorBoard events, at its last step.
                let step = (try? RunReport.loadRun(folder: folder).records.last?.step) ?? 0
                let events = try TensorBoardEventWriter(folder: folder)
                try events.addScalars(Dictionary(uniqueKeysWithValues: metrics.map { ("eval/\($0.key)", $0.value) }), step: step)
                for picture in pictures { try events.addPNG(at: picture.path, tag: picture.title, step: step) }
            }
            print(SummaryTable.probes(metrics, columns: baselines ? RunSummary.probeColumns : ["trained"]).render())
            if let description = suite.denseProbeDescription(patchSize: configuration.patchSize) { print("Dense probes: \(description)") }
            print("Report: \(page)")
        }
    }
}
