import COnnxProto
import Foundation
import GraftCore

/// Turns `TensorProto`s into tensors: inline typed fields, `raw_data`, or external data files
/// beside the model, checking every size and offset against what is there before trusting it.
final class TensorDecoder {
    /// The folder external data paths are relative to; nil when the model came from memory.
    let directory: String?
    private var files: [String: MappedFile] = [:]

    init(directory: String?) {
        self.directory = directory
    }

    func decode(_ proto: UnsafeMutablePointer<Onnx__TensorProto>) throws -> Tensor {
        let t = proto.pointee
        let name = string(t.name)
        do {
            return try decode(t)
        } catch let error as GraftError {
            var e = error
            if e.tensor == nil && !name.isEmpty { e.tensor = name }
            throw e
        }
    }

    private func decode(_ t: Onnx__TensorProto) throws -> Tensor {
        guard let dtype = DType(rawValue: t.data_type) else {
            throw GraftError(.badInput, "data type \(t.data_type) (\(Self.typeName(t.data_type))) is not supported")
        }
        let dims = repeated(t.n_dims, t.dims)
        var count = 1
        for d in dims {
            guard d >= 0 else { throw GraftError(.badInput, "negative dimension \(d) in \(Array(dims))") }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow, product <= Int(Int32.max) * 16 else {
                throw GraftError(.badInput, "dimensions \(Array(dims)) are too large")
            }
            count = product
        }
        let shape = dims.map { Int($0) }
        let byteCount = count * dtype.byteSize

        if t.has_data_location != 0 && t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            return try external(t, dtype: dtype, shape: shape, byteCount: byteCount)
        }
        if t.has_raw_data != 0 {
            guard t.raw_data.len == byteCount else {
                throw GraftError(.badInput, "raw_data holds \(t.raw_data.len) bytes; \(dtype) \(shape) needs \(byteCount)")
            }
            var out = Tensor(zeros: shape, dtype: dtype)
            if byteCount > 0 {
                out.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: t.raw_data.data, byteCount: byteCount) }
            }
            return out
        }
        func check(_ n: Int, _ field: String) throws {
            guard n == count else {
                throw GraftError(.badInput, "\(field) holds \(n) values; shape \(shape) needs \(count)")
            }
        }
        switch dtype {
        case .float32:
            try check(t.n_float_data, "float_data")
            return Tensor(shape: shape, floats: Array(repeated(t.n_float_data, t.float_data)))
        case .int64:
            try check(t.n_int64_data, "int64_data")
            return Tensor(shape: shape, int64s: Array(repeated(t.n_int64_data, t.int64_data)))
        case .float64:
            try check(t.n_double_data, "double_data")
            var out = Tensor(zeros: shape, dtype: .float64)
            let values = repeated(t.n_double_data, t.double_data)
            out.withUnsafeMutableBufferPointer(as: Double.self) { _ = $0.initialize(from: values) }
            return out
        case .int32, .int8, .uint8, .bool, .float16:
            try check(t.n_int32_data, "int32_data")
            let values = repeated(t.n_int32_data, t.int32_data).map { Int64($0) }
            if dtype == .float16 {
                var out = Tensor(zeros: shape, dtype: .float16)
                out.withUnsafeMutableBufferPointer(as: UInt16.self) { p in for i in values.indices { p[i] = UInt16(truncatingIfNeeded: values[i]) } }
                return out
            }
            return Tensor(shape: shape, int64s: values).converted(to: dtype)
        }
    }

    private func external(_ t: Onnx__TensorProto, dtype: DType, shape: [Int], byteCount: Int) throws -> Tensor {
        var location = "", offset = 0, length: Int?
        for (key, value) in entries(t.n_external_data, t.external_data) {
            switch key {
            case "location": location = value
            case "offset":
                guard let v = Int(value), v >= 0 else { throw GraftError(.badInput, "external data offset '\(value)' is not a non-negative integer") }
                offset = v
            case "length":
                guard let v = Int(value), v >= 0 else { throw GraftError(.badInput, "external data length '\(value)' is not a non-negative integer") }
                length = v
            default: break
            }
        }
        let path = try resolve(location)
        if let length, length != byteCount {
            throw GraftError(.badInput, "external data length \(length) does not match \(dtype) \(shape) (\(byteCount) bytes)")
        }
        let file: MappedFile
        if let cached = files[path] {
            file = cached
        } else {
            file = try MappedFile(path: path)
            files[path] = file
        }
        guard offset <= file.size, byteCount <= file.size - offset else {
            let end = offset.addingReportingOverflow(byteCount)
            throw GraftError(.badInput, "external data needs bytes \(offset)..<\(end.overflow ? "\(offset)+\(byteCount)" : "\(end.partialValue)") but '\(location)' has \(file.size)")
        }
        let start = file.bytes + offset
        // Borrow aligned slices; copy the rare unaligned one so kernels may assume alignment.
        if offset % 16 == 0 && byteCount > 0 {
            return Tensor(dtype: dtype, shape: shape, storage: TensorStorage(borrowing: start, byteCount: byteCount, owner: file))
        }
        var out = Tensor(zeros: shape, dtype: dtype)
        if byteCount > 0 { out.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: start, byteCount: byteCount) } }
        return out
    }

    /// The path of an external data file, refusing any location that leaves the model's folder.
    private func resolve(_ location: String) throws -> String {
        guard let directory else {
            throw GraftError(.badInput, "external data '\(location)' but the model was not read from a file")
        }
        guard !location.isEmpty else { throw GraftError(.badInput, "external data without a location") }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains(".."), !location.contains("\0") else {
            throw GraftError(.badInput, "external data location '\(location)' escapes the model's folder")
        }
        let path = directory + "/" + location
        guard let real = realpath(path, nil) else {
            throw GraftError(.io, "external data file '\(location)' is missing (\(String(cString: strerror(errno))))")
        }
        defer { free(real) }
        let resolved = String(cString: real)
        guard let realDirectory = realpath(directory, nil) else {
            throw GraftError(.io, "cannot resolve the model's folder")
        }
        defer { free(realDirectory) }
        let base = String(cString: realDirectory)
        guard resolved.hasPrefix(base == "/" ? "/" : base + "/") else {
            throw GraftError(.badInput, "external data location '\(location)' escapes the model's folder (it resolves to \(resolved))")
        }
        return resolved
    }

    static func typeName(_ code: Int32) -> String {
        let names: [Int32: String] = [0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16",
                                      6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE",
                                      12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"]
        return names[code] ?? "unknown"
    }
}
