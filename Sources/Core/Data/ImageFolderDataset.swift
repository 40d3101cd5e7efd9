#if canImport(Glibc)
import Glibc
#endif

/// Every JPEG and PNG file under a folder, found recursively and sorted by path.
///
/// When every image sits inside a first-level subfolder, the subfolder names (sorted) are the
/// classes, as torchvision's `ImageFolder`; otherwise the dataset is unlabelled. Hidden files
/// and folders (names starting with a dot) are ignored, and so is anything that is not a regular
/// file (FIFOs, sockets, devices) and any name that is not UTF-8 (with a warning). Symbolic
/// links are followed, each real folder once (by device and inode), so link loops end.
/// Creating the dataset fails, naming the path, when the path is missing, holds no image file,
/// or none of its image files decodes; a file that fails later is the loader's to skip.
public struct ImageFolderDataset: ImageDataset {
    /// The folder.
    public let root: String
    /// The image files, sorted.
    public let paths: [String]
    /// The class of each file, when the folder is labelled.
    public let labels: [Int]?
    public let classNames: [String]

    /// The file extensions treated as images (compared without case).
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Scans `path` and decodes files in order until one decodes, to make sure the folder
    /// holds real images.
    public init(path: String) throws {
        var root = path
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        guard FileContents.exists(root) else { throw DataError(path: path, problem: "does not exist") }
        guard FileContents.isDirectory(root) else { throw DataError(path: path, problem: "is not a folder") }
        var relativePaths: [String] = []
        var visited: Set<FileIdentity> = []
        try Self.collect(folder: root, relative: "", visited: &visited, into: &relativePaths)
        relativePaths.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        guard !relativePaths.isEmpty else {
            throw DataError(path: path, problem: "holds no JPEG or PNG file (looked for .jpg, .jpeg, .png, recursively)")
        }
        self.root = root
        paths = relativePaths.map { "\(root)/\($0)" }
        let folders = relativePaths.map { $0.split(separator: "/", maxSplits: 1) }
        if folders.allSatisfy({ $0.count == 2 }) {
            let names = Array(Set(folders.map { String($0[0]) })).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            let classIndex = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
            classNames = names
            labels = folders.map { classIndex[String($0[0])]! }
        } else {
            classNames = []
            labels = nil
        }
        var firstError: Error?
        for index in paths.indices {
            do {
                _ = try image(at: index)
                firstError = nil
                break
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError {
            throw DataError(path: path, problem: "none of its \(paths.count) image files decodes (the first: \(firstError))")
        }
    }

    /// A file system object, the same whatever path or link leads to it.
    private struct FileIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private static func collect(
        folder: String, relative: String, visited: inout Set<FileIdentity>, into paths: inout [String]
    ) throws {
        var status = stat()
        guard stat(folder, &status) == 0 else {
            throw DataError(path: folder, problem: "cannot be read (\(String(cString: strerror(errno))))")
        }
        guard visited.insert(FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))).inserted else {
            return  // Reached again through a symbolic link.
        }
        guard let directory = opendir(folder) else {
            throw DataError(path: folder, problem: "cannot be listed (\(String(cString: strerror(errno))))")
        }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            guard let name = String(validating: bytes, as: UTF8.self) else {
                DataWarning.report(
                    "skipping '\(String(decoding: bytes, as: UTF8.self))' in \(folder): its name is not UTF-8; rename it to use it")
                continue
            }
            if name.hasPrefix(".") { continue }
            let full = "\(folder)/\(name)", relativeName = relative.isEmpty ? name : "\(relative)/\(name)"
            guard stat(full, &status) == 0 else { continue }  // A dangling link.
            switch status.st_mode & S_IFMT {
            case S_IFDIR:
                try collect(folder: full, relative: relativeName, visited: &visited, into: &paths)
            case S_IFREG:
                if let dot = name.lastIndex(of: "."), imageExtensions.contains(name[name.index(after: dot)...].lowercased()) {
                    paths.append(relativeName)
                }
            default:
                continue  // FIFOs, sockets and devices: opening a FIFO would block.
            }
        }
    }

    public var count: Int { paths.count }

    public func image(at index: Int) throws -> Image {
        try ImageDecoder.decode(contentsOf: paths[index])
    }

    public func label(at index: Int) -> Int? { labels?[index] }

    public var description: String {
        let kind = labels == nil ? "unlabelled" : "\(classNames.count) classes"
        return "image folder \(root): \(count) images, \(kind)"
    }
}
