import CHDF5
#if canImport(Glibc)
import Glibc
#endif

/// A failure reading or writing an HDF5 file, naming the file and the object involved.
public struct HDF5Error: Error, CustomStringConvertible {
    public var file: String
    public var object: String
    public var problem: String

    public var description: String {
        object.isEmpty ? "\(file): \(problem)" : "\(file): '\(object)': \(problem)"
    }
}

/// An open HDF5 file: float tensors, integer and string arrays, and attributes, addressed by
/// slash-separated paths such as `params/blocks.0.attn.qkv.weight`.
///
/// Dots inside names are ordinary characters in HDF5, so PyTorch state-dict keys are dataset
/// names as they are.
public final class HDF5File {
    /// How to open a file.
    public enum Mode {
        /// Read an existing file.
        case read
        /// Create a new file, replacing any file at the path.
        case create
        /// Change an existing file.
        case readWrite
        /// Create a file in memory only; ``image()`` gives its bytes.
        case createInMemory
    }

    /// The file's path, for messages.
    public let path: String
    /// The HDF5 file identifier (for extensions in this module).
    let handle: hid_t
    private var isOpen = true

    /// Opens or creates the file at `path`.
    public init(path: String, mode: Mode = .read) throws {
        HDF5Library.prepare()
        self.path = path
        if mode == .read || mode == .readWrite {
            // Opening a FIFO would block until something writes to it.
            var status = stat()
            if stat(path, &status) == 0 && (status.st_mode & S_IFMT) != S_IFREG {
                throw HDF5Error(file: path, object: "", problem: "is not a regular file")
            }
        }
        errno = 0
        switch mode {
        case .read:
            handle = H5Fopen(path, ssl_h5f_acc_rdonly(), hid_t(H5P_DEFAULT))
        case .create:
            handle = H5Fcreate(path, ssl_h5f_acc_trunc(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        case .readWrite:
            handle = H5Fopen(path, ssl_h5f_acc_rdwr(), hid_t(H5P_DEFAULT))
        case .createInMemory:
            let access = H5Pcreate(ssl_h5p_file_access())
            defer { H5Pclose(access) }
            H5Pset_fapl_core(access, 1 << 20, false)
            handle = H5Fcreate(path, ssl_h5f_acc_trunc(), hid_t(H5P_DEFAULT), access)
        }
        if handle < 0 {
            throw HDF5Error(
                file: path, object: "",
                problem: mode == .create || mode == .createInMemory
                    ? "cannot be created\(Self.systemReason())"
                    : "cannot be opened as an HDF5 file (missing, unreadable or corrupt)")
        }
    }

    deinit { close() }

    /// Closes the file; later calls do nothing. Files also close when released.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        H5Fclose(handle)
    }

    /// Writes buffered data to disk.
    public func flush() throws {
        errno = 0
        if H5Fflush(handle, H5F_SCOPE_GLOBAL) < 0 { throw error("", "could not be flushed\(Self.systemReason())") }
    }

    /// The bytes of the whole file, as they would be on disk.
    public func image() throws -> [UInt8] {
        try flush()
        let size = H5Fget_file_image(handle, nil, 0)
        guard size > 0 else { throw error("", "its image could not be made") }
        var bytes = [UInt8](repeating: 0, count: size)
        guard bytes.withUnsafeMutableBytes({ H5Fget_file_image(handle, $0.baseAddress, size) }) == size else {
            throw error("", "its image could not be made")
        }
        return bytes
    }

    /// Builds a file in memory with `write`, then stores it at `path` atomically. The disk is
    /// only written by ``AtomicFile``, so a full disk or any other failure leaves the previous
    /// file in place and no temporary file behind.
    public static func writeAtomically(to path: String, _ write: (HDF5File) throws -> Void) throws {
        // Named apart from `path`, which this process may have open for reading.
        let file = try HDF5File(path: "\(path).in-memory-\(getpid())", mode: .createInMemory)
        defer { file.close() }
        try write(file)
        let bytes = try file.image()
        file.close()
        try AtomicFile.write(bytes, to: path)
    }

    /// The system's reason for the last failure, as " (reason)", or "" when there is none.
    static func systemReason() -> String {
        errno == 0 ? "" : " (\(String(cString: strerror(errno))))"
    }

    // MARK: Structure

    /// Whether an object (group or dataset) exists at `objectPath`; every parent must exist too.
    public func contains(_ objectPath: String) -> Bool {
        var prefix = ""
        for component in objectPath.split(separator: "/") {
            prefix += prefix.isEmpty ? String(component) : "/\(component)"
            if H5Lexists(handle, prefix, hid_t(H5P_DEFAULT)) <= 0 { return false }
        }
        return true
    }

    /// The names of the direct members of the group at `groupPath` ("" or "/" for the root),
    /// in name order.
    public func members(of groupPath: String) throws -> [String] {
        let group = H5Gopen2(handle, groupPath.isEmpty ? "/" : groupPath, hid_t(H5P_DEFAULT))
        guard group >= 0 else { throw error(groupPath, "is not a group in this file") }
        defer { H5Gclose(group) }
        final class Names { var values: [String] = [] }
        let names = Names()
        var index: hsize_t = 0
        let status = H5Literate(
            group, H5_INDEX_NAME, H5_ITER_INC, &index,
            { _, name, _, context in
                let names = Unmanaged<Names>.fromOpaque(context!).takeUnretainedValue()
                names.values.append(String(cString: name!))
                return 0
            }, Unmanaged.passUnretained(names).toOpaque())
        if status < 0 { throw error(groupPath, "could not be listed") }
        return names.values
    }

    /// Whether `objectPath` names a dataset (as opposed to a group).
    public func isDataset(_ objectPath: String) -> Bool {
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(handle, objectPath, &info, UInt32(H5O_INFO_BASIC), hid_t(H5P_DEFAULT)) >= 0
        else { return false }
        return info.type == H5O_TYPE_DATASET
    }

    /// The shape of the dataset at `datasetPath`.
    public func shape(of datasetPath: String) throws -> [Int] {
        try withDataset(datasetPath) { dataset in try shape(ofDataset: dataset, datasetPath) }
    }

    // MARK: Reading

    /// The dataset at `datasetPath` as a float32 tensor (converting from any numeric type).
    public func readTensor(_ datasetPath: String) throws -> Tensor {
        try withDataset(datasetPath) { dataset in
            let tensor = Tensor(uninitializedShape: try shape(ofDataset: dataset, datasetPath))
            if H5Dread(dataset, ssl_h5t_native_float(), H5S_ALL, H5S_ALL, hid_t(H5P_DEFAULT), tensor.storage.base) < 0 {
                throw error(datasetPath, "could not be read (corrupt data or checksum mismatch)")
            }
            tensor.name = datasetPath
            return tensor
        }
    }

    /// The dataset at `datasetPath` as float64 values, flattened.
    public func readDoubles(_ datasetPath: String) throws -> [Double] {
        try read(datasetPath, type: ssl_h5t_native_double(), repeating: 0.0)
    }

    /// The dataset at `datasetPath` as integers, flattened.
    public func readIntegers(_ datasetPath: String) throws -> [Int] {
        try read(datasetPath, type: ssl_h5t_native_int64(), repeating: Int64(0)).map { Int($0) }
    }

    /// A dataset of fixed-length strings, flattened.
    public func readStrings(_ datasetPath: String) throws -> [String] {
        try withDataset(datasetPath) { dataset in
            let fileType = H5Dget_type(dataset)
            defer { H5Tclose(fileType) }
            guard H5Tget_class(fileType) == H5T_STRING, H5Tis_variable_str(fileType) == 0 else {
                throw error(datasetPath, "is not a fixed-length string dataset")
            }
            // One more byte than the file's width: strings stored without a terminating NUL
            // (h5py's fixed-length `S` type) must not lose their last character.
            let width = H5Tget_size(fileType) + 1
            let count = try shape(ofDataset: dataset, datasetPath).reduce(1, *)
            let memoryType = try stringType(width: width)
            defer { H5Tclose(memoryType) }
            var bytes = [CChar](repeating: 0, count: count * width + 1)
            if H5Dread(dataset, memoryType, H5S_ALL, H5S_ALL, hid_t(H5P_DEFAULT), &bytes) < 0 {
                throw error(datasetPath, "could not be read")
            }
            return (0..<count).map { index in
                let slice = bytes[(index * width)..<((index + 1) * width)]
                return String(decoding: slice.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    /// A numeric attribute of the object at `objectPath` ("" for the root).
    public func numericAttribute(_ name: String, of objectPath: String = "") throws -> Double {
        try withAttribute(name, of: objectPath) { attribute in
            let space = H5Aget_space(attribute)
            defer { H5Sclose(space) }
            let count = H5Sget_simple_extent_npoints(space)
            guard count == 1 else {
                throw error(objectPath, "attribute '\(name)' holds \(count) values, not one number")
            }
            var value = 0.0
            if H5Aread(attribute, ssl_h5t_native_double(), &value) < 0 {
                throw error(objectPath, "attribute '\(name)' is not numeric")
            }
            return value
        }
    }

    /// A string attribute of the object at `objectPath` ("" for the root).
    public func stringAttribute(_ name: String, of objectPath: String = "") throws -> String {
        try withAttribute(name, of: objectPath) { attribute in
            let fileType = H5Aget_type(attribute)
            defer { H5Tclose(fileType) }
            guard H5Tget_class(fileType) == H5T_STRING else {
                throw error(objectPath, "attribute '\(name)' is not a string")
            }
            if H5Tis_variable_str(fileType) > 0 {
                let memoryType = H5Tcopy(ssl_h5t_c_s1())
                defer { H5Tclose(memoryType) }
                H5Tset_size(memoryType, Int(bitPattern: UInt(bitPattern: -1)))
                var pointer: UnsafeMutablePointer<CChar>? = nil
                if H5Aread(attribute, memoryType, &pointer) < 0 {
                    throw error(objectPath, "attribute '\(name)' could not be read")
                }
                defer { free(pointer) }
                return pointer.map { String(cString: $0) } ?? ""
            }
            let width = H5Tget_size(fileType) + 1
            let memoryType = try stringType(width: width)
            defer { H5Tclose(memoryType) }
            var bytes = [CChar](repeating: 0, count: width + 1)
            if H5Aread(attribute, memoryType, &bytes) < 0 {
                throw error(objectPath, "attribute '\(name)' could not be read")
            }
            return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: Writing

    /// Writes `tensor` as a float32 dataset at `datasetPath`, creating intermediate groups.
    ///
    /// - Parameter checksum: protect the data with HDF5's Fletcher-32 filter, so corruption is
    ///   detected on reading.
    public func write(_ tensor: Tensor, at datasetPath: String, checksum: Bool = true) throws {
        try writeArray(
            datasetPath, shape: tensor.shape, type: ssl_h5t_native_float(), checksum: checksum,
            data: UnsafeRawPointer(tensor.storage.base))
    }

    /// Writes `tensor` into the existing float32 dataset at `datasetPath`, which must have the
    /// tensor's shape; the dataset keeps its storage and filters (its checksum is recomputed).
    public func overwrite(_ tensor: Tensor, at datasetPath: String) throws {
        try withDataset(datasetPath) { dataset in
            let shape = try shape(ofDataset: dataset, datasetPath)
            guard shape == tensor.shape else {
                throw error(datasetPath, "has shape \(shape) and cannot take a tensor of shape \(tensor.shape)")
            }
            errno = 0
            if tensor.count > 0,
               H5Dwrite(dataset, ssl_h5t_native_float(), H5S_ALL, H5S_ALL, hid_t(H5P_DEFAULT), UnsafeRawPointer(tensor.storage.base)) < 0 {
                throw error(datasetPath, "dataset could not be written\(Self.systemReason())")
            }
        }
    }

    /// Writes integers as an int64 dataset.
    public func write(integers: [Int], shape: [Int]? = nil, at datasetPath: String) throws {
        let values = integers.map { Int64($0) }
        try values.withUnsafeBytes { raw in
            try writeArray(
                datasetPath, shape: shape ?? [values.count], type: ssl_h5t_native_int64(), checksum: true,
                data: raw.baseAddress!)
        }
    }

    /// Writes doubles as a float64 dataset.
    public func write(doubles: [Double], shape: [Int]? = nil, at datasetPath: String) throws {
        try doubles.withUnsafeBytes { raw in
            try writeArray(
                datasetPath, shape: shape ?? [doubles.count], type: ssl_h5t_native_double(), checksum: true,
                data: raw.baseAddress!)
        }
    }

    /// Writes a numeric attribute (float64) on the object at `objectPath` ("" for the root).
    public func setAttribute(_ name: String, _ value: Double, of objectPath: String = "") throws {
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        try createAttribute(name, of: objectPath, type: ssl_h5t_native_double(), space: space) { attribute in
            var value = value
            return H5Awrite(attribute, ssl_h5t_native_double(), &value)
        }
    }

    /// Writes a string attribute (fixed length) on the object at `objectPath` ("" for the root).
    public func setAttribute(_ name: String, _ value: String, of objectPath: String = "") throws {
        let bytes = Array(value.utf8CString)
        let type = try stringType(width: max(bytes.count, 1))
        defer { H5Tclose(type) }
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        try createAttribute(name, of: objectPath, type: type, space: space) { attribute in
            H5Awrite(attribute, type, bytes)
        }
    }

    /// Creates the group at `groupPath` with any missing parents.
    public func createGroup(_ groupPath: String) throws {
        if contains(groupPath) { return }
        let linkProperties = H5Pcreate(ssl_h5p_link_create())
        defer { H5Pclose(linkProperties) }
        H5Pset_create_intermediate_group(linkProperties, 1)
        let group = H5Gcreate2(handle, groupPath, linkProperties, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        guard group >= 0 else { throw error(groupPath, "group could not be created") }
        H5Gclose(group)
    }

    // MARK: Helpers

    private func error(_ object: String, _ problem: String) -> HDF5Error {
        HDF5Error(file: path, object: object, problem: problem)
    }

    private func withDataset<R>(_ datasetPath: String, _ body: (hid_t) throws -> R) throws -> R {
        guard contains(datasetPath) else { throw error(datasetPath, "no such dataset in this file") }
        let dataset = H5Dopen2(handle, datasetPath, hid_t(H5P_DEFAULT))
        guard dataset >= 0 else { throw error(datasetPath, "is not a dataset") }
        defer { H5Dclose(dataset) }
        return try body(dataset)
    }

    private func withAttribute<R>(_ name: String, of objectPath: String, _ body: (hid_t) throws -> R) throws -> R {
        let object = objectPath.isEmpty ? "." : objectPath
        guard H5Aexists_by_name(handle, object, name, hid_t(H5P_DEFAULT)) > 0 else {
            throw error(objectPath, "has no attribute '\(name)'")
        }
        let attribute = H5Aopen_by_name(handle, object, name, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        guard attribute >= 0 else { throw error(objectPath, "attribute '\(name)' could not be opened") }
        defer { H5Aclose(attribute) }
        return try body(attribute)
    }

    private func shape(ofDataset dataset: hid_t, _ datasetPath: String) throws -> [Int] {
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw error(datasetPath, "has an unreadable shape") }
        var dimensions = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dimensions, nil)
        return dimensions.map { Int($0) }
    }

    func read<Element>(_ datasetPath: String, type: hid_t, repeating zero: Element) throws -> [Element] {
        try withDataset(datasetPath) { dataset in
            let shape = try shape(ofDataset: dataset, datasetPath)
            let count = try elementCount(shape, of: datasetPath, elementSize: MemoryLayout<Element>.stride)
            var values = [Element](repeating: zero, count: count)
            let status = values.withUnsafeMutableBytes { raw in
                H5Dread(dataset, type, H5S_ALL, H5S_ALL, hid_t(H5P_DEFAULT), raw.baseAddress)
            }
            if status < 0 { throw error(datasetPath, "could not be read (corrupt data or checksum mismatch)") }
            return values
        }
    }

    /// The number of elements of a dataset of `shape`, refused when it would not fit in this
    /// machine's memory (a damaged or hostile file can declare any shape).
    private func elementCount(_ shape: [Int], of datasetPath: String, elementSize: Int) throws -> Int {
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, dimension >= 0 else { throw error(datasetPath, "declares an impossible shape \(shape)") }
            count = product
        }
        let memory = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = Double(count) * Double(elementSize)
        guard bytes <= memory else {
            throw error(
                datasetPath,
                "declares shape \(shape) (\(String(format: "%.1f", bytes / 1e9)) GB), more than this machine's "
                    + "\(String(format: "%.1f", memory / 1e9)) GB of memory: the file is damaged, or too large to load whole")
        }
        return count
    }

    private func stringType(width: Int) throws -> hid_t {
        let type = H5Tcopy(ssl_h5t_c_s1())
        guard type >= 0, H5Tset_size(type, width) >= 0 else { throw error("", "string type could not be made") }
        H5Tset_strpad(type, H5T_STR_NULLTERM)
        return type
    }

    private func writeArray(
        _ datasetPath: String, shape: [Int], type: hid_t, checksum: Bool, data: UnsafeRawPointer
    ) throws {
        if let slash = datasetPath.lastIndex(of: "/") {
            try createGroup(String(datasetPath[..<slash]))
        }
        if contains(datasetPath) { throw error(datasetPath, "already exists") }
        var dimensions = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dimensions, nil)
        defer { H5Sclose(space) }
        let properties = H5Pcreate(ssl_h5p_dataset_create())
        defer { H5Pclose(properties) }
        let count = shape.reduce(1, *)
        if checksum && !shape.isEmpty && count > 0 {
            // Filters need chunked storage; one chunk per dataset keeps reads a single pass.
            H5Pset_chunk(properties, Int32(shape.count), &dimensions)
            H5Pset_fletcher32(properties)
        }
        let dataset = H5Dcreate2(handle, datasetPath, type, space, hid_t(H5P_DEFAULT), properties, hid_t(H5P_DEFAULT))
        guard dataset >= 0 else { throw error(datasetPath, "dataset could not be created") }
        defer { H5Dclose(dataset) }
        errno = 0
        if count > 0, H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, hid_t(H5P_DEFAULT), data) < 0 {
            throw error(datasetPath, "dataset could not be written\(Self.systemReason())")
        }
    }

    private func createAttribute(
        _ name: String, of objectPath: String, type: hid_t, space: hid_t, write: (hid_t) -> herr_t
    ) throws {
        let object = objectPath.isEmpty ? "." : objectPath
        if H5Aexists_by_name(handle, object, name, hid_t(H5P_DEFAULT)) > 0 {
            H5Adelete_by_name(handle, object, name, hid_t(H5P_DEFAULT))
        }
        let attribute = H5Acreate_by_name(
            handle, object, name, type, space, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        guard attribute >= 0 else { throw error(objectPath, "attribute '\(name)' could not be created") }
        defer { H5Aclose(attribute) }
        if write(attribute) < 0 { throw error(objectPath, "attribute '\(name)' could not be written") }
    }
}

/// One-time initialisation of the HDF5 library.
enum HDF5Library {
    private static let initialized: Bool = {
        H5open()
        // Errors are reported through HDF5Error; silence the library's own stack printing.
        H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
        return true
    }()

    static func prepare() { _ = initialized }
}
