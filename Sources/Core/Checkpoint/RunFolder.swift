import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// File operations on a run folder with errors that name the path and the system's reason.
public enum RunFolder {
    /// Creates the folder at `path` and any missing parents.
    ///
    /// - Throws: ``FileSystemError`` naming the path and the reason (a file in the way, a
    ///   read-only file system, a permission).
    public static func create(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/\(component)"
            var status = stat()
            if stat(prefix, &status) == 0 {
                guard (status.st_mode & S_IFMT) == S_IFDIR else {
                    throw FileSystemError(path: prefix, problem: "is a file, not a folder; choose another --output")
                }
                continue
            }
            guard mkdir(prefix, 0o755) == 0 || errno == EEXIST else {
                throw FileSystemError(path: path, problem: "cannot be created (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// The size in bytes of the file at `path`, or `nil` when there is none.
    public static func length(of path: String) -> Int? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return Int(status.st_size)
    }

    /// Shortens the file at `path` to `length` bytes when it is longer (`nil`: leave it).
    public static func truncate(_ path: String, toLength length: Int?) throws {
        guard let length, let current = self.length(of: path), current > length else { return }
        guard Glibc.truncate(path, off_t(length)) == 0 else {
            throw FileSystemError(path: path, problem: "cannot be shortened (\(String(cString: strerror(errno))))")
        }
    }
}
