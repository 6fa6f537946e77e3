import GraftCore

/// Appends nodes named the way PyTorch's TorchScript ONNX exporter names them, so a graph
/// rebuilt from weights reads like one imported from ONNX: node `/layer1/layer1.0/conv1/Conv`
/// (the module scopes, then the op), output `/layer1/layer1.0/conv1/Conv_output_0`, and the
/// module path as the node's scope (`layer1.0.conv1`).
public struct GraphBuilder {
    public private(set) var nodes: [Node] = []
    private var usedNames = Set<String>()

    public init() {}

    /// Adds a node and returns the name of its output.
    ///
    /// - Parameters:
    ///   - scopes: the exporter's name components, outermost first (`["layer1", "layer1.0", "relu_1"]`).
    ///   - module: the module the node belongs to (`layer1.0.relu`; empty for the root).
    @discardableResult
    public mutating func add(_ op: Op, scopes: [String], module: String, inputs: [String]) -> String {
        var name = "/" + (scopes + [op.name]).joined(separator: "/")
        if usedNames.contains(name) {
            var n = 1
            while usedNames.contains("\(name)_\(n)") { n += 1 }
            name = "\(name)_\(n)"
        }
        usedNames.insert(name)
        let output = name + "_output_0"
        nodes.append(Node(name: name, op: op, inputs: inputs, outputs: [output], scope: ModuleScope(path: module)))
        return output
    }

    /// Renames the last node's output to the graph output name.
    public mutating func nameLastOutput(_ name: String) {
        nodes[nodes.count - 1].outputs = [name]
    }
}

extension Op {
    /// A convolution with a square kernel, the same padding on every side and unit dilation.
    public static func conv(kernel: Int, stride: Int, pad: Int, group: Int = 1) -> Op {
        .conv(ConvAttributes(window: Window(kernel: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad]), group: group))
    }
}
