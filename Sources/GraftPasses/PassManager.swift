import GraftCore

/// What a run of the pass manager did.
public struct PassReport: CustomStringConvertible {
    /// Patches applied per pass name, in the order the passes were given.
    public var counts: [(pass: String, patches: Int)]
    public var nodesBefore: Int
    public var nodesAfter: Int
    public var parametersBefore: Int
    public var parametersAfter: Int
    /// True when the run stopped at the patch limit rather than at a fixed point.
    public var stoppedEarly: Bool

    public var description: String {
        var lines = counts.map { "\($0.pass): \($0.patches)" }
        lines.append("nodes: \(nodesBefore) -> \(nodesAfter)")
        lines.append("parameters: \(grouped(parametersBefore)) -> \(grouped(parametersAfter))")
        if stoppedEarly { lines.append("stopped at the patch limit") }
        return lines.joined(separator: "\n")
    }
}

/// `25557032` as `25,557,032`.
func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
}

/// Applies rules until none changes the graph, checking the graph after every patch.
public struct PassManager {
    public var passes: [any Pass]
    /// Stop after this many patches (to bisect a bad rewrite); nil runs to the fixed point.
    public var patchLimit: Int?

    public init(passes: [any Pass] = PassManager.standard, patchLimit: Int? = nil) {
        self.passes = passes
        self.patchLimit = patchLimit
    }

    /// The default pipeline: clean-up, constant folding, batch-norm folding, dead code, names.
    public static var standard: [any Pass] {
        [EliminateIdentity(), FoldConstants(), BatchNormToScaleShift(), FoldScaleShiftIntoConv(), EliminateNoOpReshape(),
         EliminateDeadNodes(), CanonicalWeightNames()]
    }

    /// Runs the passes to a fixed point.
    ///
    /// - Throws: `GraftError` naming the pass and node when a patch leaves an invalid graph.
    public func run(_ input: Graph) throws -> (Graph, PassReport) {
        var graph = try input.sorted()
        var facts = try graph.inferShapes()
        var counts = passes.map { (pass: $0.name, patches: 0) }
        var total = 0
        var changed = true
        let parametersBefore = input.parameterCount
        outer: while changed {
            changed = false
            for (p, pass) in passes.enumerated() {
                var index = 0
                var context = PassContext(graph: graph, facts: facts)
                while index < graph.nodes.count {
                    if let limit = patchLimit, total >= limit { break outer }
                    let node = graph.nodes[index]
                    guard let patch = try pass.patch(at: index, in: context) else {
                        index += 1
                        continue
                    }
                    do {
                        let candidate = try apply(patch, to: graph)
                        facts = try validate(patch, facts: facts)
                        graph = candidate
                    } catch let error as GraftError {
                        throw GraftError(.internal, "pass '\(pass.name)' (\(patch.summary)) left an invalid graph: \(error.description)",
                                         node: node.name, op: node.op.name)
                    }
                    context = PassContext(graph: graph, facts: facts)
                    counts[p].patches += 1
                    total += 1
                    changed = true
                    // Rescan from the patch site: earlier nodes are unaffected by a local rewrite.
                    index = min(index, graph.nodes.count)
                }
            }
        }
        graph.removeUnusedConstants()
        let report = PassReport(counts: counts, nodesBefore: input.nodes.count, nodesAfter: graph.nodes.count,
                                parametersBefore: parametersBefore, parametersAfter: graph.parameterCount,
                                stoppedEarly: patchLimit.map { total >= $0 } ?? false)
        return (graph, report)
    }

    /// The value facts after `patch`, checked locally: every value the patch writes anew (a
    /// folded constant, a rewritten node's output, a value readers now read instead of another)
    /// must keep the type and shape it had, so nothing downstream changes. With the whole-graph
    /// topological check in `apply`, this validates the patched graph without re-inferring it.
    func validate(_ patch: Patch, facts old: [String: ValueFact]) throws -> [String: ValueFact] {
        var facts = old
        func keep(_ name: String, _ fact: ValueFact) throws {
            if let before = old[name], before.dtype != fact.dtype || before.shape != fact.shape {
                throw GraftError(.internal, "value '\(name)' changes from \(before.dtype) \(before.shape) to \(fact.dtype) \(fact.shape)")
            }
            facts[name] = fact
        }
        for (name, tensor) in patch.constants { try keep(name, ValueFact(constant: tensor)) }
        for node in patch.inserting {
            let inputs = try node.inputs.map { name -> ValueFact? in
                guard !name.isEmpty else { return nil }
                guard let f = facts[name] else { throw GraftError(.internal, "input '\(name)' of '\(node.name)' does not exist") }
                return f
            }
            let outputs = try node.op.inferOutputs(inputs)
            for (name, fact) in zip(node.outputs, outputs) where !name.isEmpty { try keep(name, fact) }
        }
        for (from, to) in patch.replacing {
            guard let a = facts[from], let b = facts[to], a.dtype == b.dtype, a.shape == b.shape else {
                throw GraftError(.internal, "readers of '\(from)' cannot read '\(to)' instead: \(facts[from].map { "\($0.shape)" } ?? "?") vs \(facts[to].map { "\($0.shape)" } ?? "?")")
            }
        }
        return facts
    }

    /// The graph with `patch` applied, still in topological order.
    func apply(_ patch: Patch, to graph: Graph) throws -> Graph {
        var g = graph
        for (name, t) in patch.constants { g.setConstant(name, t) }
        var nodes: [Node] = []
        var inserted = false
        for node in g.nodes {
            if patch.removing.contains(node.name) {
                if !inserted { nodes.append(contentsOf: patch.inserting); inserted = true }
                continue
            }
            nodes.append(node)
        }
        if !inserted { nodes.append(contentsOf: patch.inserting) }
        if !patch.replacing.isEmpty {
            for i in nodes.indices {
                nodes[i].inputs = nodes[i].inputs.map { patch.replacing[$0] ?? $0 }
            }
        }
        g.nodes = nodes
        return try g.sorted()
    }
}
