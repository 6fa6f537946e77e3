import GraftCore
public enum TorchCheckpoint {
    public static func read(at path: String, key: String? = nil) throws -> StateDict { throw GraftError(.internal, "stub") }
    public static func write(_ stateDict: StateDict, to path: String) throws { throw GraftError(.internal, "stub") }
}
public enum Safetensors {
    public static func read(at path: String) throws -> StateDict { throw GraftError(.internal, "stub") }
    public static func write(_ stateDict: StateDict, to path: String, metadata: [String: String] = [:]) throws { throw GraftError(.internal, "stub") }
}
