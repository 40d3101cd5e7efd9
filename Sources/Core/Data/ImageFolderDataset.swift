#if canImport(Glibc)
import Glibc
#endif

/// Every JPEG and PNG file under a folder, found recursively and sorted by path.
///
/// When every image sits inside a first-level subfolder, the subfolder names (sorted) are the
/// classes, as torchvision's `ImageFolder`; otherwise the dataset is unlabelled. Hidden files
/// and folders (names starting with a dot) are ignored. Creating the dataset fails, naming the
/// path, when the path is missing, holds no image file, or none of its first few image files
/// decodes; a file that fails later is the loader's to skip.
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

    /// Scans `path`; `probeCount` is how many files are decoded up front to make sure the
    /// folder holds real images.
    public init(path: String, probeCount: Int = 4) throws {
        var root = path
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        guard FileContents.exists(root) else { throw DataError(path: path, problem: "does not exist") }
        guard FileContents.isDirectory(root) else { throw DataError(path: path, problem: "is not a folder") }
        var relativePaths: [String] = []
        try Self.collect(folder: root, relative: "", into: &relativePaths)
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
        for index in 0..<min(max(probeCount, 1), paths.count) {
            do {
                _ = try image(at: index)
                firstError = nil
                break
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError {
            throw DataError(
                path: path, problem: "none of its first \(min(max(probeCount, 1), paths.count)) image files decodes (\(firstError))")
        }
    }

    private static func collect(folder: String, relative: String, into paths: inout [String]) throws {
        guard let directory = opendir(folder) else {
            throw DataError(path: folder, problem: "cannot be listed (\(String(cString: strerror(errno))))")
        }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            let full = "\(folder)/\(name)", relativeName = relative.isEmpty ? name : "\(relative)/\(name)"
            if FileContents.isDirectory(full) {
                try collect(folder: full, relative: relativeName, into: &paths)
            } else if let dot = name.lastIndex(of: "."),
                imageExtensions.contains(name[name.index(after: dot)...].lowercased())
            {
                paths.append(relativeName)
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
