import GraftCore
public enum TorchCheckpoint {
    public static func read(at path: String, key: String? = nil) throws -> StateDict { throw GraftError(.internal, "stub") }
}
