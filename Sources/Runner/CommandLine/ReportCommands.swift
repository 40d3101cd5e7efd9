import ArgumentParser
import Foundation
import SSLCore

extension SSLRun {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render runs' reports: one run's report.html in its folder, or several runs side by side.")

        @Argument(help: "Run folders.") var runs: [String]
        @Option(help: "Where to write the side-by-side page for several runs.") var output = "comparison.html"

        func validate() throws {
            guard !runs.isEmpty else { throw ValidationError("Name at least one run folder.") }
            for folder in runs {
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
                    throw ValidationError("\(folder): no such run folder; pass the --output folder of a run.")
                }
            }
        }

        func run() throws {
            for folder in runs { try Self.checkMetrics(in: folder) }
            if runs.count == 1 {
                print(try RunReport(folder: runs[0]).writeReport())
                return
            }
            try AtomicFile.write(Array(try RunReport.renderComparison(runs: runs).utf8), to: output)
            print(SummaryTable.comparing(try runs.map { try RunReport.loadRun(folder: $0).summary }).render())
            print("Comparison: \(output)")
        }

        /// Throws naming the file and line of the first line of the run's `metrics.jsonl` that
        /// is not a metrics record (e.g. torn by a crash while it was written).
        static func checkMetrics(in folder: String) throws {
            let path = "\(folder)/\(RunReport.metricsFileName)"
            guard let data = FileManager.default.contents(atPath: path) else { return }
            guard let text = String(data: data, encoding: .utf8) else {
                throw ValidationError("\(path): not UTF-8 text; the file is damaged.")
            }
            for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.allSatisfy(\.isWhitespace) {
                guard (try? MetricsRecord(jsonLine: String(line))) != nil else {
                    throw ValidationError(
                        "\(path) line \(index + 1): not a metrics record ('\(line.prefix(60))'); delete or repair that line.")
                }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a checkpoint's backbone as a backbone-only HDF5 file with PyTorch state-dict names.")

        @Option(help: "The checkpoint.") var checkpoint: String
        @Option(help: "Which network of the checkpoint.") var from: CheckpointNetwork = .teacher
        @Option(help: "The file to write.") var output: String

        func run() throws {
            let backbone = try BackboneFile.load(checkpoint, network: from.rawValue)
            try BackboneFile.write(backbone, to: output, source: "\(checkpoint) (\(from.rawValue))")
            print("Wrote \(output): \(backbone.namedParameters().count) tensors, \(backbone.parameterCount) parameters.")
        }
    }

    struct Features: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Extract image and patch features of a dataset with a checkpoint's backbone into HDF5.")

        @Option(help: "A checkpoint or exported backbone.") var checkpoint: String
        @Option(help: "Which network of a checkpoint.") var network: CheckpointNetwork = .teacher
        @Option(help: "The image feature.")
        var readout: FeatureReadout = .classToken
        @Option(help: "The images (default: Fashion-MNIST test).") var data: String?
        @Option(help: "The split of Fashion-MNIST, the scenes or a CIFAR folder to read; image folders and .h5 files have one.")
        var split: FashionMNISTDataset.Split = .test
        @Option(help: "At most this many images.") var count: Int?
        @Flag(help: "Also store every patch token.") var patches = false
        @Option(help: "The file to write.") var output: String

        func validate() throws {
            if let count, count <= 0 { throw ValidationError("--count must be positive, got \(count).") }
        }

        func run() throws {
            let probed = try FeatureNetwork.load(checkpoint, network: network)
            try probed.validate(readout, flag: "--readout")
            let dataset = try DataOptions.open(data, split: split)
            let images = try EvaluationImages.classification(
                LabelOptionalDataset(dataset), count: count, size: probed.backbone.configuration.imageSize, seed: 0)
            let progress = ProgressReporter(title: "features", totalSteps: FeatureNetwork.featureBatchCount(images.images.shape[0]))
            let features = probed.extractFeatures(images.images, readout: readout, includePatches: patches, progress: progress)
            progress.finish()
            try HDF5File.writeAtomically(to: output) { file in
                try file.write(features.images, at: "image_features")
                if let patchFeatures = features.patches { try file.write(patchFeatures.tokens, at: "patch_features") }
                try file.write(integers: images.labels, at: "labels")
                if let indices = images.datasetIndices { try file.write(integers: indices, at: "dataset_indices") }
                try file.setAttribute("source", checkpoint)
                try file.setAttribute("readout", readout.rawValue)
            }
            print("Wrote \(output): \(features.images.shape[0]) images × \(features.images.shape[1]) features.")
        }
    }
}

/// Gives unlabelled images the label -1 so that feature extraction works on any folder.
struct LabelOptionalDataset: ImageDataset {
    let base: any ImageDataset
    init(_ base: any ImageDataset) { self.base = base }
    var count: Int { base.count }
    var classNames: [String] { base.classNames }
    var description: String { base.description }
    func image(at index: Int) throws -> Image { try base.image(at: index) }
    func label(at index: Int) -> Int? { base.label(at: index) ?? -1 }
}

extension FashionMNISTDataset.Split: ExpressibleByArgument {}
