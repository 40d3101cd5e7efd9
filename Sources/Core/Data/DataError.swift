/// A dataset, file or image that cannot be used, naming the path and the problem.
public struct DataError: Error, CustomStringConvertible, Equatable {
    /// The file or folder involved.
    public var path: String
    /// What is wrong with it.
    public var problem: String

    /// An error about `path`.
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}
