import Foundation
import GraftCore

/// A classifier head to graft onto a pretrained trunk in place of its classifier: for each
/// hidden layer `Dropout(p) → Linear → ReLU`, then `Linear → LogSoftmax(dim=1)`, as PyTorch users
/// write it (`nn.Sequential` named after the replaced module, `fc.0`, `fc.1`, ...).
///
/// The default is the head of the Dogs vs. Cats reference: `Dropout(0.5) → Linear(2048, 1024) →
/// ReLU → Dropout(0.3) → Linear(1024, 256) → ReLU → Linear(256, classes) → LogSoftmax`.
public struct ClassifierHead: Sendable, Equatable {
    /// The names of the classes, in the order of the head's outputs.
    public var classNames: [String]
    /// The width of each hidden layer.
    public var hidden: [Int]
    /// The dropout probability before each hidden layer's `Linear`, one per hidden layer.
    public var dropout: [Float]

    public init(classNames: [String], hidden: [Int] = [1024, 256], dropout: [Float] = [0.5, 0.3]) {
        self.classNames = classNames
        self.hidden = hidden
        self.dropout = dropout
    }

    /// - Throws: `GraftError` (`invalidArgument`) for fewer than two classes, repeated class
    ///   names, a width below 1, a dropout outside [0, 1), or not one dropout per hidden layer.
    public func validate() throws {
        guard classNames.count >= 2 else {
            throw GraftError(.invalidArgument, "a classifier needs at least two classes; got \(classNames.count) (\(classNames.joined(separator: ", ")))")
        }
        var seen = Set<String>()
        if let repeated = classNames.first(where: { !seen.insert($0).inserted }) {
            throw GraftError(.invalidArgument, "the class name '\(repeated)' is given twice")
        }
        if let bad = hidden.first(where: { $0 < 1 }) {
            throw GraftError(.invalidArgument, "a hidden layer must have at least one unit; got \(bad)")
        }
        guard dropout.count == hidden.count else {
            throw GraftError(.invalidArgument, "give one dropout probability per hidden layer: \(hidden.count) hidden layers, \(dropout.count) dropout values")
        }
        if let bad = dropout.first(where: { !($0 >= 0 && $0 < 1) }) {
            throw GraftError(.invalidArgument, "a dropout probability must be in [0, 1); got \(bad)")
        }
    }

    /// The trunk with its classifier replaced by this head, initialized as PyTorch's
    /// `nn.Linear` is (`W, b ~ U(−1/√in, 1/√in)`, Kaiming-uniform with `a = √5`) from `seed`.
    ///
    /// The head's nodes carry the module scopes `fc.0` ... and the weights PyTorch's names
    /// (`fc.1.weight` `[out, in]`, read with `transB`, and `fc.1.bias`), so `summary` prints the
    /// head as `print(model)` does and the exporters write it like any node; the class names are
    /// stored in the graph's metadata (`Graph.classNames`).
    ///
    /// - Parameters:
    ///   - trunk: a model whose output comes from a fully connected classifier (a torchvision
    ///     ResNet's `fc`, or an earlier grafted head).
    /// - Throws: `GraftError` when the head is invalid or the trunk has no classifier to replace.
    public func graft(onto trunk: Graph, seed: UInt64 = 0) throws -> Graph {
        try validate()
        let chain = try ClassifierChain(graph: trunk)
        var graph = chain.trunk(of: trunk)
        let outputName = trunk.outputs[0].name
        let module = chain.moduleName
        let rootClass = chain.firstLinearScope?.classNames.first
        var random = SeededGenerator(seed: seed, purpose: .initialization)

        var x = chain.featureValue
        var width = chain.featureCount
        var index = 0
        func add(_ op: Op, torchClass: String, inputs: [String]) {
            let path = "\(module).\(index)"
            let name = "/\(module)/\(path)/\(op.name)"
            let classes = rootClass.map { [$0, "torch.nn.modules.container.Sequential", torchClass] } ?? []
            let output = "\(name)_output_0"
            graph.nodes.append(Node(name: name, op: op, inputs: [x] + inputs, outputs: [output],
                                    scope: ModuleScope(path: path, classNames: classes)))
            x = output
            index += 1
        }
        func linear(_ outFeatures: Int) {
            let prefix = "\(module).\(index)"
            let bound = 1 / Float(width).squareRoot()
            let weight = (0..<(outFeatures * width)).map { _ in random.uniform(-bound, bound) }
            let bias = (0..<outFeatures).map { _ in random.uniform(-bound, bound) }
            graph.setConstant("\(prefix).weight", Tensor(shape: [outFeatures, width], floats: weight))
            graph.setConstant("\(prefix).bias", Tensor(shape: [outFeatures], floats: bias))
            add(.gemm(GemmAttributes(transB: true)), torchClass: "torch.nn.modules.linear.Linear",
                inputs: ["\(prefix).weight", "\(prefix).bias"])
            width = outFeatures
        }
        for (units, p) in zip(hidden, dropout) {
            add(.dropout(ratio: p), torchClass: "torch.nn.modules.dropout.Dropout", inputs: [])
            linear(units)
            add(.relu, torchClass: "torch.nn.modules.activation.ReLU", inputs: [])
        }
        linear(classNames.count)
        add(.logSoftmax(axis: 1, coerce2D: false), torchClass: "torch.nn.modules.activation.LogSoftmax", inputs: [])
        graph.nodes[graph.nodes.count - 1].outputs = [outputName]

        let batch = trunk.outputs[0].shape.dims.first ?? .symbol("batch")
        graph.outputs = [ValueInfo(name: outputName, dtype: .float32, shape: Shape([batch, .value(classNames.count)]))]
        graph.classNames = classNames
        graph.trainableModules = [module]
        return graph
    }
}

extension Graph {
    /// The metadata key that holds a grafted model's class names, as a JSON array of strings.
    public static let classNamesKey = "graft.class_names"

    /// The class names of a grafted model's outputs, from its metadata; nil when the graph
    /// records none (or they cannot be read).
    public var classNames: [String]? {
        get { metadata.value([String].self, forKey: Graph.classNamesKey) }
        set { metadata.setValue(newValue, forKey: Graph.classNamesKey) }
    }
}
