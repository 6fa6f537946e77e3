import GraftCore
import GraftPasses

extension Graph {
    /// The graph to summarize: where weights are computed by nodes from constants (an export
    /// that built them with `ConstantOfShape`, `Mul`, ...), those nodes folded into the constants
    /// they compute — PyTorch's and torchinfo's counts are of parameters, which such a graph
    /// otherwise hides behind nodes — and a note saying so; else the graph as it is.
    ///
    /// - Throws: `GraftError` when folding fails.
    public func foldedForSummary() throws -> (graph: Graph, note: String?) {
        // Which values are computed from constants alone, node by node in topological order.
        var fromConstants = Set(constants.keys)
        for index in try topologicalOrder() {
            let node = nodes[index]
            if node.inputs.allSatisfy({ $0.isEmpty || fromConstants.contains($0) }) { fromConstants.formUnion(node.outputs) }
        }
        let inputs = Set(self.inputs.map(\.name))
        let weights = nodes.flatMap { node -> [String] in
            switch node.op {
            case .conv, .gemm, .batchNorm: return Array(node.inputs.dropFirst()).filter { !$0.isEmpty && constants[$0] == nil }
            default: return []
            }
        }
        let folded = Set(weights.filter { fromConstants.contains($0) && !inputs.contains($0) })
        guard !folded.isEmpty else { return (self, nil) }
        let (graph, _) = try PassManager(passes: [FoldConstants(), EliminateDeadNodes()]).run(self)
        return (graph, "\(folded.count) weights are computed by the graph from constants; they are folded into constants for the summary to count them")
    }
}
