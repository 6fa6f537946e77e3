import GraftCore

/// The graph as the rules see it while the manager rewrites it: the nodes, who reads and who
/// writes each value, and the inferred facts. The manager applies each patch to it in time
/// proportional to what the patch touches, so a rule's view never costs a pass over the graph.
public struct PassContext {
    /// Nodes by index; a removed node leaves nil, so indices stay valid while the manager runs.
    public private(set) var nodes: [Node?]
    public var constants: [String: Tensor] { skeleton.constants }
    public private(set) var facts: [String: ValueFact]
    /// Indices of the nodes reading each value, once per input that reads it.
    public private(set) var consumers: [String: [Int]]
    /// Index of the node producing each value.
    public private(set) var producer: [String: Int]
    public let outputNames: Set<String>
    let inputNames: Set<String>

    /// The graph without its nodes: inputs, outputs, constants in order, metadata.
    private var skeleton: Graph
    private var indexByName: [String: Int]
    /// Where each node goes in the rewritten graph: the place of the original node it stands
    /// for (a node a patch inserts takes that of the first node the patch removes), then the
    /// order of insertion.
    private var places: [(place: Int, inserted: Int)]
    private var insertions = 0

    /// A context over `graph`, whose nodes are in topological order and whose values `facts` describes.
    init(graph: Graph, facts: [String: ValueFact]) {
        var skeleton = graph
        skeleton.nodes = []
        self.skeleton = skeleton
        self.facts = facts
        nodes = graph.nodes
        places = graph.nodes.indices.map { ($0, 0) }
        outputNames = Set(graph.outputs.map(\.name))
        inputNames = Set(graph.inputs.map(\.name))
        consumers = [:]
        producer = [:]
        indexByName = [:]
        consumers.reserveCapacity(graph.nodes.count * 3)
        producer.reserveCapacity(graph.nodes.count * 2)
        indexByName.reserveCapacity(graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() { register(node, at: i) }
    }

    /// The node at `index`, which the manager hands to rules only while it is in the graph.
    public func node(_ index: Int) -> Node {
        nodes[index]!
    }

    /// The constant a node reads at `index`, if that input is a constant.
    public func constant(_ node: Node, _ index: Int) -> Tensor? {
        node.input(index).flatMap { constants[$0] }
    }

    /// Whether `value` is read by exactly one node and is not a graph output.
    public func hasSingleUse(_ value: String) -> Bool {
        consumers[value]?.count == 1 && !outputNames.contains(value)
    }

    /// The rewritten graph: the nodes that remain, each in the place of the node it stands for.
    /// Not yet sorted; the caller sorts and validates it once.
    var graph: Graph {
        var g = skeleton
        g.nodes = nodes.indices.filter { nodes[$0] != nil }.sorted { places[$0] < places[$1] }.map { nodes[$0]! }
        return g
    }

    private mutating func register(_ node: Node, at index: Int) {
        for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(index) }
        for output in node.outputs where !output.isEmpty { producer[output] = index }
        indexByName[node.name] = index
    }

    private mutating func unregister(_ node: Node, at index: Int) {
        for input in node.inputs where !input.isEmpty {
            guard var readers = consumers[input], let k = readers.firstIndex(of: index) else { continue }
            readers.remove(at: k)
            consumers[input] = readers.isEmpty ? nil : readers
        }
        for output in node.outputs where !output.isEmpty && producer[output] == index { producer[output] = nil }
        indexByName[node.name] = nil
    }

