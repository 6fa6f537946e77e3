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

/// A graph-wide view a rule reads: the graph, who consumes each value, and inferred facts.
public struct PassContext {
    public let graph: Graph
    public let facts: [String: ValueFact]
    /// Node indices reading each value.
    public let consumers: [String: [Int]]
    /// Node index producing each value.
    public let producer: [String: Int]
    public let outputNames: Set<String>

    init(graph: Graph, facts: [String: ValueFact]) {
        self.graph = graph
        self.facts = facts
        var consumers: [String: [Int]] = [:], producer: [String: Int] = [:]
        consumers.reserveCapacity(graph.nodes.count * 3)
        producer.reserveCapacity(graph.nodes.count * 2)
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(i) }
            for output in node.outputs where !output.isEmpty { producer[output] = i }
        }
        self.consumers = consumers
        self.producer = producer
        self.outputNames = Set(graph.outputs.map(\.name))
    }

    /// The constant a node reads at `index`, if that input is a constant.
    public func constant(_ node: Node, _ index: Int) -> Tensor? {
        node.input(index).flatMap { graph.constants[$0] }
    }

    /// Whether `value` is read by exactly one node and is not a graph output.
    public func hasSingleUse(_ value: String) -> Bool {
        consumers[value]?.count == 1 && !outputNames.contains(value)
    }
}

/// One local rewrite rule: looks at a node and proposes a patch, or nothing. A rule that meets
/// a pattern it cannot rewrite safely returns nil and the graph stays as it was.
public protocol Pass {
    /// The name in reports ("batch-norm folded").
    var name: String { get }
    func patch(at node: Int, in context: PassContext) throws -> Patch?
}
