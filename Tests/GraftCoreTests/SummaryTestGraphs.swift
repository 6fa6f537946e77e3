import GraftCore

/// Builds graphs shaped like the ONNX exports of torchvision's `ResNet(Bottleneck, blocks)` as
/// the importer hands them over: nodes in execution order, scopes from the TorchScript node
/// names (paths only) or, with `recordClasses`, the dynamo exporter's class hierarchy too.
struct ResNetGraphBuilder {
    var graph: Graph
    /// Batch norm folded into the convolutions (a bias on each, no BatchNormalization nodes).
    var fold: Bool
    var recordClasses: Bool
    private var counter = 0

    /// - Parameters:
    ///   - base: channels after the stem (torchvision: 64); stage planes are base, 2·base, 4·base, 8·base.
    ///   - blocks: Bottleneck blocks per stage (ResNet-50: `[3, 4, 6, 3]`).
    ///   - batch: the input's leading dimension, a size or a symbol.
    static func resnet(base: Int, blocks: [Int], classes: Int, size: Int, batch: Dim = .value(1),
                       fold: Bool = false, recordClasses: Bool = false) -> Graph {
        var b = ResNetGraphBuilder(graph: Graph(name: "resnet"), fold: fold, recordClasses: recordClasses)
        b.graph.inputs = [ValueInfo(name: "input", dtype: .float32, shape: Shape([batch, .value(3), .value(size), .value(size)]))]
        var x = b.conv("conv1", "input", 3, base, kernel: 7, stride: 2, pad: 3)
        x = b.batchNorm("bn1", x, base)
        x = b.relu("relu", x)
        x = b.node("maxpool", "MaxPool", .maxPool(Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1])), [x],
                   leaf: "torch.nn.modules.pooling.MaxPool2d")
        var inplanes = base
        for (stage, count) in blocks.enumerated() {
            let planes = base << stage
            for block in 0..<count {
                let prefix = "layer\(stage + 1).\(block)"
                let stride = stage > 0 && block == 0 ? 2 : 1
                var y = b.conv("\(prefix).conv1", x, inplanes, planes, kernel: 1, stride: 1, pad: 0)
                y = b.batchNorm("\(prefix).bn1", y, planes)
                y = b.relu("\(prefix).relu", y)
                y = b.conv("\(prefix).conv2", y, planes, planes, kernel: 3, stride: stride, pad: 1)
                y = b.batchNorm("\(prefix).bn2", y, planes)
                y = b.relu("\(prefix).relu", y)
                y = b.conv("\(prefix).conv3", y, planes, planes * 4, kernel: 1, stride: 1, pad: 0)
                y = b.batchNorm("\(prefix).bn3", y, planes * 4)
                var identity = x
                if stride != 1 || inplanes != planes * 4 {
                    identity = b.conv("\(prefix).downsample.0", x, inplanes, planes * 4, kernel: 1, stride: stride, pad: 0)
                    identity = b.batchNorm("\(prefix).downsample.1", identity, planes * 4)
                }
                y = b.node(prefix, "Add", .add, [y, identity])
                x = b.relu("\(prefix).relu", y)
                inplanes = planes * 4
            }
        }
        x = b.node("avgpool", "GlobalAveragePool", .globalAveragePool, [x], leaf: "torch.nn.modules.pooling.AdaptiveAvgPool2d")
        x = b.node("", "Flatten", .flatten(axis: 1), [x])
        b.graph.setConstant("fc.weight", Tensor(zeros: [classes, inplanes]))
        b.graph.setConstant("fc.bias", Tensor(zeros: [classes]))
        x = b.node("fc", "Gemm", .gemm(GemmAttributes(transB: true)), [x, "fc.weight", "fc.bias"],
                   leaf: "torch.nn.modules.linear.Linear")
        b.graph.outputs = [ValueInfo(name: x, dtype: .float32, shape: Shape([batch, .value(classes)]))]
        return b.graph
    }

    /// The classes torchvision's ResNet-50 has along `path`, as the dynamo exporter records them.
    func classNames(_ path: String, leaf: String?) -> [String] {
        guard recordClasses else { return [] }
        let components = path.isEmpty ? [] : path.split(separator: ".").map(String.init)
        var classes = ["torchvision.models.resnet.ResNet"]
        for (depth, name) in components.enumerated() where depth < components.count - (leaf == nil ? 0 : 1) {
            switch depth {
            case 0: classes.append("torch.nn.modules.container.Sequential")
            case 1: classes.append("torchvision.models.resnet.Bottleneck")
            default: classes.append(name == "downsample" ? "torch.nn.modules.container.Sequential" : "?")
            }
        }
        if let leaf { classes.append(leaf) }
        return classes
    }

    /// Adds a node whose output is a fresh value and returns that value's name.
    mutating func node(_ path: String, _ opName: String, _ op: Op, _ inputs: [String], leaf: String? = nil) -> String {
        counter += 1
        let output = "v\(counter)"
        let name = "/" + path.split(separator: ".").map(String.init).joined(separator: "/") + "/\(opName)"
        graph.nodes.append(Node(name: name, op: op, inputs: inputs, outputs: [output],
                                scope: ModuleScope(path: path, classNames: classNames(path, leaf: leaf))))
        return output
    }

    mutating func conv(_ path: String, _ x: String, _ cin: Int, _ cout: Int, kernel: Int, stride: Int, pad: Int) -> String {
        graph.setConstant("\(path).weight", Tensor(zeros: [cout, cin, kernel, kernel]))
        var inputs = [x, "\(path).weight"]
        if fold {
            graph.setConstant("\(path).bias", Tensor(zeros: [cout]))
            inputs.append("\(path).bias")
        }
        let window = Window(kernel: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad])
        return node(path, "Conv", .conv(ConvAttributes(window: window)), inputs, leaf: "torch.nn.modules.conv.Conv2d")
    }

    mutating func batchNorm(_ path: String, _ x: String, _ channels: Int) -> String {
        if fold { return x }
        let names = ["weight", "bias", "running_mean", "running_var"].map { "\(path).\($0)" }
        for name in names { graph.setConstant(name, Tensor(zeros: [channels])) }
        return node(path, "BatchNormalization", .batchNorm(epsilon: 1e-5, momentum: 0.9), [x] + names,
                    leaf: "torch.nn.modules.batchnorm.BatchNorm2d")
    }

    mutating func relu(_ path: String, _ x: String) -> String {
        node(path, "Relu", .relu, [x], leaf: "torch.nn.modules.activation.ReLU")
    }
}
