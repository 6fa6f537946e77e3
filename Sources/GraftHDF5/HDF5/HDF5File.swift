import CHDF5
import GraftCore

/// An open HDF5 file, read-only or newly created. Errors name objects by their path in the
/// file; callers add the file name.
final class HDF5File {
    private let handle: HDF5Handle

    private init(handle: HDF5Handle) {
        self.handle = handle
    }

    /// Opens an existing file read-only.
    ///
    /// - Throws: `GraftError` when the file cannot be read, is not HDF5, or is truncated or damaged.
    static func open(_ path: String) throws -> HDF5File {
        guard try HDF5Library.hasSignature(path) else {
            throw GraftError(.badInput, "not an HDF5 file (no HDF5 signature)")
        }
        let id = H5Fopen(path, graft_h5f_acc_rdonly(), graft_h5p_default())
        return HDF5File(handle: try HDF5Handle(id, .file, "not a readable HDF5 file, truncated or damaged"))
    }

    /// Creates a file, replacing any file at `path`.
    static func create(_ path: String) throws -> HDF5File {
        let id = H5Fcreate(path, graft_h5f_acc_trunc(), graft_h5p_default(), graft_h5p_default())
        return HDF5File(handle: try HDF5Handle(id, .file, "cannot create the HDF5 file"))
    }

    /// The root group `/`.
    func root() throws -> HDF5Group {
        HDF5Group(handle: try HDF5Handle(H5Gopen2(handle.id, "/", graft_h5p_default()), .group, "cannot open the root group"), path: "/")
    }

    /// Closes the file, flushing what was written.
    func close() throws {
        try handle.close()
    }
}

/// Something in a file that carries attributes: a group or a dataset.
protocol HDF5Object {
    var handle: HDF5Handle { get }
    /// The object's path in the file (`/`, `/layer1/0`).
    var path: String { get }
}

extension HDF5Object {
    /// The path of the member `name` of this object.
    func childPath(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }
}

/// A member of a group.
enum HDF5Member {
    case group(HDF5Group)
    case dataset(HDF5Dataset)
    /// A named datatype or another object that holds no data.
    case other(path: String)
}

/// A group: the root or one below it.
struct HDF5Group: HDF5Object {
    let handle: HDF5Handle
    let path: String

    /// The names of the links in the group, in name order.
    func memberNames() throws -> [String] {
        var info = H5G_info_t()
        try HDF5Library.check(H5Gget_info(handle.id, &info), "group '\(path)': cannot list its members")
        var names: [String] = []
        for index in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, graft_h5p_default())
            try HDF5Library.check(length, "group '\(path)': cannot read the name of member \(index)")
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            try HDF5Library.check(H5Lget_name_by_idx(handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, graft_h5p_default()),
                                  "group '\(path)': cannot read the name of member \(index)")
            names.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// Opens the member `name`.
    func member(_ name: String) throws -> HDF5Member {
        let memberPath = childPath(name)
        let object = try HDF5Group.open(memberPath, .object) { H5Oopen(handle.id, name, HDF5Library.linkAccess) }
        switch H5Iget_type(object.id) {
        case H5I_GROUP: return .group(HDF5Group(handle: object, path: memberPath))
        case H5I_DATASET: return .dataset(HDF5Dataset(handle: object, path: memberPath))
        default: return .other(path: memberPath)
        }
    }

    /// Opens an object with `open`, saying so when it is an external link `linkAccess` refused.
    private static func open(_ memberPath: String, _ kind: HDF5Handle.Kind, _ open: () -> hid_t) throws -> HDF5Handle {
        HDF5Library.refusedExternalLink = nil
        let id = open()
        if id < 0, let target = HDF5Library.refusedExternalLink {
            HDF5Library.refusedExternalLink = nil
            H5Eclear2(graft_h5e_default())
            throw GraftError(.badInput, "'\(memberPath)' is an external link to '\(target)'; Graft reads only what is inside the model file")
        }
        return try HDF5Handle(id, kind, "'\(memberPath)' cannot be opened")
    }

    /// Every dataset below this group, by its path relative to it (`layer1/0/conv1/weight`), in
    /// name order; groups nested deeper than `maximumDepth`, or more than `maximumMembers`
    /// members in all, are refused (a link cycle, or groups linked to many times over, which
    /// would otherwise be walked without end).
    func datasets(maximumDepth: Int = 64, maximumMembers: Int = 100_000) throws -> [(path: String, dataset: HDF5Dataset)] {
        var found: [(String, HDF5Dataset)] = []
        var visited = 0
        func walk(_ group: HDF5Group, prefix: String, depth: Int) throws {
            guard depth <= maximumDepth else {
                throw GraftError(.badInput, "group '\(group.path)' is nested more than \(maximumDepth) levels deep")
            }
            for name in try group.memberNames() {
                visited += 1
                guard visited <= maximumMembers else {
                    throw GraftError(.badInput, "the file has more than \(maximumMembers) groups and datasets (groups linked more than once?)")
                }
                switch try group.member(name) {
                case .group(let child): try walk(child, prefix: prefix + name + "/", depth: depth + 1)
                case .dataset(let dataset): found.append((prefix + name, dataset))
                case .other(let path): throw GraftError(.badInput, "'\(path)' is neither a group nor a dataset")
                }
            }
        }
        try walk(self, prefix: "", depth: 0)
        return found
    }

