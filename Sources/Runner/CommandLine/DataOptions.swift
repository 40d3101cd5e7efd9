import ArgumentParser
import Foundation
import SSLCore

/// Where the training images come from.
struct DataOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Training images: a folder of JPEG/PNG files (subfolders as classes), a CIFAR-10/100 binary folder, "
            + "or an HDF5 file of uint8 images; or built from Fashion-MNIST: scenes (scenes:SIDE for the canvas side) "
            + "or garments (tinted on the scenes' textured backgrounds). Default: Fashion-MNIST from the "
            + "dataset-fashion-mnist package.",
        valueName: "path"))
    var data: String?
    @Option(parsing: .unconditional, help: "Train on this many images of the dataset (a seeded subset), e.g. for quick runs.")
    var subset: Int?

    /// The flags given, by name.
    var givenFlags: [String] {
        flagsGiven([("--data", data), ("--subset", subset)])
    }

    func validate() throws {
        if let subset, subset <= 0 { throw ValidationError("--subset must be positive, got \(subset).") }
    }

    /// Sets the recipe's data source from these options (those given).
    func apply(to recipe: inout TrainingRecipe) {
        if let data { recipe.data.path = data }
        if let subset { recipe.data.subset = subset }
    }

    /// The training dataset of `source`, checked before training starts.
    static func trainingDataset(_ source: DataSource, seed: UInt64) throws -> any ImageDataset {
        let dataset = try open(source.path)
        guard let subset = source.subset else { return dataset }
        return DatasetSubset(dataset, count: subset, seed: seed, stream: RandomGenerator.Stream.trainingSubset)
    }

    /// Opens `path` as the kind of dataset it is.
    static func open(_ path: String?, split: FashionMNISTDataset.Split = .train) throws -> any ImageDataset {
        guard let path else { return try FashionMNISTDataset(split: split) }
        if path == "scenes" || path.hasPrefix("scenes:") { return try scenes(path, split: split) }
        if path == "garments" { return FashionMNISTGarments(source: try FashionMNISTDataset(split: split), seed: 0) }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            // Arguments that are not UTF-8 reach the program with U+FFFD in place of the bytes.
            throw DataError(
                path: path,
                problem: path.contains("\u{FFFD}")
                    ? "is not a UTF-8 path, which ssl-run cannot open; rename it or pass a link with a UTF-8 name"
                    : "does not exist")
        }
        if !isFolder.boolValue {
            guard path.hasSuffix(".h5") || path.hasSuffix(".hdf5") else {
                throw DataError(path: path, problem: "is a file; --data takes a folder of images, a CIFAR folder or an .h5 file")
            }
            return try HDF5ImageDataset(path: path)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        if names.contains("data_batch_1.bin") || names.contains("test_batch.bin") {
            return try CIFARDataset(folder: path, variant: .cifar10, split: split == .train ? .train : .test)
        }
        if names.contains("train.bin") && names.contains("test.bin") {
            return try CIFARDataset(folder: path, variant: .cifar100, split: split == .train ? .train : .test)
        }
        return try ImageFolderDataset(path: path)
    }

    /// `--data scenes` or `scenes:SIDE`: ``FashionMNISTScenes`` from the Fashion-MNIST `split`, on
    /// canvases of SIDE pixels (default 56).
    static func scenes(_ argument: String, split: FashionMNISTDataset.Split) throws -> FashionMNISTScenes {
        let side = argument == "scenes" ? 56 : Int(argument.dropFirst("scenes:".count))
        guard let side, side >= FashionMNISTScenes.largestGarment else {
            throw ValidationError("--data \(argument): the canvas side must be a whole number of at least \(FashionMNISTScenes.largestGarment) pixels, e.g. scenes:64.")
        }
        return FashionMNISTScenes(source: try FashionMNISTDataset(split: split), canvasSize: side, seed: 0)
    }
}
