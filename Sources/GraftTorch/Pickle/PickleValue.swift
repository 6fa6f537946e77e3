/// A value the restricted unpickler builds: numbers, strings, containers, and the few PyTorch
/// objects a checkpoint of tensors is made of. Nothing in it can run code.
///
/// Lists and dicts are numbers into the `Pickle` that holds them, because a pickle fills them
/// after storing them in its memo (and may share them); tuples, which never change, are held
/// in place.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits, as its decimal digits (the legacy format's magic number).
    case bigInteger(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    /// The number of a list in `Pickle.lists`.
    case list(Int)
    /// The number of a dict (or `OrderedDict`) in `Pickle.dicts`.
    case dict(Int)
    /// An allowed class or function named by GLOBAL, not yet called.
    case global(PickleGlobal)
    // The two large payloads are boxed, so that a value takes 24 bytes: a pickle may make
    // millions.
    /// A storage a persistent id names.
    indirect case storage(StorageReference)
    /// A tensor `_rebuild_tensor_v2` (or `_rebuild_parameter`) describes.
    indirect case tensor(TensorReference)

    /// What kind of value this is, for messages.
    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInteger: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case let .global(g): return "'\(g.name)'"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    /// The kind with its article ("an int", "a list", "None"), for messages.
    var phrase: String {
        switch self {
        case .none, .global: return kind
        case .int, .bigInteger: return "an int"
        default: return "a \(kind)"
        }
    }
}

/// A tuple's items and how deep containers nest in it (1 for a tuple of scalars).
struct PickleTuple {
    var items: [PickleValue]
    var depth: Int
}
