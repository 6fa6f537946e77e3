import GraftCore

// MARK: - State_dict → graph

extension StateDict {
    /// The torchvision ResNet these keys and shapes describe, with its weights: the graph
    /// PyTorch's TorchScript exporter writes for the same model (see `TorchvisionResNet.graph`).
    ///
    /// Integer entries (`num_batches_tracked`) are left out: inference does not read them. A
    /// state_dict names no module without parameters, so a classifier's trailing `LogSoftmax`
    /// is not part of the graph: it ends at the last `Linear`.
    ///
    /// - Parameter name: the graph's name.
    /// - Throws: `GraftError` listing missing, unexpected or wrongly shaped keys, or naming a
    ///   weight that is not floating point.
    public func graph(name: String) throws -> Graph {
        var tensors: [String: Tensor] = [:]
        for entry in entries where !entry.key.hasSuffix("num_batches_tracked") {
            guard tensors[entry.key] == nil else {
                throw GraftError(.badInput, "the key '\(entry.key)' appears twice")
            }
            tensors[entry.key] = entry.tensor
        }
        guard !tensors.isEmpty else {
            throw GraftError(.badInput, "unknown layout: the state_dict holds no tensors")
        }
        let model = try TorchvisionResNet.infer(from: tensors.mapValues(\.shape))
        for (key, _) in model.parameters where tensors[key]!.dtype != .float32 {
            throw GraftError(.badInput, "'\(key)' holds \(tensors[key]!.dtype) values; weights must be floating point")
        }
        return try model.graph(name: name) { key, _ in tensors[key]! }
    }
}

// MARK: - Graph → state_dict

extension StateDict {
    /// The state_dict torchvision's model of `graph` has (`model.state_dict()`), so that
    /// `load_state_dict(strict=True)` accepts it: every parameter and buffer in torchvision's
    /// order, each batch norm's `num_batches_tracked` as a zero int64 scalar.
    ///
    /// `graph` must be a torchvision ResNet as the importers build it — from ONNX (a TorchScript
    /// export without constant folding), from any state_dict, or a model `graft train` grafted a
    /// `Sequential` head onto (its `Dropout`s and final `LogSoftmax` hold no parameters). A graph
    /// the passes rewrote (batch norm folded into convolution biases) has no such form.
    ///
    /// - Throws: `GraftError` (`.invalidArgument`) saying why the graph has no torchvision
    ///   state_dict form; nothing is written from a graph that would not load back the same.
    public init(graph: Graph) throws {
        let refusal = "the model has no torchvision state_dict form"
        // A Dropout's ratio (an input since opset 12) is no parameter of the module.
        var readers: [String: [Op]] = [:]
        for node in graph.nodes { for input in node.inputs { readers[input, default: []].append(node.op) } }
        let keyed = graph.constants.filter { name, _ in
            !(readers[name]?.allSatisfy { if case .dropout = $0 { return true } else { return false } } ?? false)
        }
        if let odd = graph.constantOrder.first(where: { keyed[$0].map { $0.dtype != .float32 } ?? false }) {
            throw GraftError(.invalidArgument, "\(refusal): constant '\(odd)' is \(keyed[odd]!.dtype), not float32")
        }
        guard keyed["conv1.weight"] != nil || keyed.keys.contains(where: { $0.hasPrefix("layer") }) else {
            throw GraftError(.invalidArgument, "\(refusal): its weights are not named by state_dict keys (conv1.weight, layer1.0.bn1.weight, ...); an export with constant folding loses them: export with do_constant_folding=False, or give Graft the .pth")
        }
        let model: TorchvisionResNet
        do {
            model = try TorchvisionResNet.infer(from: keyed.mapValues(\.shape))
        } catch let error as GraftError {
            throw GraftError(.invalidArgument, "\(refusal): \(error.message)")
        }
        let rebuilt = try model.graph(name: graph.name) { key, _ in keyed[key]! }
        guard Wiring(rebuilt) == Wiring(graph) else {
            throw GraftError(.invalidArgument, "\(refusal): its nodes are not those of the \(model.description) its weights name (was it optimized? convert with the passes off)")
        }
        var entries: [Entry] = []
        for (key, _) in model.parameters {
            entries.append(Entry(key: key, tensor: keyed[key]!))
            if key.hasSuffix(".running_var") {
                let module = key.dropLast(".running_var".count)
                entries.append(Entry(key: "\(module).num_batches_tracked", tensor: Tensor(shape: [], int64s: [0])))
            }
        }
        self.init(entries: entries)
    }
}

/// What a graph computes, with the names of nodes and values left out: each node's op and where
/// its inputs come from (a graph input, a constant by name, or an earlier node's output), in
/// order. Parameterless nodes a state_dict cannot record and that do not change what inference
/// computes — `Dropout`, `Identity` — are skipped, and so is a final `LogSoftmax`/`Softmax`.
private struct Wiring: Equatable {
    struct Step: Equatable {
        var op: Op
        var inputs: [String]
    }

    var steps: [Step] = []
    var outputs: [String] = []

    init(_ graph: Graph) {
        var source: [String: String] = [:]
        for (i, input) in graph.inputs.enumerated() { source[input.name] = "input \(i)" }
        for name in graph.constants.keys { source[name] = "constant \(name)" }
        let order = (try? graph.topologicalOrder()) ?? Array(graph.nodes.indices)
        for (position, index) in order.enumerated() {
            let node = graph.nodes[index]
            let isLast = position == order.count - 1
            switch node.op {
            case .dropout, .identity:
                if let first = node.inputs.first, let output = node.outputs.first { source[output] = source[first] ?? first }
                continue
            case .logSoftmax where isLast, .softmax where isLast:
                if let first = node.inputs.first, let output = node.outputs.first { source[output] = source[first] ?? first }
                continue
            default:
                break
            }
            steps.append(Step(op: node.op, inputs: node.inputs.map { source[$0] ?? "unknown \($0)" }))
            for (k, output) in node.outputs.enumerated() { source[output] = "step \(steps.count - 1).\(k)" }
        }
        outputs = graph.outputs.map { source[$0.name] ?? "unknown" }
    }
}
