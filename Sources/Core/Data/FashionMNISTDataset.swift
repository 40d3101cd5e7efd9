/// Fashion-MNIST (Zalando): 28×28 grey images of clothing in 10 classes, read from the gzip IDX
/// files of the Debian package `dataset-fashion-mnist`; the images are exposed as RGB.
public struct FashionMNISTDataset: ImageDataset {
    /// The two halves of the dataset.
    public enum Split: String, Sendable, CaseIterable {
        /// 60,000 training images (`train-*`).
        case train
        /// 10,000 test images (`t10k-*`).
        case test

        var filePrefix: String { self == .train ? "train" : "t10k" }
    }

    /// Where the Debian package installs the files.
    public static let defaultFolder = "/usr/share/datasets/fashion-mnist"
    /// The side of every image.
    public static let side = 28

    /// The split read.
    public let split: Split
    /// The folder read.
    public let folder: String
    /// `count × 28 × 28` grey bytes.
    public let greyPixels: [UInt8]
    /// The class of each image (0…9).
    public let labels: [UInt8]
    public let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// Reads `split` from `folder`; fails naming the file when a file is missing or malformed.
    public init(split: Split, folder: String = FashionMNISTDataset.defaultFolder) throws {
        self.split = split
        self.folder = folder
        let imagePath = "\(folder)/\(split.filePrefix)-images-idx3-ubyte.gz"
        let labelPath = "\(folder)/\(split.filePrefix)-labels-idx1-ubyte.gz"
        let images = try IDXFile(path: imagePath, expectedDimensions: [nil, Self.side, Self.side])
        let labels = try IDXFile(path: labelPath, expectedDimensions: [nil])
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError(
                path: labelPath,
                problem: "holds \(labels.dimensions[0]) labels but \(imagePath) holds \(images.dimensions[0]) images")
        }
        if let bad = labels.values.first(where: { $0 >= 10 }) {
            throw DataError(path: labelPath, problem: "holds label \(bad), outside 0…9")
        }
        greyPixels = images.values
        self.labels = labels.values
    }

    public var count: Int { labels.count }

    public func image(at index: Int) throws -> Image {
        let size = Self.side * Self.side
        return greyPixels.withUnsafeBufferPointer { pixels in
            Image(
                width: Self.side, height: Self.side,
                grey: UnsafeBufferPointer(rebasing: pixels[index * size..<(index + 1) * size]))
        }
    }

    public func label(at index: Int) -> Int? { Int(labels[index]) }

    public var description: String { "Fashion-MNIST \(split.rawValue) (\(folder)): \(count) images, 10 classes" }
}

/// An IDX file of unsigned bytes (the MNIST format), optionally gzip-compressed.
struct IDXFile {
    let dimensions: [Int]
    let values: [UInt8]

    /// Reads and checks the file; `nil` in `expectedDimensions` accepts any size.
    init(path: String, expectedDimensions: [Int?]) throws {
        let bytes = try GzipFile.contents(of: path)
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw DataError(path: path, problem: "is not an IDX file (bad magic number)")
        }
        guard bytes[2] == 0x08 else {
            throw DataError(path: path, problem: "holds IDX element type \(bytes[2]), expected unsigned bytes (8)")
        }
        let rank = Int(bytes[3])
        guard rank == expectedDimensions.count else {
            throw DataError(path: path, problem: "has \(rank) dimensions, expected \(expectedDimensions.count)")
        }
        let header = 4 + 4 * rank
        guard bytes.count >= header else { throw DataError(path: path, problem: "has a truncated IDX header") }
        dimensions = (0..<rank).map { axis in
            (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * axis + $1]) }
        }
        for (axis, expected) in expectedDimensions.enumerated() {
            if let expected, dimensions[axis] != expected {
                throw DataError(path: path, problem: "has size \(dimensions[axis]) along axis \(axis), expected \(expected)")
            }
        }
        let count = dimensions.reduce(1, *)
        guard bytes.count == header + count else {
            throw DataError(
                path: path, problem: "holds \(bytes.count - header) data bytes, its header \(dimensions) says \(count)")
        }
        values = Array(bytes[header...])
    }
}
