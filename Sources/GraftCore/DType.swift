/// The element type of a tensor. The numbering is ONNX's `TensorProto.DataType`, so the
/// importers and exporters convert with `rawValue`.
public enum DType: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    case int32 = 6
    case int64 = 7
    case bool = 9
    case float16 = 10
    case float64 = 11

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .float16: return 2
        case .float32, .int32: return 4
        case .int64, .float64: return 8
        }
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float16 || self == .float64 }

    public var description: String {
        switch self {
        case .float32: return "float32"
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int32: return "int32"
        case .int64: return "int64"
        case .bool: return "bool"
        case .float16: return "float16"
        case .float64: return "float64"
        }
    }
}