    func hasMember(_ name: String) -> Bool {
        H5Lexists(handle.id, name, graft_h5p_default()) > 0
    }

    func group(_ name: String) throws -> HDF5Group {
        let memberPath = childPath(name)
        return HDF5Group(handle: try HDF5Group.open(memberPath, .group) { H5Gopen2(handle.id, name, HDF5Library.groupAccess) }, path: memberPath)
    }

    func dataset(_ name: String) throws -> HDF5Dataset {
        let memberPath = childPath(name)
        return HDF5Dataset(handle: try HDF5Group.open(memberPath, .dataset) { H5Dopen2(handle.id, name, HDF5Library.datasetAccess) }, path: memberPath)
    }

    func createGroup(_ name: String) throws -> HDF5Group {
        let memberPath = childPath(name)
        let id = H5Gcreate2(handle.id, name, graft_h5p_default(), graft_h5p_default(), graft_h5p_default())
        return HDF5Group(handle: try HDF5Handle(id, .group, "group '\(memberPath)' cannot be created"), path: memberPath)
    }

    /// Writes `tensor` as the dataset `name`, little-endian, in its own element type (bool as uint8).
    func createDataset(_ name: String, _ tensor: Tensor) throws {
        let memberPath = childPath(name)
        let fileType = try HDF5Types.file(tensor.dtype)
        let memoryType = try HDF5Types.memory(tensor.dtype)
        let space = try HDF5Dataspace.create(tensor.shape)
        let dataset = try HDF5Handle(H5Dcreate2(handle.id, name, fileType.id, space.id, graft_h5p_default(), graft_h5p_default(), graft_h5p_default()),
                                     .dataset, "dataset '\(memberPath)' cannot be created")
        try tensor.withUnsafeBytes { bytes in
            try HDF5Library.check(H5Dwrite(dataset.id, memoryType.id, graft_h5s_all(), graft_h5s_all(), graft_h5p_default(), bytes.baseAddress),
                                  kind: .io, "dataset '\(memberPath)' cannot be written")
        }
        try dataset.close()
    }
}

/// What a dataset's elements are.
enum HDF5ElementType: Equatable, CustomStringConvertible {
    case float(bytes: Int)
    case integer(bytes: Int, signed: Bool)
    case string
    case other(String)

    var description: String {
        switch self {
        case .float(let bytes): return "float\(bytes * 8)"
        case .integer(let bytes, let signed): return "\(signed ? "int" : "uint")\(bytes * 8)"
        case .string: return "strings"
        case .other(let name): return name
        }
    }
}

/// A dataset: an n-dimensional array of one element type.
struct HDF5Dataset: HDF5Object {
    let handle: HDF5Handle
    let path: String

    /// The dataset's dimensions (empty for a scalar).
    func shape() throws -> [Int] {
        let space = try HDF5Handle(H5Dget_space(handle.id), .dataspace, "dataset '\(path)': cannot read its shape")
        return try HDF5Dataspace.shape(space, of: "dataset '\(path)'")
    }

    func elementType() throws -> HDF5ElementType {
        let type = try HDF5Handle(H5Dget_type(handle.id), .datatype, "dataset '\(path)': cannot read its type")
        return HDF5Types.describe(type)
    }

    /// The elements converted by HDF5 to `dtype` (float16 and float64 files read as float32).
    ///
    /// - Throws: `GraftError` before anything is allocated when the data lies outside the file
    ///   (external storage, a virtual dataset), when the file holds fewer bytes than the shape
    ///   needs (truncated, or never written: HDF5 would read fill values), or when the tensor
    ///   would exceed `Reference.maximumTensorBytes`.
    func read(as dtype: DType, shape: [Int]) throws -> Tensor {
        let count = try Reference.checkedElementCount(shape, dtype, "dataset '\(path)'")
        try checkStorage(shape: shape, count: count)
        var tensor = Tensor(zeros: shape, dtype: dtype)
        let memoryType = try HDF5Types.memory(dtype)
        try tensor.withUnsafeMutableBytes { bytes in
            try HDF5Library.check(H5Dread(handle.id, memoryType.id, graft_h5s_all(), graft_h5s_all(), graft_h5p_default(), bytes.baseAddress),
                                  "dataset '\(path)': cannot read its data (the file may be truncated or damaged)")
        }
        return tensor
    }

