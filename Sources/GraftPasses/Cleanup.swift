import GraftCore

extension PassContext {
    /// A patch that removes `node`, whose first output equals its first input, so that readers
    /// read the input. When the output is a graph output, the input's producer is renamed to
    /// write it instead; when that is not possible (the input is a graph input or constant, or
    /// itself an output), nil.
    func bypass(_ index: Int, summary: String) -> Patch? {
        let node = self.node(index)
        guard let input = node.input(0), let output = node.outputs.first, !output.isEmpty else { return nil }
        // Every other output (Dropout's mask) must be unused.
        for extra in node.outputs.dropFirst() where !extra.isEmpty {
            if consumers[extra] != nil || outputNames.contains(extra) { return nil }
        }
        if !outputNames.contains(output) {
            return Patch(summary: summary, removing: [node.name], replacing: [output: input])
        }
        guard let p = producer[input], !outputNames.contains(input) else { return nil }
        var renamed = self.node(p)
        renamed.outputs = renamed.outputs.map { $0 == input ? output : $0 }
        return Patch(summary: summary, removing: [node.name, renamed.name], inserting: [renamed], replacing: [input: output])
    }
}

/// Removes `Identity` and inference `Dropout` nodes.
public struct EliminateIdentity: Pass {
    public let name = "identity and dropout removed"
    public init() {}

    public func patch(at index: Int, in context: PassContext) throws -> Patch? {
        switch context.node(index).op {
        case .identity, .dropout: return context.bypass(index, summary: "remove \(context.node(index).op.name)")
        default: return nil
        }
    }
}

/// Removes `Reshape` and `Flatten` nodes whose output shape is their input shape.
public struct EliminateNoOpReshape: Pass {
    public let name = "no-op reshapes removed"
    public init() {}

    public func patch(at index: Int, in context: PassContext) throws -> Patch? {
        let node = context.node(index)
        switch node.op {
        case .reshape, .flatten, .squeeze, .unsqueeze:
            guard let input = node.input(0), let inShape = context.facts[input]?.shape,
                  let outShape = context.facts[node.outputs[0]]?.shape, inShape == outShape else { return nil }
            return context.bypass(index, summary: "remove no-op \(node.op.name)")
        default:
            return nil
        }
    }
}

/// Removes nodes none of whose outputs is read or is a graph output.
public struct EliminateDeadNodes: Pass {
    public let name = "dead nodes removed"
    public init() {}

    public func patch(at index: Int, in context: PassContext) throws -> Patch? {
        let node = context.node(index)
        let live = node.outputs.contains { !$0.isEmpty && (context.consumers[$0] != nil || context.outputNames.contains($0)) }
        return live ? nil : Patch(summary: "remove unused \(node.op.name)", removing: [node.name])
    }
}

/// Names each Conv and Gemm weight and bias after its PyTorch module (`layer1.0.conv1.weight`),
/// as the state_dict does, when the export gave it a generated name (`onnx::Conv_497`).
public struct CanonicalWeightNames: Pass {
    public let name = "weights renamed after their modules"
    public init() {}

    public func patch(at index: Int, in context: PassContext) throws -> Patch? {
        let node = context.node(index)
        guard let path = node.scope?.path, !path.isEmpty else { return nil }
        switch node.op {
        case .conv, .gemm: break
        default: return nil
        }
        for (i, suffix) in [(1, "weight"), (2, "bias")] {
            guard let current = node.input(i), let tensor = context.constants[current] else { continue }
            let wanted = "\(path).\(suffix)"
            guard current != wanted, context.constants[wanted] == nil, context.producer[wanted] == nil,
                  context.consumers[current]?.count == 1, !context.outputNames.contains(current) else { continue }
            return Patch(summary: "rename \(current) to \(wanted)", constants: [wanted: tensor], replacing: [current: wanted])
        }
        return nil
    }
}
