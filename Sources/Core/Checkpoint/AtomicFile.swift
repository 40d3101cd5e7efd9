#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file so that readers see either the old or the new contents, never a mixture:
/// write a temporary file in the same folder, sync it, rename it over the target, sync the folder.
public enum AtomicFile {
    /// Calls `write` with a temporary path, then moves the result to `path`.
    public static func write(to path: String, _ write: (_ temporaryPath: String) throws -> Void) throws {
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let temporary = "\(folder)/.\(name).tmp-\(getpid())"
        unlink(temporary)
        do {
            try write(temporary)
            try sync(temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CheckpointError(path: path, problem: "could not be replaced (\(reason))")
        }
        try sync(folder)
    }

    private static func sync(_ path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CheckpointError(path: path, problem: "could not be opened to sync (\(String(cString: strerror(errno))))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw CheckpointError(path: path, problem: "could not be synced to disk (\(String(cString: strerror(errno))))") }
    }
}
