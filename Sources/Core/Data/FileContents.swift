#if canImport(Glibc)
import Glibc
#endif

/// Reads whole files into memory.
enum FileContents {
    /// The bytes of the file at `path`.
    static func bytes(at path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw DataError(path: path, problem: "cannot be opened (\(String(cString: strerror(errno))))")
        }
        defer { fclose(file) }
        var status = stat()
        guard fstat(fileno(file), &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw DataError(path: path, problem: "is not a regular file")
        }
        let size = Int(status.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        let read = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, file) }
        guard read == size else { throw DataError(path: path, problem: "could not be read completely") }
        return bytes
    }

    /// Whether `path` names an existing directory.
    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether anything exists at `path`.
    static func exists(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0
    }
}
