import CHDF5
import GraftCore

/// Attributes: the small named values attached to a group or dataset (Keras's `model_config`,
/// Graft's `graft_graph`).
extension HDF5Object {
    func hasAttribute(_ name: String) -> Bool {
        H5Aexists(handle.id, name) > 0
    }

    private func openAttribute(_ name: String) throws -> HDF5Handle {
        try HDF5Handle(H5Aopen(handle.id, name, graft_h5p_default()), .attribute, "attribute '\(name)' of '\(path)' cannot be opened")
    }

    /// The strings of a string attribute (one for a scalar), fixed-length or variable-length.
    func stringsAttribute(_ name: String) throws -> [String] {
        let attribute = try openAttribute(name)
        let what = "attribute '\(name)' of '\(path)'"
        let type = try HDF5Handle(H5Aget_type(attribute.id), .datatype, "\(what): cannot read its type")
        let space = try HDF5Handle(H5Aget_space(attribute.id), .dataspace, "\(what): cannot read its shape")
        let count = try HDF5Dataspace.shape(space, of: what).elementCount
        // h5py writes an empty list (Keras's weight_names of a layer without weights) as float64.
        if count == 0 { return [] }
        guard H5Tget_class(type.id) == H5T_STRING else {
            throw GraftError(.badInput, "\(what) holds \(HDF5Types.describe(type)), not text")
        }
        if H5Tis_variable_str(type.id) > 0 {
            let memoryType = try HDF5Handle(H5Tcopy(graft_h5t_c_s1()), .datatype, "\(what): cannot build a string type")
            try HDF5Library.check(H5Tset_size(memoryType.id, graft_h5t_variable()), "\(what): cannot build a string type")
            try HDF5Library.check(H5Tset_cset(memoryType.id, H5Tget_cset(type.id)), "\(what): cannot build a string type")
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try HDF5Library.check(H5Aread(attribute.id, memoryType.id, &pointers), "\(what): cannot be read")
            defer { _ = graft_h5_reclaim(memoryType.id, space.id, &pointers) }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        // Fixed-length strings, read in the file's own type so nothing is cut, then unpadded.
        let size = H5Tget_size(type.id)
        guard size > 0 else { return [String](repeating: "", count: count) }
        var bytes = [UInt8](repeating: 0, count: size * count)
        try HDF5Library.check(H5Aread(attribute.id, type.id, &bytes), "\(what): cannot be read")
        return (0..<count).map { i in
            let field = bytes[(i * size)..<((i + 1) * size)]
            let text = field.prefix { $0 != 0 }
            return String(decoding: text, as: UTF8.self).trimmingTrailingSpaces()
        }
    }

    /// The text of a scalar string attribute.
    func stringAttribute(_ name: String) throws -> String {
        let strings = try stringsAttribute(name)
        guard strings.count == 1 else {
            throw GraftError(.badInput, "attribute '\(name)' of '\(path)' holds \(strings.count) strings, expected one")
        }
        return strings[0]
    }

    /// The value of a scalar integer attribute.
    func integerAttribute(_ name: String) throws -> Int64 {
        let attribute = try openAttribute(name)
        let what = "attribute '\(name)' of '\(path)'"
        let type = try HDF5Handle(H5Aget_type(attribute.id), .datatype, "\(what): cannot read its type")
        guard H5Tget_class(type.id) == H5T_INTEGER else {
            throw GraftError(.badInput, "\(what) holds \(HDF5Types.describe(type)), not an integer")
        }
        let space = try HDF5Handle(H5Aget_space(attribute.id), .dataspace, "\(what): cannot read its shape")
        guard try HDF5Dataspace.shape(space, of: what).elementCount == 1 else {
            throw GraftError(.badInput, "\(what) holds more than one integer")
        }
        var value: Int64 = 0
        try HDF5Library.check(H5Aread(attribute.id, graft_h5t_native_int64(), &value), "\(what): cannot be read")
        return value
    }

    /// Attaches a scalar variable-length UTF-8 string attribute (what h5py writes for a `str`).
    func setAttribute(_ name: String, string value: String) throws {
        let what = "attribute '\(name)' of '\(path)'"
        let type = try HDF5Handle(H5Tcopy(graft_h5t_c_s1()), .datatype, "\(what): cannot build a string type")
        try HDF5Library.check(H5Tset_size(type.id, graft_h5t_variable()), "\(what): cannot build a string type")
        try HDF5Library.check(H5Tset_cset(type.id, H5T_CSET_UTF8), "\(what): cannot build a string type")
        let space = try HDF5Dataspace.create([])
        let attribute = try HDF5Handle(H5Acreate2(handle.id, name, type.id, space.id, graft_h5p_default(), graft_h5p_default()),
                                       .attribute, "\(what) cannot be created")
        try value.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            try HDF5Library.check(H5Awrite(attribute.id, type.id, &pointer), kind: .io, "\(what) cannot be written")
        }
        try attribute.close()
    }

    /// Attaches a scalar 64-bit integer attribute.
    func setAttribute(_ name: String, integer value: Int64) throws {
        let what = "attribute '\(name)' of '\(path)'"
        let type = try HDF5Types.file(.int64)
        let space = try HDF5Dataspace.create([])
        let attribute = try HDF5Handle(H5Acreate2(handle.id, name, type.id, space.id, graft_h5p_default(), graft_h5p_default()),
                                       .attribute, "\(what) cannot be created")
        var v = value
        try HDF5Library.check(H5Awrite(attribute.id, graft_h5t_native_int64(), &v), kind: .io, "\(what) cannot be written")
        try attribute.close()
    }
}

extension String {
    /// The string without the trailing spaces of a space-padded fixed-length HDF5 string.
    fileprivate func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
