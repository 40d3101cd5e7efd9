import ArgumentParser
import Foundation
import SSLCore

extension SSLRun {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval",
            abstract: "Probe a checkpoint or exported backbone: weighted k-NN, dense patch k-NN (and linear probes), "
                + "beside a randomly initialised backbone of the same architecture.")

        @Option(help: "A checkpoint (checkpoint.h5) or an exported backbone file.") var checkpoint: String
        @Option(help: "Which network of a checkpoint: teacher or student.") var network = "teacher"
        @Option(help: "Labelled training images for the probes (default: Fashion-MNIST train).") var data: String?
        @Option(help: "Labelled test images (default: Fashion-MNIST test).") var testData: String?
        @Option(help: "Training images used by the probes.") var trainCount = 10000
        @Option(help: "Test images used by the probes.") var testCount = 2000
        @Option(help: "Mosaics for the dense probes (train; test gets half).") var mosaicCount = 400
        @Flag(help: "Also train linear probes (slower).") var linear = false
        @Flag(inversion: .prefixedEnableDisable, help: "Also evaluate a randomly initialised backbone of the same architecture.")
        var randomBaseline = true
        @Option(help: "Write summary.json, pictures and report.html into this run folder (default: the checkpoint's folder).")
        var output: String?

        /// The trained network and, when asked, a randomly initialised one of the same
        /// architecture, by name.
        func probedNetworks() throws -> [(name: String, network: ProbedNetwork)] {
            let trained = try ProbedNetwork.load(checkpoint, network: network)
            guard randomBaseline else { return [("trained", trained)] }
            return [("trained", trained), ("random", try ProbedNetwork.randomlyInitialised(like: checkpoint, trained: trained))]
        }

        func run() throws {
            let networks = try probedNetworks()
            let size = networks[0].network.backbone.configuration.imageSize
            var suite: EvaluationSuite
            if data == nil && testData == nil {
                suite = try EvaluationSuite.fashionMNIST(
                    imageSize: size, patchSize: networks[0].network.backbone.configuration.patchSize, trainCount: trainCount,
                    testCount: testCount, mosaicCount: mosaicCount, seed: 0)
            } else {
                suite = EvaluationSuite()
                let train = try DataOptions.open(data, split: .train), test = try DataOptions.open(testData ?? data, split: .test)
                suite.classificationTrain = try EvaluationImages.classification(train, count: trainCount, size: size, seed: 0)
                suite.classificationTest = try EvaluationImages.classification(test, count: testCount, size: size, seed: 1)
                suite.classCount = max(train.classNames.count, (suite.classificationTrain!.labels.max() ?? 0) + 1)
            }
            suite.includeLinearProbes = linear
            suite.neighborCounts = [10, 20, 100, 200]
            let folder = output ?? URL(fileURLWithPath: checkpoint).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var metrics: [String: Double] = [:]
            var pictures: [RunSummary.Picture] = []
            for (name, network) in networks {
                FileHandle.standardError.write(Data("Probing the \(name) backbone…\n".utf8))
                metrics.merge(suite.evaluate(network.backbone, prefix: name, imageEmbedding: network.imageEmbedding)) { $1 }
                let samples = suite.classificationTest!.images.sliced(0..<4)
                pictures += try RunPictures.write(backbone: network.backbone, images: samples, folder: folder, prefix: name)
            }
            let report = try RunReport(folder: folder)
            var summary = (try? RunReport.loadRun(folder: folder).summary) ?? RunSummary(name: URL(fileURLWithPath: folder).lastPathComponent)
            summary.metrics.merge(metrics) { $1 }
            summary.pictures = pictures
            summary.details["checkpoint"] = checkpoint
            summary.details["network"] = network
            try report.writeSummary(summary)
            let page = try report.writeReport()
            print(EvaluationTable(metrics).render())
            print("Report: \(page)")
        }
    }
}

/// The probe results as a table: one row per probe metric, one column per network.
struct EvaluationTable {
    let metrics: [String: Double]

    init(_ metrics: [String: Double]) { self.metrics = metrics }

    func render() -> String {
        let networks = Array(Set(metrics.keys.compactMap { $0.split(separator: "/").first.map(String.init) })).sorted().reversed()
        let probes = Array(Set(metrics.keys.map { $0.split(separator: "/").dropFirst().joined(separator: "/") })).sorted()
        let width = max(24, (probes.map(\.count).max() ?? 0) + 2)
        var lines = ["probe".padding(toLength: width, withPad: " ", startingAt: 0) + networks.map { $0.padding(toLength: 10, withPad: " ", startingAt: 0) }.joined()]
        for probe in probes {
            let cells = networks.map { network in
                metrics["\(network)/\(probe)"].map { String(format: "%.2f%%", $0 * 100).padding(toLength: 10, withPad: " ", startingAt: 0) } ?? "-         "
            }
            lines.append(probe.padding(toLength: width, withPad: " ", startingAt: 0) + cells.joined())
        }
        return lines.joined(separator: "\n")
    }
}
