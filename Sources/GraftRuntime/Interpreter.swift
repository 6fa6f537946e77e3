import GraftCore

/// Runs a graph on concrete inputs, node by node in topological order, freeing each value after
/// its last use. Convolutions and matrix products go to the fast kernels; every other op runs
/// its reference implementation.
public final class Interpreter {
    public let graph: Graph
    private let order: [Int]
    /// For each node position in `order`, the values that die after it.
    private let releases: [[String]]

    /// - Throws: `GraftError` when the graph has a missing input or a cycle.
    public init(graph: Graph) throws {
        self.graph = graph
        order = try graph.topologicalOrder()
        var lastUse: [String: Int] = [:]
        for (position, index) in order.enumerated() {
            for input in graph.nodes[index].inputs where !input.isEmpty { lastUse[input] = position }
        }
        let kept = Set(graph.outputs.map(\.name))
        var releases = [[String]](repeating: [], count: order.count)
        for (name, position) in lastUse where !kept.contains(name) && graph.constants[name] == nil {
            releases[position].append(name)
        }
        self.releases = releases
    }

    /// Runs the graph.
    ///
    /// - Parameter feeds: a tensor for every graph input, by name.
    /// - Returns: the graph outputs by name.
    /// - Throws: `GraftError` for inputs that do not fit the graph, or a node that fails.
    public func run(_ feeds: [String: Tensor]) throws -> [String: Tensor] {
        var values: [String: Tensor] = [:]
        var bindings: [String: Int] = [:]
        for input in graph.inputs {
            guard let t = feeds[input.name] else {
                throw GraftError(.invalidArgument, "no value given for input '\(input.name)'", tensor: input.name)
            }
            try check(t, against: input, bindings: &bindings)
            values[input.name] = t
        }
        for (position, index) in order.enumerated() {
            let node = graph.nodes[index]
            let inputs: [Tensor?] = node.inputs.map { name in
                name.isEmpty ? nil : values[name] ?? graph.constants[name]
            }
            let outputs: [Tensor]
            do {
                outputs = try Self.execute(node.op, inputs)
            } catch let error as GraftError {
                throw error.atNode(node.name, op: node.op.name)
            }
            for (name, tensor) in zip(node.outputs, outputs) where !name.isEmpty { values[name] = tensor }
            for name in releases[position] { values[name] = nil }
        }
        var result: [String: Tensor] = [:]
        for output in graph.outputs { result[output.name] = values[output.name] ?? graph.constants[output.name] }
        return result
    }

    /// One op on concrete inputs: a fast kernel where there is one, else the reference.
    static func execute(_ op: Op, _ inputs: [Tensor?]) throws -> [Tensor] {
        switch op {
        case .conv(let a) where inputs.count >= 2 && inputs[0] != nil && inputs[1] != nil:
            return [try ConvKernel.run(inputs[0]!, weight: inputs[1]!, bias: inputs.count > 2 ? inputs[2] : nil, attributes: a)]
        case .gemm(let a) where inputs.count >= 2 && inputs[0] != nil && inputs[1] != nil:
            return [try GemmKernel.run(inputs[0]!, inputs[1]!, inputs.count > 2 ? inputs[2] : nil, attributes: a)]
        case .matMul where inputs.count == 2 && inputs[0] != nil && inputs[1] != nil:
            return [try GemmKernel.matMul(inputs[0]!, inputs[1]!)]
        default:
            return try op.evaluate(inputs)
        }
    }

    private func check(_ t: Tensor, against input: ValueInfo, bindings: inout [String: Int]) throws {
        guard t.dtype == input.dtype else {
            throw GraftError(.invalidArgument, "input '\(input.name)' must be \(input.dtype), got \(t.dtype)", tensor: input.name)
        }
        guard t.rank == input.shape.rank else {
            throw GraftError(.invalidArgument, "input '\(input.name)' must have shape \(input.shape), got \(t.shape)", tensor: input.name)
        }
        for (size, dim) in zip(t.shape, input.shape.dims) {
            switch dim {
            case .value(let v) where v != size:
                throw GraftError(.invalidArgument, "input '\(input.name)' must have shape \(input.shape), got \(t.shape)", tensor: input.name)
            case .symbol(let s):
                if let bound = bindings[s], bound != size {
                    throw GraftError(.invalidArgument, "input '\(input.name)': dimension \(s) is \(bound) elsewhere, \(size) here", tensor: input.name)
                }
                bindings[s] = size
            default: break
            }
        }
    }
}
