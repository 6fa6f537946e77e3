extension Graph {
    /// Checks everything about an imported graph that the passes, the planner and the kernels
    /// rely on, and returns what shape inference learnt of every value.
    ///
    /// Every importer calls it once, on the graph it built, so that nothing downstream meets a
    /// graph it would have to check again:
    ///
    /// - graph inputs and outputs are declared once each, and no graph input is also a constant;
    /// - every constant holds at most `Reference.maximumTensorElements` elements and
    ///   `Reference.maximumTensorBytes` bytes;
    /// - node names are unique, and each node has as many inputs and outputs as its op takes;
    /// - every value is produced once (by a graph input, a constant or one node output), every
    ///   input is produced, and there is no cycle (`topologicalOrder`);
    /// - each node's attributes fit its inputs and constant weights (a Conv's kernel is its
    ///   weight's spatial size, its group divides the channels; a batch norm's parameters have
    ///   one value per channel; pads, strides and dilations are 2-D and in range; axes are in
    ///   range), and every inferred shape is within the same bounds as the constants
    ///   (`inferShapes`);
    /// - every graph output is produced;
    /// - a QuantizeLinear's constant scales are positive and finite, a DequantizeLinear's 0 or more.
    ///
    /// - Returns: the facts of every value, as `inferShapes()` gives them.
    /// - Throws: `GraftError` (`.badInput`) naming the node, op and tensor at fault.
    @discardableResult
    public func validate() throws -> [String: ValueFact] {
        var declared = Set<String>()
        for input in inputs {
            guard declared.insert(input.name).inserted else {
                throw GraftError(.badInput, "the graph input is declared twice", tensor: input.name)
            }
            if constants[input.name] != nil {
                throw GraftError(.badInput, "the graph input is also a constant (initializer)", tensor: input.name)
            }
        }
        declared = []
        for output in outputs where !declared.insert(output.name).inserted {
            throw GraftError(.badInput, "the graph output is declared twice", tensor: output.name)
        }
        for (name, tensor) in constants.sorted(by: { $0.key < $1.key }) {
            do {
                try Reference.checkSize(tensor.shape.map(Dim.value), tensor.dtype, "the constant")
            } catch let error as GraftError {
                var named = error
                named.tensor = name
                throw named
            }
        }
        var names = Set<String>()
        names.reserveCapacity(nodes.count)
        for node in nodes {
            guard names.insert(node.name).inserted else {
                throw GraftError(.badInput, "another node has the same name", node: node.name, op: node.op.name)
            }
            try node.checkArity()
            switch node.op {
            case .quantizeLinear, .dequantizeLinear:
                // Constant scales are checked here, at load; others as they are computed.
                if let scale = node.input(1).flatMap({ constants[$0] }) {
                    do { try Reference.checkScales(scale, op: node.op.name, zeroAllowed: node.op.name == "DequantizeLinear") } catch let error as GraftError {
                        throw GraftError(error.kind, error.message, node: node.name, op: node.op.name)
                    }
                }
            default: break
            }
        }
        let facts = try inferShapes()
        for output in outputs where facts[output.name] == nil {
            throw GraftError(.badInput, "the graph output is not produced by any node, graph input or constant", tensor: output.name)
        }
        return facts
    }
}

extension Node {
    /// Checks the number of inputs and outputs against the op's (trailing absent ones not counted).
    func checkArity() throws {
        let (inputRange, outputRange) = op.arity
        let inputCount = (inputs.lastIndex { !$0.isEmpty } ?? -1) + 1
        let outputCount = (outputs.lastIndex { !$0.isEmpty } ?? -1) + 1
        func count(_ range: ClosedRange<Int>, _ what: String) -> String {
            let plural = range.upperBound == 1 ? what : what + "s"
            if range.count == 1 { return "\(range.lowerBound) \(plural)" }
            if range.upperBound == Int.max { return "at least \(range.lowerBound) \(what)" }
            return "\(range.lowerBound) to \(range.upperBound) \(what)s"
        }
        guard inputRange.contains(inputCount) else {
            throw GraftError(.badInput, "takes \(count(inputRange, "input")), got \(inputCount)", node: name, op: op.name)
        }
        guard outputRange.contains(outputCount) else {
            throw GraftError(.badInput, "writes \(count(outputRange, "output")), got \(outputCount)", node: name, op: op.name)
        }
    }
}

extension Op {
    /// How many inputs the op reads (absent optional ones included) and how many outputs it writes.
    var arity: (inputs: ClosedRange<Int>, outputs: ClosedRange<Int>) {
        switch self {
        case .conv, .gemm: return (2...3, 1...1)
        case .batchNorm: return (5...5, 1...1)
        case .relu, .sigmoid, .tanh, .leakyRelu, .neg, .exp, .sqrt, .maxPool, .averagePool, .globalAveragePool,
             .globalMaxPool, .flatten, .identity, .constantOfShape, .shape, .transpose, .softmax, .logSoftmax:
            return (1...1, 1...1)
        case .reduceMean, .unsqueeze, .squeeze: return (1...2, 1...1)
        case .add, .sub, .mul, .div, .matMul, .gather, .reshape: return (2...2, 1...1)
        case .sum, .concat: return (1...Int.max, 1...1)
        case .dropout: return (1...3, 1...2)
        case .slice: return (3...5, 1...1)
        case .pad, .quantizeLinear, .dequantizeLinear: return (2...3, 1...1)
        }
    }
}
