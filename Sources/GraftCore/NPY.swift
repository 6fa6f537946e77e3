import Foundation

/// NumPy `.npy` files (format 1.0–3.0, little-endian, C order) for float32, float64, int64,
/// int32 and bool arrays.
public enum NPY {
    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    private static let typeCodes: [String: DType] = [
        "<f4": .float32, "<f8": .float64, "<i8": .int64, "<i4": .int32, "|b1": .bool, "|u1": .uint8, "|i1": .int8, "<f2": .float16,
    ]

    /// Reads an `.npy` file.
    ///
    /// - Throws: `GraftError` naming the file for a wrong header, type or order, or short data.
    public static func read(_ path: String) throws -> Tensor {
        // Only a regular file has a size to check the header against (a FIFO or /dev/zero never ends).
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw GraftError(.io, errno == ENOENT ? "no such file" : "cannot read the file (\(String(cString: strerror(errno))))", file: path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw GraftError(.io, "not a regular file", file: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GraftError(.io, "cannot read the file", file: path)
        }
        do {
            return try decode(data)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    public static func decode(_ data: Data) throws -> Tensor {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw GraftError(.badInput, "not a NumPy .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw GraftError(.badInput, "truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw GraftError(.badInput, ".npy format version \(major) is not supported")
        }
        guard headerStart + headerLength <= bytes.count else { throw GraftError(.badInput, "truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = field("descr", in: header), let order = field("fortran_order", in: header),
              let shapeText = field("shape", in: header) else {
            throw GraftError(.badInput, "the .npy header lacks descr, fortran_order or shape: \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let code = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard let dtype = typeCodes[code] else {
            throw GraftError(.badInput, "array type '\(code)' is not supported (use float32 '<f4', float64, int64, int32 or bool)")
        }
        guard order.trimmingCharacters(in: .whitespaces) == "False" else {
            throw GraftError(.badInput, "the array is in Fortran order; save it in C order")
        }
        let inner = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let v = Int(t), v >= 0 else { throw GraftError(.badInput, "bad shape (\(inner)) in the .npy header") }
            shape.append(v)
        }
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw GraftError(.badInput, "shape (\(inner)) is too large") }
            count = p
        }
        let start = headerStart + headerLength
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw GraftError(.badInput, "shape (\(inner)) is too large") }
        guard bytes.count - start == needed else {
            throw GraftError(.badInput, "the .npy data holds \(bytes.count - start) bytes; shape (\(inner)) of \(dtype) needs \(needed)")
        }
        var tensor = Tensor(zeros: shape, dtype: dtype)
        if needed > 0 {
            tensor.withUnsafeMutableBytes { out in
                bytes.withUnsafeBytes { out.baseAddress!.copyMemory(from: $0.baseAddress! + start, byteCount: needed) }
            }
        }
        return tensor
    }

    /// The value text of `'key': value` in a `.npy` header dictionary.
    private static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)':") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        if let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) { rest = rest[..<end] }
        return String(rest)
    }

    /// The `.npy` bytes of a tensor (format 1.0).
    public static func encode(_ t: Tensor) -> Data {
        let code = typeCodes.first { $0.value == t.dtype }!.key
        let shape = t.shape.count == 1 ? "(\(t.shape[0]),)" : "(" + t.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(code)', 'fortran_order': False, 'shape': \(shape), }"
        // Pad so the data starts on a 64-byte boundary, ending the header with a newline.
        let total = magic.count + 4 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var data = Data(magic + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        t.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// Writes a tensor as `.npy`, through a temporary file renamed into place.
    public static func write(_ t: Tensor, to path: String) throws {
        try AtomicFile.write(encode(t), to: path)
    }
}
