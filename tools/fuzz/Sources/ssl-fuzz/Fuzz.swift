import Foundation
import SSLCore

/// One fuzz input: the first byte chooses the reader, the rest is the file.
///
/// 0: image decoding (JPEG / PNG, by signature), 1: an HDF5 images file, 2: a CIFAR-10 batch
/// folder. Every reader must either return a value or throw: a trap, a crash or a hang is a
/// finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 1 else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let file = Array(bytes.dropFirst())
    switch bytes[0] % 3 {
    case 0:
        _ = try? ImageDecoder.decode(file, path: "fuzz-input")
    case 1:
        let path = FuzzFiles.write(file, name: "images.h5")
        if let dataset = try? HDF5ImageDataset(path: path), dataset.count > 0 {
            _ = try? dataset.image(at: 0)
        }
    default:
        let folder = FuzzFiles.folder
        _ = FuzzFiles.write(file, name: "cifar-10-batches-bin/test_batch.bin")
        if let dataset = try? CIFARDataset(folder: folder, variant: .cifar10, split: .test), dataset.count > 0 {
            _ = try? dataset.image(at: dataset.count - 1)
        }
    }
    return 0
}

/// A scratch folder of this process for inputs that readers take as files.
enum FuzzFiles {
    static let folder: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ssl-fuzz-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: "\(path)/cifar-10-batches-bin", withIntermediateDirectories: true)
        return path
    }()

    static func write(_ bytes: [UInt8], name: String) -> String {
        let path = "\(folder)/\(name)"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> CInt

/// The program's entry (SwiftPM names an executable's `main` after its module): hands over to
/// libFuzzer's driver with this file's test function.
@_cdecl("ssl_fuzz_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { start, count in fuzz(start, count) }
}
