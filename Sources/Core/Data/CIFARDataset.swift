/// CIFAR-10 or CIFAR-100 from the binary batches (the `cifar-10-batches-bin` or
/// `cifar-100-binary` folder of the official archives): 32×32 RGB images with labels (the fine
/// labels for CIFAR-100).
public struct CIFARDataset: ImageDataset {
    /// Which CIFAR.
    public enum Variant: String, Sendable {
        case cifar10, cifar100

        var subfolder: String { self == .cifar10 ? "cifar-10-batches-bin" : "cifar-100-binary" }
        /// Label bytes before the pixels of each record (CIFAR-100: coarse then fine).
        var labelBytes: Int { self == .cifar10 ? 1 : 2 }
        var classCount: Int { self == .cifar10 ? 10 : 100 }
        var namesFile: String { self == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt" }

        func files(_ split: Split) -> [String] {
            switch (self, split) {
            case (.cifar10, .train): return (1...5).map { "data_batch_\($0).bin" }
            case (.cifar10, .test): return ["test_batch.bin"]
            case (.cifar100, .train): return ["train.bin"]
            case (.cifar100, .test): return ["test.bin"]
            }
        }
    }

    /// The two halves of the dataset.
    public enum Split: String, Sendable {
        case train, test
    }

    static let side = 32
    static let pixelBytes = 3 * side * side

    /// The folder holding the batch files.
    public let folder: String
    /// Which CIFAR.
    public let variant: Variant
    /// Which half.
    public let split: Split
    /// `count × 3 × 32 × 32` bytes, channel planes as in the files.
    let planarPixels: [UInt8]
    /// The class of each image.
    public let labels: [UInt8]
    public let classNames: [String]

    /// Reads `split` of `variant` from `folder` (the batch folder or the folder containing it).
    public init(folder: String, variant: Variant, split: Split) throws {
        let nested = "\(folder)/\(variant.subfolder)"
        let batchFolder = FileContents.isDirectory(nested) ? nested : folder
        guard FileContents.isDirectory(batchFolder) else { throw DataError(path: folder, problem: "is not a folder") }
        let recordBytes = variant.labelBytes + Self.pixelBytes
        var pixels: [UInt8] = [], labels: [UInt8] = []
        for name in variant.files(split) {
            let path = "\(batchFolder)/\(name)"
            guard FileContents.exists(path) else {
                throw DataError(path: path, problem: "does not exist (expected the \(variant.rawValue) binary batches)")
            }
            let bytes = try FileContents.bytes(at: path)
            guard !bytes.isEmpty, bytes.count % recordBytes == 0 else {
                throw DataError(
                    path: path, problem: "has \(bytes.count) bytes, not a whole number of \(recordBytes)-byte records")
            }
            for record in 0..<bytes.count / recordBytes {
                let start = record * recordBytes
                let label = bytes[start + variant.labelBytes - 1]
                guard Int(label) < variant.classCount else {
                    throw DataError(path: path, problem: "record \(record) has label \(label), outside 0..<\(variant.classCount)")
                }
                labels.append(label)
                pixels += bytes[(start + variant.labelBytes)..<(start + recordBytes)]
            }
        }
        self.folder = batchFolder
        self.variant = variant
        self.split = split
        planarPixels = pixels
        self.labels = labels
        let namesPath = "\(batchFolder)/\(variant.namesFile)"
        let names = (try? FileContents.bytes(at: namesPath)).map {
            String(decoding: $0, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        }
        classNames = names?.count == variant.classCount ? names! : (0..<variant.classCount).map(String.init)
    }

    public var count: Int { labels.count }

    public func image(at index: Int) throws -> Image {
        let plane = Self.side * Self.side
        let pixels = [UInt8](unsafeUninitializedCapacity: Self.pixelBytes) { buffer, initialized in
            planarPixels.withUnsafeBufferPointer { source in
                let start = index * Self.pixelBytes
                for pixel in 0..<plane {
                    for channel in 0..<3 { buffer[3 * pixel + channel] = source[start + channel * plane + pixel] }
                }
            }
            initialized = Self.pixelBytes
        }
        return Image(width: Self.side, height: Self.side, pixels: pixels)
    }

    public func label(at index: Int) -> Int? { Int(labels[index]) }

    public var description: String {
        "\(variant.rawValue) \(split.rawValue) (\(folder)): \(count) images, \(variant.classCount) classes"
    }
}
