import CHDF5
import GraftCore

/// Attributes: the small named values attached to a group or dataset (Keras's `model_config`,
/// Graft's `graft_graph`).
extension HDF5Object {
    func hasAttribute(_ name: String) -> Bool {
        H5Aexists(handle.id, name) > 0
    }

    /// The size of the file this object is in.
    func fileSize() throws -> Int {
        let file = try HDF5Handle(H5Iget_file_id(handle.id), .file, "'\(path)': cannot find its file")
        var size: hsize_t = 0
        try HDF5Library.check(H5Fget_filesize(file.id, &size), "'\(path)': cannot read the file's size")
        return Int(clamping: size)
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
        // Attribute data is stored whole in the file (fixed-length strings at their size,
        // variable-length ones as heap references): a count or size that needs more than the
        // file holds is damage, refused before HDF5 or Graft sizes a buffer from it.
        let elementSize = max(H5Tget_size(type.id), 1)
        let fileSize = try self.fileSize()
        let (needed, overflow) = elementSize.multipliedReportingOverflow(by: count)
        guard !overflow, needed <= fileSize else {
            throw GraftError(.badInput, "\(what) says it holds \(count) strings of \(elementSize) bytes, more than the file's \(fileSize) bytes (the file is damaged)")
        }
        if H5Tis_variable_str(type.id) > 0 {
            // HDF5 sizes its conversion buffers from the character size, which no call returns.
            if let size = Self.characterSize(ofVariableString: type), size != 1 {
                throw GraftError(.badInput, "\(what) holds strings of \(size)-byte characters (the file is damaged)")
            }
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

    /// The size of the characters of a variable-length string type (1 in every file h5py or
    /// Graft writes), read from the type's encoded description, which keeps it as the size of a
    /// base type; nil when the encoding is not the expected one.
    private static func characterSize(ofVariableString type: HDF5Handle) -> Int? {
        var count = 0
        guard H5Tencode(type.id, nil, &count) >= 0, (18...256).contains(count) else { return nil }
        var encoded = [UInt8](repeating: 0, count: count)
        // Bytes 0-1: the encoding's header; 2-9: the variable-length type (class 9), its size;
        // 10-17: the base type, its size at 14-17, little-endian.
        guard H5Tencode(type.id, &encoded, &count) >= 0, encoded[2] & 0x0F == 9 else { return nil }
        return encoded[14..<18].reversed().reduce(0) { $0 << 8 | Int($1) }
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