    private func checkStorage(shape: [Int], count: Int) throws {
        let what = "dataset '\(path)'"
        let properties = try HDF5Handle(H5Dget_create_plist(handle.id), .propertyList, "\(what): cannot read its storage properties")
        let external = H5Pget_external_count(properties.id)
        try HDF5Library.check(external, "\(what): cannot read its storage properties")
        if external > 0 || H5Pget_layout(properties.id) == H5D_VIRTUAL {
            throw GraftError(.badInput, "\(what) keeps its data in other files (external storage or a virtual dataset); Graft reads only what is inside the model file")
        }
        let filters = H5Pget_nfilters(properties.id)
        try HDF5Library.check(filters, "\(what): cannot read its storage properties")
        // Compressed data is checked by its filters as HDF5 decompresses it, chunk by chunk.
        guard filters == 0 else { return }
        let type = try HDF5Handle(H5Dget_type(handle.id), .datatype, "\(what): cannot read its type")
        let needed = count * H5Tget_size(type.id)
        let stored = Int(clamping: H5Dget_storage_size(handle.id))
        guard stored >= needed else {
            throw GraftError(.badInput, "\(what) stores \(stored) bytes; its shape \(shape) of \(HDF5Types.describe(type)) needs \(needed) (the file is truncated, or the data was never written)")
        }
    }
}

/// Dataspaces: the shape of a dataset or attribute.
enum HDF5Dataspace {
    static func create(_ shape: [Int]) throws -> HDF5Handle {
        if shape.isEmpty { return try HDF5Handle(H5Screate(H5S_SCALAR), .dataspace, "cannot create a scalar dataspace") }
        let dims = shape.map { hsize_t($0) }
        return try HDF5Handle(H5Screate_simple(Int32(dims.count), dims, nil), .dataspace, "cannot create a dataspace of shape \(shape)")
    }

    static func shape(_ space: HDF5Handle, of what: @autoclosure () -> String) throws -> [Int] {
        switch H5Sget_simple_extent_type(space.id) {
        case H5S_SCALAR: return []
        case H5S_SIMPLE: break
        default: throw GraftError(.badInput, "\(what()) has no elements (a null dataspace)")
        }
        let rank = H5Sget_simple_extent_ndims(space.id)
        try HDF5Library.check(rank, "\(what()): cannot read its rank")
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        try HDF5Library.check(H5Sget_simple_extent_dims(space.id, &dims, nil), "\(what()): cannot read its dimensions")
        var count = 1
        for d in dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(clamping: d))
            guard !overflow, d <= hsize_t(Int.max) else { throw GraftError(.badInput, "\(what()) is too large (\(dims))") }
            count = product
        }
        return dims.map { Int($0) }
    }
}

/// The HDF5 datatypes Graft's element types are read and written as.
enum HDF5Types {
    /// The type of `dtype` in memory.
    static func memory(_ dtype: DType) throws -> HDF5Handle {
        switch dtype {
        case .float32: return try copy(graft_h5t_native_float())
        case .float64: return try copy(graft_h5t_native_double())
        case .float16: return try float16()
        case .int64: return try copy(graft_h5t_native_int64())
        case .int32: return try copy(graft_h5t_native_int32())
        case .int8: return try copy(graft_h5t_native_int8())
        case .uint8, .bool: return try copy(graft_h5t_native_uint8())
        }
    }

    /// The little-endian type `dtype` is stored as.
    static func file(_ dtype: DType) throws -> HDF5Handle {
        switch dtype {
        case .float32: return try copy(graft_h5t_ieee_f32le())
        case .float64: return try copy(graft_h5t_ieee_f64le())
        case .float16: return try float16()
        case .int64: return try copy(graft_h5t_std_i64le())
        case .int32: return try copy(graft_h5t_std_i32le())
        case .int8: return try copy(graft_h5t_std_i8le())
        case .uint8, .bool: return try copy(graft_h5t_std_u8le())
        }
    }

    /// IEEE half precision, little-endian (HDF5 1.10 predefines no such type; h5py builds the same).
    private static func float16() throws -> HDF5Handle {
        let type = try copy(graft_h5t_ieee_f32le())
        try HDF5Library.check(H5Tset_fields(type.id, 15, 10, 5, 0, 10), "cannot build the float16 type")
        try HDF5Library.check(H5Tset_size(type.id, 2), "cannot build the float16 type")
        try HDF5Library.check(H5Tset_ebias(type.id, 15), "cannot build the float16 type")
        return type
    }

    private static func copy(_ type: hid_t) throws -> HDF5Handle {
        try HDF5Handle(H5Tcopy(type), .datatype, "cannot copy an HDF5 datatype")
    }

    static func describe(_ type: HDF5Handle) -> HDF5ElementType {
        let size = H5Tget_size(type.id)
        switch H5Tget_class(type.id) {
        case H5T_FLOAT: return .float(bytes: size)
        case H5T_INTEGER: return .integer(bytes: size, signed: H5Tget_sign(type.id) == H5T_SGN_2)
        case H5T_STRING: return .string
        case H5T_COMPOUND: return .other("compound records")
        case H5T_ENUM: return .other("enumerated values")
        case H5T_ARRAY: return .other("array elements")
        case H5T_VLEN: return .other("variable-length sequences")
        case H5T_REFERENCE: return .other("object references")
        case H5T_OPAQUE, H5T_BITFIELD: return .other("raw bytes")
        default: return .other("values of an unknown type")
        }
    }
}
