/// An error with the context a user needs to find the problem: the file, the node, the op,
/// the tensor. Its `description` is the one line the CLI prints.
public struct GraftError: Error, CustomStringConvertible, Equatable {
    /// What kind of problem this is; the CLI maps kinds to exit statuses.
    public enum Kind: Equatable, Sendable {
        /// The input (a model, a tensor file, an image) is malformed or unsupported.
        case badInput
        /// The request does not fit the model (a wrong shape, a batch that cannot be run).
        case invalidArgument
        /// Reading or writing a file failed.
        case io
        /// A bug in Graft: an invariant that should hold did not.
        case `internal`
    }

    public var kind: Kind
    public var message: String
    public var file: String?
    public var node: String?
    public var op: String?
    public var tensor: String?

    public init(_ kind: Kind, _ message: String, file: String? = nil, node: String? = nil,
                op: String? = nil, tensor: String? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.node = node
        self.op = op
        self.tensor = tensor
    }

    /// `file: node 'n' (Op): tensor 't': message`, leaving out the parts that are not known.
    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let node {
            parts.append(op.map { "node '\(node)' (\($0))" } ?? "node '\(node)'")
        } else if let op {
            parts.append("op \(op)")
        }
        if let tensor { parts.append("tensor '\(tensor)'") }
        parts.append(message)
        return parts.joined(separator: ": ")
    }

    /// This error with the file set, unless it already names one.
    public func inFile(_ path: String) -> GraftError {
        var copy = self
        if copy.file == nil { copy.file = path }
        return copy
    }

    /// This error with the node and op set, unless it already names a node.
    public func atNode(_ name: String, op: String) -> GraftError {
        var copy = self
        if copy.node == nil {
            copy.node = name
            copy.op = op
        }
        return copy
    }
}
