import CHDF5

extension HDF5File {
    /// The elements of a dataset as unsigned bytes (images stored as uint8), in row-major order.
    public func readBytes(_ datasetPath: String) throws -> [UInt8] {
        try read(datasetPath, type: ssl_h5t_native_uint8(), repeating: 0)
    }
}