    /// Applies `patch`, checking locally what it changes: every value it writes anew (a folded
    /// constant, an inserted node's output, a value readers now read instead of another) keeps
    /// the type and shape it had, so nothing downstream changes; inserted nodes read values that
    /// exist, fit their op (`Op.inferOutputs`) and produce nothing already produced; no value
    /// still read is left without a producer. The graph as a whole is validated once, after the
    /// last patch.
    ///
    /// - Returns: the indices of the nodes the patch inserted or whose neighbourhood it changed
    ///   (the producers and readers of every value it touched, and the readers of those), which
    ///   the rules must look at again.
    /// - Throws: `GraftError` saying what the patch would break.
    mutating func apply(_ patch: Patch) throws -> [Int] {
        var removed: [Int] = []
        for name in patch.removing {
            guard let i = indexByName[name] else { throw GraftError(.internal, "node '\(name)' to remove does not exist") }
            removed.append(i)
        }
        removed.sort { places[$0] < places[$1] }
        var touched = Set<String>()
        var orphans: [String] = []
        for i in removed {
            let node = nodes[i]!
            unregister(node, at: i)
            nodes[i] = nil
            touched.formUnion(node.inputs)
            touched.formUnion(node.outputs)
            orphans += node.outputs.filter { !$0.isEmpty }
        }

        func keep(_ name: String, _ fact: ValueFact) throws {
            if let before = facts[name], before.dtype != fact.dtype || before.shape != fact.shape {
                throw GraftError(.internal, "value '\(name)' changes from \(before.dtype) \(before.shape) to \(fact.dtype) \(fact.shape)")
            }
            facts[name] = fact
        }
        for (name, tensor) in patch.constants {
            guard producer[name] == nil, !inputNames.contains(name) else {
                throw GraftError(.internal, "constant '\(name)' would redefine a value the graph already produces")
            }
            try keep(name, ValueFact(constant: tensor))
            skeleton.setConstant(name, tensor)
            touched.insert(name)
        }

        var dirty: [Int] = []
        if !patch.replacing.isEmpty {
            for (from, to) in patch.replacing {
                guard let a = facts[from], let b = facts[to], a.dtype == b.dtype, a.shape == b.shape else {
                    throw GraftError(.internal, "readers of '\(from)' cannot read '\(to)' instead: \(facts[from].map { "\($0.shape)" } ?? "?") vs \(facts[to].map { "\($0.shape)" } ?? "?")")
                }
                touched.insert(from)
                touched.insert(to)
            }
            let readers = Set(patch.replacing.keys.flatMap { consumers[$0] ?? [] })
            for r in readers {
                var node = nodes[r]!
                unregister(node, at: r)
                node.inputs = node.inputs.map { patch.replacing[$0] ?? $0 }
                register(node, at: r)
                nodes[r] = node
                dirty.append(r)
            }
        }

        let place = removed.first.map { places[$0].place } ?? Int.max
        for var node in patch.inserting {
            node.inputs = node.inputs.map { patch.replacing[$0] ?? $0 }
            guard indexByName[node.name] == nil else {
                throw GraftError(.internal, "inserted node '\(node.name)' has the name of a node in the graph")
            }
            let inputs = try node.inputs.map { name -> ValueFact? in
                guard !name.isEmpty else { return nil }
                guard producer[name] != nil || constants[name] != nil || inputNames.contains(name), let fact = facts[name] else {
                    throw GraftError(.internal, "input '\(name)' of '\(node.name)' does not exist")
                }
                return fact
            }
            let outputs = try node.op.inferOutputs(inputs).map { fact in
                try Reference.checkSize(fact.shape.dims, fact.dtype)
                return fact
            }
            for (name, fact) in zip(node.outputs, outputs) where !name.isEmpty {
                guard producer[name] == nil, constants[name] == nil, !inputNames.contains(name) else {
                    throw GraftError(.internal, "inserted node '\(node.name)' writes '\(name)', which the graph already produces")
                }
                try keep(name, fact)
            }
            let i = nodes.count
            nodes.append(node)
            places.append((place, insertions))
            insertions += 1
            register(node, at: i)
            touched.formUnion(node.inputs)
            touched.formUnion(node.outputs)
            dirty.append(i)
        }

        for name in orphans where producer[name] == nil && constants[name] == nil {
            if consumers[name] != nil || outputNames.contains(name) {
                throw GraftError(.internal, "value '\(name)' is still read but no longer produced")
            }
        }
        for name in touched where !name.isEmpty {
            if let p = producer[name] { dirty.append(p) }
            dirty += consumers[name] ?? []
        }
        // Rules look one node upstream too (a Mul at the Conv it reads): so do the readers.
        for d in Set(dirty) {
            for output in nodes[d]?.outputs ?? [] where !output.isEmpty { dirty += consumers[output] ?? [] }
        }
        return dirty
    }
}
