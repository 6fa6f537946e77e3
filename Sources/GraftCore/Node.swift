/// Where a node came from in the PyTorch model: the module path (`layer1.0.conv1`, empty for the
/// root) and, when the exporter recorded them, the classes from the root down
/// (`["torchvision.models.resnet.ResNet", "torch.nn.modules.container.Sequential", ...]`).
public struct ModuleScope: Sendable, Equatable {
    public var path: String
    public var classNames: [String]

    public init(path: String, classNames: [String] = []) {
        self.path = path
        self.classNames = classNames
    }
}

/// One operation of a graph: it reads named values and writes named values.
public struct Node: Sendable, Equatable {
    public var name: String
    public var op: Op
    /// Value names; an empty string is an absent optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var scope: ModuleScope?

    public init(name: String, op: Op, inputs: [String], outputs: [String], scope: ModuleScope? = nil) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.scope = scope
    }

    /// The input at `index`, or nil when it is absent.
    public func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }
}

/// A named graph input or output with its element type and (possibly symbolic) shape.
public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: Shape

    public init(name: String, dtype: DType, shape: Shape) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }
}
