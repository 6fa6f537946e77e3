import GraftCore

/// A named trainable tensor of the head: a `Linear`'s weight or bias.
public struct Parameter: Sendable, Equatable {
    /// The graph constant it is (`fc.1.weight`).
    public var name: String
    public var shape: [Int]
    public var values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
        precondition(values.count == shape.elementCount, "\(values.count) values for \(name) of shape \(shape)")
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// The classifier of a graph as layers that run forward and backward on trunk features: the
/// graph's own head nodes (`Dropout`, `Gemm`, `Relu`, `LogSoftmax`) read by `ClassifierChain`,
/// with their weights as `Parameter`s. Training changes the parameters; `write(into:)` puts them
/// back into the graph's constants.
public struct HeadNetwork: Sendable {
    enum Layer: Sendable, Equatable {
        case dropout(ratio: Float)
        /// Parameter indices of the weight and (optional) bias.
        case linear(weight: Int, bias: Int?, transB: Bool)
        case relu
        case logSoftmax
        case identity
    }

    var layers: [Layer]
    /// The head's weights and biases, in forward order.
    public var parameters: [Parameter]
    /// The value the head reads in the graph.
    public let featureValue: String
    /// The width of the features the head reads.
    public let featureCount: Int
    /// The number of outputs (classes).
    public let classCount: Int

    /// Reads the head of `graph`.
    ///
    /// - Throws: `GraftError` naming the node when the classifier holds an op or attribute that
    ///   cannot be trained here (only `Gemm` with `alpha = beta = 1`, `Relu`, `Dropout`,
    ///   `Identity` and a final `LogSoftmax` over axis 1 are), or when it does not end in
    ///   `LogSoftmax`, which the NLL loss needs.
    public init(graph: Graph) throws {
        let chain = try ClassifierChain(graph: graph)
        var layers: [Layer] = []
        var parameters: [Parameter] = []
        var width = chain.featureCount
        func parameter(_ node: Node, _ position: Int, shape: [Int]) throws -> Int {
            let name = node.inputs[position]
            guard let t = graph.constants[name], t.dtype == .float32, t.shape == shape else {
                throw GraftError(.invalidArgument, "the classifier's \(position == 1 ? "weight" : "bias") must be a float32 constant of shape \(shape)",
                                 node: node.name, op: node.op.name, tensor: name)
            }
            parameters.append(Parameter(name: name, shape: shape, values: t.floats))
            return parameters.count - 1
        }
        for (position, i) in chain.nodes.enumerated() {
            let node = graph.nodes[i]
            switch node.op {
            case .dropout(let ratio):
                layers.append(.dropout(ratio: ratio))
            case .relu:
                layers.append(.relu)
            case .identity:
                layers.append(.identity)
            case .logSoftmax(let axis, _) where (axis == 1 || axis == -1) && position == chain.nodes.count - 1:
                layers.append(.logSoftmax)
            case .gemm(let a) where a.alpha == 1 && a.beta == 1 && !a.transA:
                guard let weightName = node.input(1), let w = graph.constants[weightName], w.rank == 2 else {
                    throw GraftError(.invalidArgument, "the classifier's weight must be a constant", node: node.name, op: node.op.name)
                }
                let (inFeatures, outFeatures) = a.transB ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
                guard inFeatures == width else {
                    throw GraftError(.invalidArgument, "the layer reads \(inFeatures) features; the one before gives \(width)",
                                     node: node.name, op: node.op.name)
                }
                let weight = try parameter(node, 1, shape: w.shape)
                let bias = node.input(2) == nil ? nil : try parameter(node, 2, shape: [outFeatures])
                layers.append(.linear(weight: weight, bias: bias, transB: a.transB))
                width = outFeatures
            default:
                throw GraftError(.invalidArgument, "this classifier op cannot be trained (train a grafted head: Dropout, Gemm, Relu, LogSoftmax)",
                                 node: node.name, op: node.op.name)
            }
        }
        guard layers.last == .logSoftmax else {
            let last = graph.nodes[chain.nodes.last!]
            throw GraftError(.invalidArgument, "the classifier must end in LogSoftmax to be trained with the NLL loss",
                             node: last.name, op: last.op.name)
        }
        self.layers = layers
        self.parameters = parameters
        self.featureValue = chain.featureValue
        self.featureCount = chain.featureCount
        self.classCount = width
    }

