import GraftCore

/// Where a graph's classifier is: the chain of classifier nodes (`Gemm`, `Relu`, `Dropout`,
/// `LogSoftmax`, `Softmax`, `Identity`) that runs from the trunk's feature value to the graph's
/// output.
///
/// For a torchvision ResNet the chain is the single `Gemm` of `fc`, fed by the `Flatten` (or
/// `Reshape`) after global pooling, whose output is the feature value (`[N, 2048]` for
/// ResNet-50). For a grafted graph it is the whole appended head, so a grafted model can be
/// grafted again, trained, or cut back to its trunk the same way.
struct ClassifierChain {
    /// The value the chain reads: the trunk's features.
    var featureValue: String
    /// The chain's nodes, in forward order.
    var nodes: [Int]
    /// The width of the features (the first `Gemm`'s input features).
    var featureCount: Int
    /// The classifier's top-level module (`fc`), from the first `Gemm`'s scope.
    var moduleName: String
    /// The first `Gemm`'s scope, whose recorded classes give the model's root class.
    var firstLinearScope: ModuleScope?

    /// The ops a classifier chain may hold: a quantized model's pairs around its `Gemm` too.
    static let chainOps: Set<String> = ["Gemm", "Relu", "Dropout", "LogSoftmax", "Softmax", "Identity", "QuantizeLinear", "DequantizeLinear"]

    /// - Throws: `GraftError` when the graph does not have exactly one output or does not end
    ///   in a fully connected classifier over constant weights.
    init(graph: Graph) throws {
        guard graph.outputs.count == 1, let output = graph.outputs.first else {
            throw GraftError(.invalidArgument, "a classifier head can be grafted only onto a model with one output; this one has \(graph.outputs.count)")
        }
        var producer: [String: Int] = [:]
        var consumers: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty { producer[o] = i }
            for input in node.inputs where !input.isEmpty { consumers[input, default: 0] += 1 }
        }
        var chain: [Int] = []
        var value = output.name
        while let p = producer[value], ClassifierChain.chainOps.contains(graph.nodes[p].op.name),
              let input = graph.nodes[p].input(0) {
            // Every value inside the chain feeds only the next chain node.
            if !chain.isEmpty && consumers[value] != 1 { break }
            chain.insert(p, at: 0)
            value = input
        }
        guard let firstGemm = chain.firstIndex(where: { graph.nodes[$0].op.name == "Gemm" }) else {
            let last = producer[output.name].map { graph.nodes[$0] }
            throw GraftError(.invalidArgument, "the model does not end in a fully connected classifier (Gemm) to replace",
                             node: last?.name, op: last?.op.name)
        }
        let linear = graph.nodes[chain[firstGemm]]
        let module = linear.scope.flatMap { $0.path.split(separator: ".").first.map(String.init) } ?? "fc"
        // Nodes before the first Gemm belong to the classifier only when they are in its module
        // (the grafted head's leading Dropout is; a trunk's last ReLU is not).
        func inModule(_ i: Int) -> Bool {
            guard let path = graph.nodes[i].scope?.path else { return false }
            return path == module || path.hasPrefix(module + ".")
        }
        var start = firstGemm
        while start > 0 && inModule(chain[start - 1]) { start -= 1 }
        let kept = Array(chain[start...])
        // The weight: a constant, or (in a quantized model) a DequantizeLinear of constants.
        func constant(_ name: String) -> Tensor? {
            if let t = graph.constants[name] { return t }
            guard let p = producer[name], case .dequantizeLinear = graph.nodes[p].op else { return nil }
            let names = graph.nodes[p].inputs
            guard names.allSatisfy({ $0.isEmpty || graph.constants[$0] != nil }) else { return nil }
            return try? graph.nodes[p].op.evaluate(names.map { $0.isEmpty ? nil : graph.constants[$0] }).first
        }
        guard case .gemm(let attributes) = linear.op, let weightName = linear.input(1),
              let weight = constant(weightName), weight.rank == 2, !attributes.transA else {
            throw GraftError(.invalidArgument, "the classifier's Gemm must multiply by a constant 2-D weight",
                             node: linear.name, op: linear.op.name)
        }
        featureValue = graph.nodes[kept[0]].inputs[0]
        nodes = kept
        featureCount = attributes.transB ? weight.shape[1] : weight.shape[0]
        moduleName = module.isEmpty ? "fc" : module
        firstLinearScope = linear.scope
    }

    /// The graph without the classifier: the trunk, whose one output is the feature value
    /// `[N, features]`.
    func trunk(of graph: Graph) -> Graph {
        var trunk = graph
        var removed = Set(nodes)
        let batch = graph.outputs[0].shape.dims.first ?? .symbol("batch")
        trunk.outputs = [ValueInfo(name: featureValue, dtype: .float32, shape: Shape([batch, .value(featureCount)]))]
        // And the nodes only the classifier read (a quantized weight's DequantizeLinear).
        var pruned = true
        while pruned {
            var read = Set(trunk.outputs.map(\.name))
            for i in graph.nodes.indices where !removed.contains(i) { read.formUnion(graph.nodes[i].inputs) }
            let dead = graph.nodes.indices.filter { !removed.contains($0) && !graph.nodes[$0].outputs.contains(where: read.contains) }
            removed.formUnion(dead)
            pruned = !dead.isEmpty
        }
        trunk.nodes = graph.nodes.indices.filter { !removed.contains($0) }.map { graph.nodes[$0] }
        ClassifierChain.removeConstants(readOnlyBy: removed.sorted().map { graph.nodes[$0] }, from: &trunk)
        return trunk
    }

    /// Drops the constants that `removedNodes` read and nothing left in `graph` reads.
    static func removeConstants(readOnlyBy removedNodes: [Node], from graph: inout Graph) {
        var stillRead = Set(graph.outputs.map(\.name))
        for node in graph.nodes { stillRead.formUnion(node.inputs) }
        let dropped = Set(removedNodes.flatMap(\.inputs)).filter { graph.constants[$0] != nil && !stillRead.contains($0) }
        for name in dropped { graph.constants[name] = nil }
        graph.constantOrder.removeAll { dropped.contains($0) }
    }
}
