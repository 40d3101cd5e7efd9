import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file so that readers see either the old or the new contents, never a mixture:
/// write a temporary file in the same folder, sync it, rename it over the target, sync the folder.
///
/// Temporary files are named `.<name>.tmp-<process id>`; a process killed while writing leaves
/// one behind, which ``removeStaleTemporaryFiles(in:)`` deletes once that process is gone.
public enum AtomicFile {
    /// Calls `write` with a temporary path, then moves the result to `path`. On any failure
    /// (a full disk included) the temporary file is removed and `path` keeps its old contents.
    public static func write(to path: String, _ write: (_ temporaryPath: String) throws -> Void) throws {
        let folder = folder(of: path)
        let temporary = "\(folder)/\(temporaryPrefix(for: path))\(getpid())"
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
            throw FileSystemError(path: path, problem: "could not be replaced (\(reason))")
        }
        try sync(folder)
    }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { temporary in
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard descriptor >= 0 else { throw failure(path, "could not be created") }
            defer { close(descriptor) }
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw failure(path, "could not be written") }
                offset += written
            }
        }
    }

    /// Copies the file at `source` to `path` atomically (e.g. a per-epoch copy of a checkpoint).
    public static func copy(from source: String, to path: String) throws {
        let input = open(source, O_RDONLY)
        guard input >= 0 else { throw failure(source, "could not be opened to copy") }
        defer { close(input) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        try write(to: path) { temporary in
            let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard output >= 0 else { throw failure(path, "could not be created") }
            defer { close(output) }
            while true {
                let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw failure(source, "could not be read") }
                if count == 0 { break }
                var offset = 0
                while offset < count {
                    let written = buffer[offset..<count].withUnsafeBytes { Glibc.write(output, $0.baseAddress, $0.count) }
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { throw failure(path, "could not be written") }
                    offset += written
                }
            }
        }
    }

    /// Deletes the temporary files in `folder` left by processes that no longer run (killed
    /// while writing) and returns their names.
    @discardableResult
    public static func removeStaleTemporaryFiles(in folder: String) -> [String] {
        guard let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var removed: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards),
                let owner = pid_t(name[marker.upperBound...]), owner != getpid(), !ProcessState.isRunning(owner)
            else { continue }
            if unlink("\(folder)/\(name)") == 0 { removed.append(name) }
        }
        return removed
    }

    private static func temporaryPrefix(for path: String) -> String {
        ".\(path.split(separator: "/").last.map(String.init) ?? path).tmp-"
    }

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// An error naming `path`, `problem` and the system's reason (e.g. "No space left on device").
    static func failure(_ path: String, _ problem: String) -> FileSystemError {
        FileSystemError(path: path, problem: "\(problem) (\(String(cString: strerror(errno))))")
    }

    private static func sync(_ path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw failure(path, "could not be opened to sync") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw failure(path, "could not be synced to disk") }
    }
}

/// Questions about other processes.
enum ProcessState {
    /// Whether a process with id `process` exists.
    static func isRunning(_ process: pid_t) -> Bool {
        process > 0 && (kill(process, 0) == 0 || errno == EPERM)
    }
}