    /// The parameters written back into the graph's constants of the same names.
    public func write(into graph: inout Graph) {
        for p in parameters { graph.constants[p.name] = Tensor(shape: p.shape, floats: p.values) }
    }

    /// The total number of trainable values.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.values.count } }

    /// What a forward pass keeps for the backward pass: each layer's input and the dropout masks.
    struct Tape {
        var inputs: [Matrix] = []
        var masks: [[Float]?] = []
        var output: Matrix
    }

    /// Runs the head; dropout is applied (with masks from `random`) only when `random` is given.
    func forward(_ x: Matrix, random: inout SeededGenerator?) -> Tape {
        precondition(x.columns == featureCount, "\(x.columns) features for a head over \(featureCount)")
        var tape = Tape(output: x)
        var value = x
        for layer in layers {
            tape.inputs.append(value)
            var mask: [Float]?
            switch layer {
            case .dropout(let ratio):
                if random != nil { mask = DropoutOp.mask(ratio: ratio, count: value.values.count, random: &random!) }
                value = DropoutOp.forward(value, mask: mask)
            case .linear(let w, let b, let transB):
                value = LinearOp.forward(value, weight: matrix(w), bias: b.map { parameters[$0].values }, transB: transB)
            case .relu:
                value = ReLUOp.forward(value)
            case .logSoftmax:
                value = LogSoftmaxOp.forward(value)
            case .identity:
                break
            }
            tape.masks.append(mask)
        }
        tape.output = value
        return tape
    }

    private func matrix(_ parameter: Int) -> Matrix {
        let p = parameters[parameter]
        return Matrix(rows: p.shape[0], columns: p.shape[1], values: p.values)
    }

    /// The log-probabilities `[N, classes]` of features `[N, features]` in evaluation mode
    /// (dropout is the identity).
    public func logProbabilities(_ features: Matrix) -> Matrix {
        var none: SeededGenerator?
        return forward(features, random: &none).output
    }

    /// One training step's numbers for a batch: the mean NLL loss, how many rows the head
    /// classified right, and `∂loss/∂p` for every parameter, by reverse-mode differentiation.
    ///
    /// - Parameters:
    ///   - random: the dropout stream; nil runs the head in evaluation mode (dropout off).
    func lossAndGradients(_ x: Matrix, labels: [Int], random: inout SeededGenerator?) -> (loss: Float, correct: Int, gradients: [[Float]]) {
        let tape = forward(x, random: &random)
        let loss = NLLLossOp.forward(tape.output, labels: labels)
        let correct = zip(tape.output.argmaxRows(), labels).filter { $0 == $1 }.count
        var gradients = parameters.map { [Float](repeating: 0, count: $0.values.count) }
        var dy = NLLLossOp.backward(rows: x.rows, columns: classCount, labels: labels)
        // Layers before the first Linear only see the frozen features: nothing to propagate there.
        let firstLinear = layers.firstIndex { if case .linear = $0 { return true } else { return false } } ?? 0
        for l in stride(from: layers.count - 1, through: firstLinear, by: -1) {
            switch layers[l] {
            case .logSoftmax:
                dy = LogSoftmaxOp.backward(dy, output: l + 1 < layers.count ? tape.inputs[l + 1] : tape.output)
            case .relu:
                dy = ReLUOp.backward(dy, output: l + 1 < layers.count ? tape.inputs[l + 1] : tape.output)
            case .dropout:
                dy = DropoutOp.backward(dy, mask: tape.masks[l])
            case .identity:
                break
            case .linear(let w, let b, let transB):
                let g = LinearOp.backward(dy, x: tape.inputs[l], weight: matrix(w), transB: transB, needsInputGradient: l > firstLinear)
                gradients[w] = g.dw.values
                if let b { gradients[b] = g.db }
                if let dx = g.dx { dy = dx }
            }
        }
        return (loss, correct, gradients)
    }
}
