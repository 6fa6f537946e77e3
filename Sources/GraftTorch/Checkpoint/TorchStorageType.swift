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

    /// The element at `source` (byte-swapped first when the file is big-endian) written as
    /// `dtype` at `destination`.
    func convert(_ source: UnsafeRawPointer, bigEndian: Bool, to destination: UnsafeMutableRawPointer) {
        func load<T: FixedWidthInteger>(_: T.Type) -> T {
            let raw = source.loadUnaligned(as: T.self)
            return bigEndian ? T(bigEndian: raw) : T(littleEndian: raw)
        }
        switch self {
        case .float: destination.storeBytes(of: Float(bitPattern: load(UInt32.self)), as: Float.self)
        case .half: destination.storeBytes(of: Float(Float16(bitPattern: load(UInt16.self))), as: Float.self)
        case .bfloat16: destination.storeBytes(of: Float(bitPattern: UInt32(load(UInt16.self)) << 16), as: Float.self)
        case .double: destination.storeBytes(of: Float(Double(bitPattern: load(UInt64.self))), as: Float.self)
        case .long: destination.storeBytes(of: load(Int64.self), as: Int64.self)
        case .int: destination.storeBytes(of: load(Int32.self), as: Int32.self)
        case .short: destination.storeBytes(of: Int32(load(Int16.self)), as: Int32.self)
        case .char, .byte: destination.storeBytes(of: source.load(as: UInt8.self), as: UInt8.self)
        case .bool: destination.storeBytes(of: source.load(as: UInt8.self) != 0 ? 1 : 0, as: UInt8.self)
        }
    }
}
