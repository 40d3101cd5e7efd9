/// The crops of one training step: `globalCount` global crops of `globalSize`, then
/// `localCount` local crops of `localSize`.
public struct ViewPlan: Codable, Sendable, Equatable {
    public var globalCount: Int
    public var globalSize: Int
    public var localCount: Int
    public var localSize: Int

    public init(globalCount: Int = 2, globalSize: Int, localCount: Int = 0, localSize: Int = 0) {
        self.globalCount = globalCount
        self.globalSize = globalSize
        self.localCount = localCount
        self.localSize = localSize
    }

    /// Global and local crops together.
    public var count: Int { globalCount + localCount }
    /// The side of each view, in order.
    public var sizes: [Int] { Array(repeating: globalSize, count: globalCount) + Array(repeating: localSize, count: localCount) }
}
