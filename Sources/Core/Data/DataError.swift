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

#if canImport(Glibc)
import Glibc
#endif

/// Reports data problems that do not stop training (skipped files) on standard error.
enum DataWarning {
    /// Writes `warning: <message>` and a newline to standard error in one call, so lines from
    /// several threads do not interleave.
    static func report(_ message: String) {
        let line = Array("warning: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
