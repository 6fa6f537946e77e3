import Foundation
import GraftCore

/// Hugging Face's safetensors files: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"__metadata__": {…}, "name": {"dtype": "F32", "shape": […], "data_offsets": [begin, end]}}`,
/// offsets relative to the data), then the tensors' bytes, little-endian and row-major.
public enum Safetensors {
    /// The largest header read, the reference implementation's limit.
    static let maxHeaderLength = 100_000_000

    /// The element types Graft reads, with the type each becomes in a `StateDict`.
    enum ElementType: String, CaseIterable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
        case i64 = "I64", i32 = "I32", i8 = "I8", u8 = "U8", bool = "BOOL"

        /// The same element type as a PyTorch storage holds it, which knows its size, its type
        /// in Graft (floating types become float32) and how to convert it.
        var storage: TorchStorageType {
            switch self {
            case .f32: return .float
            case .f16: return .half
            case .bf16: return .bfloat16
            case .f64: return .double
            case .i64: return .long
            case .i32: return .int
            case .i8: return .char
            case .u8: return .byte
            case .bool: return .bool
            }
        }

        var byteSize: Int { storage.elementSize }

        var dtype: DType { storage.dtype }

        init(_ dtype: DType) {
            switch dtype {
            case .float32: self = .f32
            case .float16: self = .f16
            case .float64: self = .f64
            case .int64: self = .i64
            case .int32: self = .i32
            case .int8: self = .i8
            case .uint8: self = .u8
            case .bool: self = .bool
            }
        }
    }

    /// Where one tensor lies, checked against its type and shape.
    struct Layout {
        var key: String
        var type: ElementType
        var shape: [Int]
        /// Bytes relative to the start of the data.
        var range: Range<Int>
    }

    // MARK: - Reading

    /// Reads the tensors of a safetensors file in the header's order, its `__metadata__` into
    /// `metadata`; float16, bfloat16 and float64 become float32, and tensors stored as they are
    /// kept borrow the mapped file when their data is aligned.
    ///
    /// - Throws: `GraftError` naming the file (and the tensor) when the header length, the JSON,
    ///   a dtype, a shape or the data offsets are wrong: offsets past the data, a byte span that
    ///   is not the shape's, overlaps, or bytes that belong to no tensor.
    public static func read(at path: String) throws -> StateDict {
        let file = try MappedFile(path: path)
        do {
            return try read(file)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    static func read(_ file: MappedFile) throws -> StateDict {
        guard file.size >= 8 else {
            throw GraftError(.badInput, "not a safetensors file: \(file.size) bytes, fewer than the 8 of the header length")
        }
        let length = try file.bytes(in: 0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(maxHeaderLength) else {
            throw GraftError(.badInput, "header length \(length) is over the \(maxHeaderLength)-byte limit")
        }
        let headerLength = Int(length)
        guard headerLength <= file.size - 8 else {
            throw GraftError(.badInput, "header length \(length) runs past the end of the file (\(file.size) bytes)")
        }
        guard case .object(let members) = try HeaderJSON.parse(file.bytes(in: 8..<(8 + headerLength))) else {
            throw GraftError(.badInput, "the header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataSize = file.size - dataStart
        var metadata: [String: String] = [:]
        var layouts: [Layout] = []
        var seen = Set<String>()
        for (key, value) in members {
            guard seen.insert(key).inserted else { throw GraftError(.badInput, "appears twice in the header", tensor: key) }
            if key == "__metadata__" {
                metadata = try readMetadata(value)
            } else {
                layouts.append(try layout(key, value, dataSize: dataSize))
            }
        }
        try checkCoverage(layouts, dataSize: dataSize)
        let entries = layouts.map { StateDict.Entry(key: $0.key, tensor: tensor($0, in: file, at: dataStart)) }
        return StateDict(entries: entries, metadata: metadata)
    }

    private static func readMetadata(_ value: HeaderJSON) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw GraftError(.badInput, "__metadata__ is not an object of strings: \(value)")
        }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let text) = value else {
                throw GraftError(.badInput, "__metadata__ '\(key)' is not a string: \(value)")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw GraftError(.badInput, "__metadata__ '\(key)' appears twice")
            }
        }
        return metadata
    }

    /// The checked layout of tensor `key`: a known dtype, a shape of non-negative integers whose
    /// bytes are exactly the span of `data_offsets`, inside the data.
    private static func layout(_ key: String, _ value: HeaderJSON, dataSize: Int) throws -> Layout {
        func fail(_ message: String) -> GraftError { GraftError(.badInput, message, tensor: key) }
        guard case .object = value else { throw fail("is not an object of dtype, shape and data_offsets: \(value)") }
        guard let dtypeValue = value["dtype"] else { throw fail("has no dtype") }
        guard case .string(let dtypeName) = dtypeValue, let type = ElementType(rawValue: dtypeName) else {
            let known = ElementType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("dtype \(dtypeValue) is not supported (Graft reads \(known))")
        }
        guard let shapeValue = value["shape"] else { throw fail("has no shape") }
        guard case .array(let dims) = shapeValue, case let shape = dims.compactMap(\.nonNegativeInteger), shape.count == dims.count else {
            throw fail("shape \(shapeValue) is not a list of non-negative integers")
        }
        guard let offsetsValue = value["data_offsets"] else { throw fail("has no data_offsets") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2, let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger else {
            throw fail("data_offsets \(offsetsValue) are not two non-negative integers")
        }
        guard begin <= end else { throw fail("data_offsets \(offsetsValue) end before they begin") }
        // Bounded with empty dimensions counted as 1, so that strides stay in range too.
        var byteCount = type.byteSize
        var bound = type.byteSize
        for dim in shape {
            let (product, overflow) = bound.multipliedReportingOverflow(by: max(dim, 1))
            guard !overflow else { throw fail("shape \(shapeValue) of \(type.rawValue) is too large") }
            bound = product
            byteCount *= dim
        }
        guard byteCount == end - begin else {
            throw fail("shape \(shapeValue) of \(type.rawValue) takes \(byteCount) bytes but data_offsets \(offsetsValue) hold \(end - begin)")
        }
        guard end <= dataSize else {
            throw fail("data_offsets \(offsetsValue) run past the end of the data (\(dataSize) bytes)")
        }
        return Layout(key: key, type: type, shape: shape, range: begin..<end)
    }

    /// The tensors must cover the data exactly once, as the format demands: no overlaps, no gaps.
    private static func checkCoverage(_ layouts: [Layout], dataSize: Int) throws {
        let sorted = layouts.sorted { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var covered = 0
        var last: Layout?
        for layout in sorted {
            if layout.range.lowerBound < covered, let last {
                throw GraftError(.badInput, "data_offsets [\(layout.range.lowerBound), \(layout.range.upperBound)] overlap those of tensor '\(last.key)' [\(last.range.lowerBound), \(last.range.upperBound)]", tensor: layout.key)
            }
            if layout.range.lowerBound > covered {
                throw GraftError(.badInput, "bytes \(covered)..<\(layout.range.lowerBound) of the data before it belong to no tensor", tensor: layout.key)
            }
            covered = layout.range.upperBound
            last = layout
        }
        if covered < dataSize {
            throw GraftError(.badInput, "bytes \(covered)..<\(dataSize) at the end of the data belong to no tensor")
        }
    }

    /// The tensor of `layout`: borrowed from the file when stored as Graft keeps it and aligned,
    /// else copied or converted to float32.
    private static func tensor(_ layout: Layout, in file: MappedFile, at dataStart: Int) -> Tensor {
        let start = dataStart + layout.range.lowerBound
        let source = UnsafeRawPointer(file.bytes + start)
        let count = layout.shape.reduce(1, *)
        let type = layout.type.storage
        if type.elementSize == type.dtype.byteSize, start % type.elementSize == 0 {
            let storage = TensorStorage(borrowing: file.bytes + start, byteCount: layout.range.count, owner: file)
            return Tensor(dtype: type.dtype, shape: layout.shape, storage: storage)
        }
        var tensor = Tensor(uninitialized: layout.shape, dtype: type.dtype)
        tensor.withUnsafeMutableBytes { type.convert(source, stride: 1, count: count, bigEndian: false, to: $0.baseAddress!) }
        return tensor
    }

    // MARK: - Writing

    /// Writes `stateDict` as a safetensors file, the tensors in the state_dict's order, the header
    /// padded with spaces to a multiple of 8 bytes as the reference writer pads it.
    ///
    /// The file is replaced in one step, never left half-written.
    ///
    /// - Parameter metadata: entries for `__metadata__` beside the state_dict's own `metadata`
    ///   (these win where both have a key); no `__metadata__` is written when both are empty.
    /// - Throws: `GraftError` when a key appears twice or is `__metadata__`, or when the file
    ///   cannot be written.
    public static func write(_ stateDict: StateDict, to path: String, metadata: [String: String] = [:]) throws {
        do {
            try AtomicFile.write(encode(stateDict, metadata: stateDict.metadata.merging(metadata) { $1 }), to: path)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    static func encode(_ stateDict: StateDict, metadata: [String: String]) throws -> Data {
        var members: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(quoted($0.key)):\(quoted($0.value))" }
            members.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var seen = Set<String>()
        var offset = 0
        for entry in stateDict.entries {
            guard entry.key != "__metadata__" else {
                throw GraftError(.invalidArgument, "is the name safetensors keeps for metadata", tensor: entry.key)
            }
            guard seen.insert(entry.key).inserted else {
                throw GraftError(.invalidArgument, "appears twice in the state_dict", tensor: entry.key)
            }
            let end = offset + entry.tensor.byteCount
            let shape = entry.tensor.shape.map(String.init).joined(separator: ",")
            members.append("\(quoted(entry.key)):{\"dtype\":\"\(ElementType(entry.tensor.dtype).rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array("{\(members.joined(separator: ","))}".utf8)
        header += repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
        var data = Data(capacity: 8 + header.count + offset)
        for shift in stride(from: 0, to: 64, by: 8) { data.append(UInt8(truncatingIfNeeded: UInt64(header.count) >> UInt64(shift))) }
        data.append(contentsOf: header)
        for entry in stateDict.entries {
            entry.tensor.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    /// A JSON string as serde_json (the reference writer) escapes it.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
