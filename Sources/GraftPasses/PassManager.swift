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
    /// How many times a rule looked at a node: the manager's work, which grows linearly with the graph.
    var visits: Int

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

/// Applies rules until none changes the graph, checking each patch locally and the result as a
/// whole.
///
/// Each pass keeps a worklist of the nodes it has still to look at: at first every node, then
/// only those a patch inserted or whose neighbourhood it changed (the producers and readers of
/// every value it touched). The rules are local, so a node nothing touched needs no second
/// look, and a run costs time proportional to the graph plus the patches' neighbourhoods.
public struct PassManager {
    public var passes: [any Pass]
    /// Stop after this many patches (to bisect a bad rewrite); nil runs to the fixed point.
    public var patchLimit: Int?

    public init(passes: [any Pass] = PassManager.standard, patchLimit: Int? = nil) {
        self.passes = passes
        self.patchLimit = patchLimit
    }

    /// The default pipeline: clean-up, constant folding, batch-norm folding, dead code, names.
    public static var standard: [any Pass] { standard(keepingWeightDequantization: false) }

    /// The default pipeline; with `keepingWeightDequantization`, a quantized model's int8
    /// weights stay integers behind their `DequantizeLinear` (`FoldConstants`), for an int8 plan.
    public static func standard(keepingWeightDequantization: Bool) -> [any Pass] {
        [EliminateIdentity(), FoldConstants(keepsWeightDequantization: keepingWeightDequantization), BatchNormToScaleShift(),
         FoldScaleShiftIntoConv(), EliminateNoOpReshape(), EliminateDeadNodes(), CanonicalWeightNames()]
    }

    /// Runs the passes to a fixed point.
    ///
    /// - Throws: `GraftError` from `Graph.validate()` when the input graph is invalid, and one
    ///   naming the pass and node when a patch would leave an invalid graph.
    public func run(_ input: Graph) throws -> (Graph, PassReport) {
        let sorted = try input.sorted()
        var context = PassContext(graph: sorted, facts: try sorted.validate())
        var counts = passes.map { (pass: $0.name, patches: 0) }
        var total = 0, visits = 0
        var worklists = passes.map { _ in Worklist(count: sorted.nodes.count) }
        outer: while worklists.contains(where: { !$0.isEmpty }) {
            for (p, pass) in passes.enumerated() {
                while let index = worklists[p].pop() {
                    guard let node = context.nodes[index] else { continue }
                    if let limit = patchLimit, total >= limit { break outer }
                    visits += 1
                    guard let patch = try pass.patch(at: index, in: context) else { continue }
                    let dirty: [Int]
                    do {
                        dirty = try context.apply(patch)
                    } catch let error as GraftError {
                        throw GraftError(.internal, "pass '\(pass.name)' (\(patch.summary)) left an invalid graph: \(error.description)",
                                         node: node.name, op: node.op.name)
                    }
                    for w in worklists.indices {
                        for i in dirty { worklists[w].push(i) }
                    }
                    counts[p].patches += 1
                    total += 1
                }
            }
        }
        var graph: Graph
        do {
            graph = try context.graph.sorted()
            graph.removeUnusedConstants()
            try graph.validate()
        } catch let error as GraftError {
            throw GraftError(.internal, "the passes left an invalid graph: \(error.description)")
        }
        let report = PassReport(counts: counts, nodesBefore: input.nodes.count, nodesAfter: graph.nodes.count,
                                parametersBefore: input.parameterCount, parametersAfter: graph.parameterCount,
                                stoppedEarly: patchLimit.map { total >= $0 } ?? false, visits: visits)
        return (graph, report)
    }
}

/// The node indices a pass has still to look at, first in, first out, each at most once.
struct Worklist {
    private var queue: [Int]
    private var head = 0
    private var queued: [Bool]

    /// A worklist holding `0..<count`.
    init(count: Int) {
        queue = Array(0..<count)
        queued = [Bool](repeating: true, count: count)
    }

    var isEmpty: Bool { head == queue.count }

    mutating func push(_ index: Int) {
        if index >= queued.count { queued += [Bool](repeating: false, count: index + 1 - queued.count) }
        guard !queued[index] else { return }
        queued[index] = true
        queue.append(index)
    }

    mutating func pop() -> Int? {
        guard head < queue.count else { return nil }
        let index = queue[head]
        head += 1
        queued[index] = false
        // Drop the consumed front now and then, keeping pushes and pops amortized O(1).
        if head >= 1024 && head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return index
    }
}
