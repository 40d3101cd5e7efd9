import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file or folder that cannot be created, written or read, with the system's reason.
public struct FileSystemError: Error, CustomStringConvertible {
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    /// An error whose reason comes from `error` (a Foundation or POSIX error): "No space left
    /// on device" rather than a dump of the error's domain and code.
    public init(path: String, problem: String, _ error: Error) {
        self.init(path: path, problem: "\(problem) (\(Self.reason(of: error)))")
    }

    public var description: String { "\(path): \(problem)." }

    /// The system's description of what caused `error`.
    public static func reason(of error: Error) -> String {
        let error = error as NSError
        if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError { return reason(of: underlying) }
        if error.domain == NSCocoaErrorDomain {
            switch CocoaError.Code(rawValue: error.code) {
            case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
            case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
            case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
            case .fileWriteNoPermission, .fileReadNoPermission: return String(cString: strerror(EACCES))
            default: break
            }
        }
        return error.localizedDescription
    }
}
