import CHDF5

/// One open HDF5 identifier, closed with the call that matches its kind when the handle goes
/// away, or earlier by `close()`. Pass `handle.id` straight into each call so the handle lives
/// as long as the id is in use.
final class HDF5Handle {
    enum Kind {
        case file, group, dataset, dataspace, datatype, attribute, propertyList
        /// A group, dataset or named datatype opened without knowing which.
        case object
    }

    let id: hid_t
    let kind: Kind
    private var isOpen = true

    /// Takes ownership of `id`.
    ///
    /// - Throws: `GraftError` with `message` when `id` is HDF5's failure value.
    init(_ id: hid_t, _ kind: Kind, _ message: @autoclosure () -> String) throws {
        try HDF5Library.check(id, message())
        self.id = id
        self.kind = kind
    }

    /// Closes the identifier now, reporting a failure (closing a file written to flushes it).
    func close() throws {
        guard isOpen else { return }
        isOpen = false
        try HDF5Library.check(Self.close(id, kind), kind: .io, "cannot close the HDF5 \(kind)")
    }

    deinit {
        if isOpen { _ = Self.close(id, kind) }
    }

    private static func close(_ id: hid_t, _ kind: Kind) -> herr_t {
        switch kind {
        case .file: return H5Fclose(id)
        case .group: return H5Gclose(id)
        case .dataset: return H5Dclose(id)
        case .dataspace: return H5Sclose(id)
        case .datatype: return H5Tclose(id)
        case .attribute: return H5Aclose(id)
        case .propertyList: return H5Pclose(id)
        case .object: return H5Oclose(id)
        }
    }
}
