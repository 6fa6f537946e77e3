import GraftCore

/// The element type of a PyTorch storage, named in a checkpoint by its legacy storage class
/// (`torch.FloatStorage`, ...), and the Graft type its tensors are read as.
enum TorchStorageType: String, Sendable {
    case float = "FloatStorage"
    case half = "HalfStorage"
    case bfloat16 = "BFloat16Storage"
    case double = "DoubleStorage"
    case long = "LongStorage"
    case int = "IntStorage"
    case short = "ShortStorage"
    case char = "CharStorage"
    case byte = "ByteStorage"
    case bool = "BoolStorage"

    /// Bytes per element in the file.
    var elementSize: Int {
        switch self {
        case .byte, .char, .bool: return 1
        case .half, .bfloat16, .short: return 2
        case .float, .int: return 4
        case .double, .long: return 8
        }
    }

    /// Floating types become float32; integers keep their type, int16 (which Graft lacks)
    /// widened to int32.
    var dtype: DType {
        switch self {
        case .float, .half, .bfloat16, .double: return .float32
        case .long: return .int64
        case .int, .short: return .int32
        case .char: return .int8
        case .byte: return .uint8
        case .bool: return .bool
        }
    }

    /// `count` elements, `stride` elements apart from `source` on (byte-swapped first when the
    /// file is big-endian), written contiguously as `dtype` from `destination` on.
    func convert(_ source: UnsafeRawPointer, stride: Int, count: Int, bigEndian: Bool,
                 to destination: UnsafeMutableRawPointer) {
        if stride == 1, !bigEndian || elementSize == 1, elementSize == dtype.byteSize, self != .bool {
            destination.copyMemory(from: source, byteCount: count * elementSize)
            return
        }
        let step = stride * elementSize
        func map<Bits: FixedWidthInteger, Out>(_: Bits.Type, _ convert: (Bits) -> Out) {
            let out = destination.bindMemory(to: Out.self, capacity: count)
            for i in 0..<count {
                let raw = source.loadUnaligned(fromByteOffset: i * step, as: Bits.self)
                out[i] = convert(bigEndian ? Bits(bigEndian: raw) : Bits(littleEndian: raw))
            }
        }
        switch self {
        case .float: map(UInt32.self) { Float(bitPattern: $0) }
        case .half: map(UInt16.self) { Float(Float16(bitPattern: $0)) }
        case .bfloat16: map(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        case .double: map(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .long: map(Int64.self) { $0 }
        case .int: map(Int32.self) { $0 }
        case .short: map(Int16.self) { Int32($0) }
        case .char, .byte: map(UInt8.self) { $0 }
        case .bool: map(UInt8.self) { UInt8($0 != 0 ? 1 : 0) }
        }
    }
}
