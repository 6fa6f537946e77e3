import GraftCore

/// A state_dict as a container (`.pth`, safetensors, HDF5) holds it: named tensors in the
/// file's order.
///
/// Floating-point tensors are float32 whatever the file stored (float16, bfloat16 and float64
/// are converted as they are read); integer tensors (`num_batches_tracked`) keep their type.
public struct StateDict: Sendable {
    public struct Entry: Sendable {
        public var key: String
        public var tensor: Tensor

        public init(key: String, tensor: Tensor) {
            self.key = key
            self.tensor = tensor
        }
    }

    /// The tensors, in the order the file lists them.
    public var entries: [Entry]
    /// What the file held beside the state_dict and Graft does not use (a checkpoint's
    /// `optimizer_state_dict`, `epoch`): the keys, for `summary` to mention.
    public var ignored: [String]
    /// Free-form text the file carries (safetensors' `__metadata__`).
    public var metadata: [String: String]

    public init(entries: [Entry] = [], ignored: [String] = [], metadata: [String: String] = [:]) {
        self.entries = entries
        self.ignored = ignored
        self.metadata = metadata
    }

    /// The tensor of `key`, if there is one.
    public subscript(key: String) -> Tensor? {
        entries.first { $0.key == key }?.tensor
    }
}
