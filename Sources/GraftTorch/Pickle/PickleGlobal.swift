/// The only classes and functions a checkpoint may name, as `torch.load(weights_only=True)`
/// allows them for plain tensors: everything else is refused at its GLOBAL opcode.
enum PickleGlobal: Equatable {
    case orderedDict
    case rebuildTensor
    case rebuildParameter
    case rebuildParameterWithState
    case storageType(TorchStorageType)
    case size
    case device
    /// A dtype object (`torch.float32`), which state_dict metadata may carry.
    case dtype(String)

    private static let dtypes: Set<String> = [
        "float32", "float", "float16", "half", "bfloat16", "float64", "double", "int64", "long",
        "int32", "int", "int16", "short", "int8", "uint8", "bool",
    ]

    /// The global `module.name`, if it is allowed.
    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
        case ("torch", "Size"): self = .size
        case ("torch", "device"): self = .device
        case ("torch", _):
            if let type = TorchStorageType(rawValue: name) {
                self = .storageType(type)
            } else if Self.dtypes.contains(name) {
                self = .dtype(name)
            } else {
                return nil
            }
        default: return nil
        }
    }

    /// The dotted name, for messages.
    var name: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensor: return "torch._utils._rebuild_tensor_v2"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
        case let .storageType(type): return "torch.\(type.rawValue)"
        case .size: return "torch.Size"
        case .device: return "torch.device"
        case let .dtype(name): return "torch.\(name)"
        }
    }
}
