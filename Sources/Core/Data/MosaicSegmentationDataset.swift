/// A dense-labelled dataset for patch-level probes: each sample is a square canvas with several
/// Fashion-MNIST items of different classes pasted at random places, and a per-pixel class map
/// (0 for background, 1…10 for the item classes 0…9).
///
/// Sample `i` is generated from `RandomGenerator(seed:path: [i])` alone: its first item is
/// source image `i mod source.count`, the others are random source images whose classes differ
/// from the items already chosen; items are pasted in order at uniform positions, so later
/// items cover earlier ones. An item's pixels count as foreground where their grey value
/// exceeds ``foregroundThreshold``; only those are pasted. Build the train and test sets from
/// the corresponding Fashion-MNIST splits.
public struct MosaicSegmentationDataset: ImageDataset {
    /// Grey values above this belong to an item; darker pixels stay background.
    public static let foregroundThreshold: UInt8 = 24

    /// The Fashion-MNIST split items come from.
    public let source: FashionMNISTDataset
    /// The side of the canvas (at least 28).
    public let canvasSize: Int
    /// Items per canvas (1…10, all of different classes).
    public let itemsPerImage: Int
    /// The seed every sample derives from.
    public let seed: UInt64
    public let count: Int
    public let classNames: [String]

    /// Mosaics of `itemsPerImage` items from `source` on `canvasSize × canvasSize` canvases;
    /// `count` defaults to one mosaic per source image.
    public init(source: FashionMNISTDataset, canvasSize: Int = 56, itemsPerImage: Int = 3, count: Int? = nil, seed: UInt64) {
        precondition(canvasSize >= FashionMNISTDataset.side, "The canvas must be at least 28 pixels, got \(canvasSize).")
        precondition((1...10).contains(itemsPerImage), "A mosaic holds 1…10 items, got \(itemsPerImage).")
        self.source = source
        self.canvasSize = canvasSize
        self.itemsPerImage = itemsPerImage
        self.count = count ?? source.count
        self.seed = seed
        classNames = ["background"] + source.classNames
    }

    /// Sample `index`: the canvas as RGB and its class map (`canvasSize²` values, row-major).
    public func segmentation(at index: Int) -> (image: Image, mask: [Int32]) {
        var generator = RandomGenerator(seed: seed, path: [UInt64(index)])
        let side = FashionMNISTDataset.side
        var items = [index % source.count]
        var usedClasses: Set<UInt8> = [source.labels[items[0]]]
        while items.count < itemsPerImage {
            let candidate = Int.random(in: 0..<source.count, using: &generator)
            if usedClasses.insert(source.labels[candidate]).inserted { items.append(candidate) }
        }
        var grey = [UInt8](repeating: 0, count: canvasSize * canvasSize)
        var mask = [Int32](repeating: 0, count: canvasSize * canvasSize)
        for item in items {
            let top = Int.random(in: 0...(canvasSize - side), using: &generator)
            let left = Int.random(in: 0...(canvasSize - side), using: &generator)
            let itemClass = Int32(source.labels[item]) + 1
            let offset = item * side * side
            for row in 0..<side {
                for column in 0..<side {
                    let value = source.greyPixels[offset + row * side + column]
                    guard value > Self.foregroundThreshold else { continue }
                    let target = (top + row) * canvasSize + left + column
                    grey[target] = value
                    mask[target] = itemClass
                }
            }
        }
        let image = grey.withUnsafeBufferPointer { Image(width: canvasSize, height: canvasSize, grey: $0) }
        return (image, mask)
    }

    public func image(at index: Int) throws -> Image { segmentation(at: index).image }

    /// Mosaics carry a class per pixel, not per image.
    public func label(at index: Int) -> Int? { nil }

    public var description: String {
        "Fashion-MNIST mosaics (\(source.split.rawValue)): \(count) canvases of \(canvasSize)x\(canvasSize), "
            + "\(itemsPerImage) items each, 11 classes with background"
    }
}
