/// `count` images of a dataset chosen by a seeded shuffle, e.g. to train or evaluate on part
/// of it.
public struct DatasetSubset: ImageDataset {
    public let base: any ImageDataset
    /// The chosen indices into `base`, in shuffled order.
    public let indices: [Int]

    /// The first `count` images of a shuffle of `base` drawn from `seed` and `stream` (callers
    /// that must not share a shuffle pass different streams).
    public init(_ base: any ImageDataset, count: Int, seed: UInt64, stream: UInt64) {
        var generator = RandomGenerator(seed: seed, path: [stream])
        self.base = base
        indices = Array(Array(0..<base.count).shuffled(using: &generator).prefix(count))
    }

    public var count: Int { indices.count }
    public var classNames: [String] { base.classNames }
    public var description: String { "\(indices.count) images of \(base.description)" }
    public func image(at index: Int) throws -> Image { try base.image(at: indices[index]) }
    public func label(at index: Int) -> Int? { base.label(at: indices[index]) }
}
