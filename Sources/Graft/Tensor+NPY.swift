import GraftCore

extension Tensor {
    /// The array in a NumPy `.npy` file (format 1.0–3.0, C order, little-endian; float32,
    /// float64, the integer types and bool).
    ///
    /// - Throws: `GraftError` naming the file when it is not a well-formed `.npy`.
    public init(npyAt path: String) throws {
        self = try NPY.read(path)
    }

    /// Writes the tensor as a NumPy `.npy` file, through a temporary file renamed into place.
    ///
    /// - Throws: `GraftError` naming the file when it cannot be written.
    public func writeNPY(to path: String) throws {
        try NPY.write(self, to: path)
    }
}
