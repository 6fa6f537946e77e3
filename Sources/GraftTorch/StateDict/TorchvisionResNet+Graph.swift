import GraftCore

extension TorchvisionResNet {
    /// PyTorch's batch-norm defaults as the TorchScript exporter writes them (ONNX momentum is
    /// 1 − PyTorch's 0.1).
    public static let batchNorm = Op.batchNorm(epsilon: 1e-5, momentum: 0.9)

    /// The graph PyTorch's TorchScript exporter produces for this model in eval mode with
    /// `training=TrainingMode.PRESERVE, do_constant_folding=False` and a dynamic batch: the same
    /// nodes, node names, value names and module scopes, the constants named by state_dict keys.
    ///
    /// - Parameters:
    ///   - name: the graph's name.
    ///   - imageSize: the height and width of the declared input.
    ///   - weight: the tensor of a state_dict key, of the given shape.
    public func graph(name: String, imageSize: Int = 224, weight: (String, [Int]) throws -> Tensor) throws -> Graph {
        var graph = Graph(name: name)
        for (key, shape) in parameters { graph.setConstant(key, try weight(key, shape)) }
        var b = GraphBuilder()
        var x = "input"
        x = b.add(.conv(kernel: 7, stride: 2, pad: 3), scopes: ["conv1"], module: "conv1", inputs: [x, "conv1.weight"])
        x = b.add(Self.batchNorm, scopes: ["bn1"], module: "bn1", inputs: batchNormInputs(x, "bn1"))
        x = b.add(.relu, scopes: ["relu"], module: "relu", inputs: [x])
        x = b.add(.maxPool(Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1])), scopes: ["maxpool"], module: "maxpool", inputs: [x])
        for (stage, blocks) in stages.enumerated() {
            for block in blocks { x = add(block, stage: "layer\(stage + 1)", to: &b, input: x) }
        }
        x = b.add(.globalAveragePool, scopes: ["avgpool"], module: "avgpool", inputs: [x])
        x = b.add(.flatten(axis: 1), scopes: [], module: "", inputs: [x])
        for (i, linear) in head.enumerated() {
            let scopes = linear.index == nil ? ["fc"] : ["fc", linear.module]
            x = b.add(.gemm(GemmAttributes(transB: true)), scopes: scopes, module: linear.module,
                      inputs: [x, "\(linear.module).weight", "\(linear.module).bias"])
            // A Sequential head has a ReLU module right after each Linear but the last, when
            // there is a position for one before the next Linear.
            if i + 1 < head.count, let index = linear.index, let next = head[i + 1].index, next > index + 1 {
                let relu = "fc.\(index + 1)"
                x = b.add(.relu, scopes: ["fc", relu], module: relu, inputs: [x])
            }
        }
        b.nameLastOutput("output")
        graph.nodes = b.nodes
        graph.inputs = [ValueInfo(name: "input", dtype: .float32,
                                  shape: Shape([.symbol("batch"), .value(inputChannels), .value(imageSize), .value(imageSize)]))]
        graph.outputs = [ValueInfo(name: "output", dtype: .float32, shape: Shape([.symbol("batch"), .value(head.last!.outFeatures)]))]
        return graph
    }

    private func batchNormInputs(_ x: String, _ module: String) -> [String] {
        [x] + ["weight", "bias", "running_mean", "running_var"].map { "\(module).\($0)" }
    }

    /// One residual block; returns its output value.
    private func add(_ block: Block, stage: String, to b: inout GraphBuilder, input: String) -> String {
        let p = block.module
        let outer = [stage, p]
        func conv(_ name: String, _ op: Op, _ x: String) -> String {
            b.add(op, scopes: outer + [name], module: "\(p).\(name)", inputs: [x, "\(p).\(name).weight"])
        }
        func norm(_ name: String, _ x: String) -> String {
            b.add(Self.batchNorm, scopes: outer + [name], module: "\(p).\(name)", inputs: batchNormInputs(x, "\(p).\(name)"))
        }
        // The block's one ReLU module is called after each stage of the block; TorchScript
        // numbers the repeated calls relu, relu_1, relu_2.
        var reluCalls = 0
        func relu(_ x: String) -> String {
            defer { reluCalls += 1 }
            return b.add(.relu, scopes: outer + [reluCalls == 0 ? "relu" : "relu_\(reluCalls)"], module: "\(p).relu", inputs: [x])
        }
        var x = input
        switch kind {
        case .basic:
            x = relu(norm("bn1", conv("conv1", .conv(kernel: 3, stride: block.stride, pad: 1), x)))
            x = norm("bn2", conv("conv2", .conv(kernel: 3, stride: 1, pad: 1), x))
        case .bottleneck:
            x = relu(norm("bn1", conv("conv1", .conv(kernel: 1, stride: 1, pad: 0), x)))
            x = relu(norm("bn2", conv("conv2", .conv(kernel: 3, stride: block.stride, pad: 1, group: block.groups), x)))
            x = norm("bn3", conv("conv3", .conv(kernel: 1, stride: 1, pad: 0), x))
        }
        var identity = input
        if block.downsample {
            let d = outer + ["downsample"]
            identity = b.add(.conv(kernel: 1, stride: block.stride, pad: 0), scopes: d + ["downsample.0"], module: "\(p).downsample.0",
                             inputs: [input, "\(p).downsample.0.weight"])
            identity = b.add(Self.batchNorm, scopes: d + ["downsample.1"], module: "\(p).downsample.1",
                             inputs: batchNormInputs(identity, "\(p).downsample.1"))
        }
        x = b.add(.add, scopes: outer, module: p, inputs: [x, identity])
        return relu(x)
    }
}
