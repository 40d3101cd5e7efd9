import CHDF5

extension HDF5File {
    /// The elements of a dataset as unsigned bytes (images stored as uint8), in row-major order.
    ///
    /// - Throws: ``HDF5Error`` when the dataset does not hold uint8 values: HDF5 would convert
    ///   other types silently (floats in [0, 1) all become 0).
    public func readBytes(_ datasetPath: String) throws -> [UInt8] {
        let type = try elementType(of: datasetPath)
        guard type == "uint8" else {
            throw HDF5Error(
                file: path, object: datasetPath,
                problem: "holds \(type) values of shape \(try shape(of: datasetPath)); images must be uint8 "
                    + "(0…255), e.g. convert with numpy: (images * 255).round().astype('uint8').")
        }
        return try read(datasetPath, type: ssl_h5t_native_uint8(), repeating: 0)
    }

    /// The element type of a dataset as numpy names it: `uint8`, `int64`, `float32`, … (or
    /// `string`, `compound`, … for non-numeric data).
    public func elementType(of datasetPath: String) throws -> String {
        guard contains(datasetPath) else {
            throw HDF5Error(file: path, object: datasetPath, problem: "no such dataset in this file")
        }
        let dataset = H5Dopen2(handle, datasetPath, hid_t(H5P_DEFAULT))
        guard dataset >= 0 else { throw HDF5Error(file: path, object: datasetPath, problem: "is not a dataset") }
        defer { H5Dclose(dataset) }
        let type = H5Dget_type(dataset)
        defer { H5Tclose(type) }
        let bits = H5Tget_size(type) * 8
        switch H5Tget_class(type) {
        case H5T_INTEGER: return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + "\(bits)"
        case H5T_FLOAT: return "float\(bits)"
        case H5T_STRING: return "string"
        case H5T_COMPOUND: return "compound"
        case H5T_ENUM: return "enum"
        default: return "a non-numeric type"
        }
    }
}
