/// Images stored in an HDF5 file as one uint8 dataset of shape `N × H × W × C` (C = 1 or 3, or
/// `N × H × W` for grey), with an optional integer label dataset of length N.
///
/// The whole image dataset is read into memory when the dataset is created (HDF5 is not safe
/// to read from several threads, and this keeps the loader's threads independent).
public struct HDF5ImageDataset: ImageDataset {
    /// The file.
    public let path: String
    /// Image height, width and channels.
    public let height: Int, width: Int, channels: Int
    let pixels: [UInt8]
    /// The class of each image, when the file has labels.
    public let labels: [Int]?
    public let classNames: [String]

    /// Reads `imagesDataset` and, when the file has it, `labelsDataset` from the file at `path`.
    public init(path: String, imagesDataset: String = "images", labelsDataset: String? = "labels") throws {
        guard FileContents.exists(path) else { throw DataError(path: path, problem: "does not exist") }
        let file = try HDF5File(path: path)
        guard file.isDataset(imagesDataset) else {
            throw DataError(path: path, problem: "has no dataset '\(imagesDataset)'")
        }
        var shape = try file.shape(of: imagesDataset)
        if shape.count == 3 { shape.append(1) }
        guard shape.count == 4, [1, 3].contains(shape[3]), shape[0] > 0, shape[1] > 0, shape[2] > 0 else {
            throw DataError(
                path: path, problem: "'\(imagesDataset)' has shape \(shape), expected N x H x W x C with C = 1 or 3")
        }
        self.path = path
        (height, width, channels) = (shape[1], shape[2], shape[3])
        pixels = try file.readBytes(imagesDataset)
        if let labelsDataset, file.isDataset(labelsDataset) {
            let labels = try file.readIntegers(labelsDataset)
            guard labels.count == shape[0] else {
                throw DataError(
                    path: path, problem: "'\(labelsDataset)' holds \(labels.count) labels for \(shape[0]) images")
            }
            guard let largest = labels.max(), labels.allSatisfy({ $0 >= 0 }) else {
                throw DataError(path: path, problem: "'\(labelsDataset)' holds negative labels")
            }
            self.labels = labels
            classNames = (0...largest).map(String.init)
        } else {
            labels = nil
            classNames = []
        }
    }

    public var count: Int { pixels.count / (height * width * channels) }

    public func image(at index: Int) throws -> Image {
        let size = height * width * channels
        let slice = pixels[index * size..<(index + 1) * size]
        if channels == 3 { return Image(width: width, height: height, pixels: Array(slice)) }
        return slice.withUnsafeBufferPointer { Image(width: width, height: height, grey: $0) }
    }

    public func label(at index: Int) -> Int? { labels?[index] }

    public var description: String {
        "HDF5 images \(path): \(count) images of \(width)x\(height)x\(channels), "
            + (labels == nil ? "unlabelled" : "\(classNames.count) classes")
    }
}
