import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Exclusive use of a run folder by one process: an advisory lock (`flock`) on the folder's
/// `.lock` file, which holds the owner's process id. The system releases the lock when the
/// owner exits, however it exits, so a lock left by a killed run never blocks the next one.
public final class RunFolderLock {
    /// The lock file's name inside a run folder.
    public static let fileName = ".lock"

    /// The locked folder.
    public let folder: String
    private let descriptor: Int32

    /// Locks `folder` (which must exist) for this process.
    ///
    /// - Throws: ``RunFolderLockError`` naming the process that holds the folder, or why the
    ///   lock file cannot be used.
    public init(folder: String) throws {
        self.folder = folder
        let path = "\(folder)/\(Self.fileName)"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw RunFolderLockError(description: "\(path): cannot be opened (\(String(cString: strerror(errno)))); check the folder's permissions.")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.owner(descriptor)
            close(descriptor)
            throw RunFolderLockError(
                description: "\(folder) is in use by another ssl-run (process \(holder.map(String.init) ?? "unknown")); "
                    + "wait for it to finish or choose another --output.")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    private static func owner(_ descriptor: Int32) -> Int? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int(String(decoding: bytes[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// A run folder that another process is using.
public struct RunFolderLockError: Error, CustomStringConvertible {
    public var description: String
}
