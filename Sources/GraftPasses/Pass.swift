import GraftCore

/// A change to a graph proposed by one rule at one node.
public struct Patch {
    /// Names of the nodes to remove.
    public var removing: Set<String> = []
    /// Nodes to insert where the first removed node stood (or at the end).
    public var inserting: [Node] = []
    /// Constants to add or replace.
    public var constants: [String: Tensor] = [:]
    /// Values whose readers should read another value instead: `old → new`.
    public var replacing: [String: String] = [:]
    /// What the patch does, for reports and errors.
    public var summary: String

    public init(summary: String, removing: Set<String> = [], inserting: [Node] = [], constants: [String: Tensor] = [:],
                replacing: [String: String] = [:]) {
        self.summary = summary
        self.removing = removing
        self.inserting = inserting
        self.constants = constants
        self.replacing = replacing
    }
}

/// One local rewrite rule: looks at a node and proposes a patch, or nothing. A rule that meets
/// a pattern it cannot rewrite safely returns nil and the graph stays as it was.
public protocol Pass {
    /// The name in reports ("batch-norm folded").
    var name: String { get }
    /// A patch for the node at index `node` of `context.nodes` (one in the graph), or nil. The
    /// rule may read the node's neighbourhood up to the nodes that produce its inputs; the
    /// manager looks at a node again when a patch changes the producers or readers of a value it,
    /// or the producer of one of its inputs, reads or writes.
    func patch(at node: Int, in context: PassContext) throws -> Patch?
}
