import CZlib

/// Reads whole gzip-compressed (or plain) files through zlib.
enum GzipFile {
    /// The decompressed bytes of the file at `path`.
    static func contents(of path: String) throws -> [UInt8] {
        guard FileContents.exists(path) else { throw DataError(path: path, problem: "does not exist") }
        guard let file = gzopen(path, "rb") else { throw DataError(path: path, problem: "cannot be opened") }
        defer { gzclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let read = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if read < 0 {
                var code: Int32 = 0
                let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown error"
                throw DataError(path: path, problem: "is a corrupt gzip file (\(message))")
            }
            if read == 0 { break }
            bytes += chunk[0..<Int(read)]
        }
        return bytes
    }
}
