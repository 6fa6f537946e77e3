import GraftCore
/// The PyTorch class and `extra_repr()` of a leaf module, read from the nodes of one of its calls.
///
/// The reprs follow `torch.nn` (2.x): `Conv2d` prints padding only when nonzero, dilation and
/// groups only when not 1 and `bias=False` only without a bias; pools print ints where the window
/// is square (as torchvision builds them). What an export folded away is shown as the graph has
/// it: a `Conv2d` that absorbed its batch norm has a bias, and the batch norm is gone.
struct LeafLayer: Sendable, Equatable {
    var className: String
    var extraRepr: String
    /// False when the op has no `torch.nn` counterpart here and the class is the ONNX op name.
    var isKnown = true

    /// - Parameters:
    ///   - call: the nodes of one call of the module, in forward order.
    ///   - inplaceReLU: print `ReLU(inplace=True)`. The graph does not record `inplace`; the
    ///     caller passes true for the torchvision ResNet family, which builds every ReLU in place.
    init(call: [Node], graph: Graph, facts: [String: ValueFact], inplaceReLU: Bool) {
        func sizes(_ value: String?) -> [Int]? {
            guard let value else { return nil }
            return facts[value]?.shape.concrete ?? graph.constants[value]?.shape
        }
        func padding(_ window: Window) -> [Int] {
            let p = window.pads
            return p.count == 4 && p[0] == p[2] && p[1] == p[3] ? [p[0], p[1]] : p
        }
        let plumbing: Set<String> = ["Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "ConstantOfShape", "Slice"]
        guard let node = call.first(where: { !plumbing.contains($0.op.name) }) ?? call.first else {
            self.init(className: "Module", extraRepr: "", isKnown: false)
            return
        }
        switch node.op {
        case .conv(let a):
            let w = sizes(node.input(1)) ?? []
            let kernel = w.count == 4 ? [w[2], w[3]] : a.window.kernel
            var s = "\(w.count > 1 ? w[1] * a.group : 0), \(w.first ?? 0), kernel_size=\(PythonFormat.tuple(kernel)), stride=\(PythonFormat.tuple(a.window.strides))"
            switch a.window.autoPad {
            case .sameUpper, .sameLower: s += ", padding=same"
            case .valid: break
            case .notSet:
                if a.window.pads.contains(where: { $0 != 0 }) { s += ", padding=\(PythonFormat.tuple(padding(a.window)))" }
            }
            if a.window.dilations.contains(where: { $0 != 1 }) { s += ", dilation=\(PythonFormat.tuple(a.window.dilations))" }
            if a.group != 1 { s += ", groups=\(a.group)" }
            if node.input(2) == nil { s += ", bias=False" }
            self.init(className: "Conv2d", extraRepr: s)
        case .batchNorm(let epsilon, let momentum):
            let rank = sizes(node.input(0))?.count ?? 4
            let features = sizes(node.input(1))?.first ?? 0
            self.init(className: rank == 5 ? "BatchNorm3d" : rank == 4 ? "BatchNorm2d" : "BatchNorm1d",
                      extraRepr: "\(features), eps=\(PythonFormat.repr(epsilon)), momentum=\(PythonFormat.torchMomentum(fromONNX: momentum)), "
                          + "affine=True, bias=True, track_running_stats=True")
        case .relu:
            self.init(className: "ReLU", extraRepr: inplaceReLU ? "inplace=True" : "")
        case .leakyRelu(let alpha):
            self.init(className: "LeakyReLU", extraRepr: "negative_slope=\(PythonFormat.repr(alpha))")
        case .sigmoid:
            self.init(className: "Sigmoid", extraRepr: "")
        case .tanh:
            self.init(className: "Tanh", extraRepr: "")
        case .maxPool(let w):
            self.init(className: "MaxPool2d",
                      extraRepr: "kernel_size=\(PythonFormat.intOrTuple(w.kernel)), stride=\(PythonFormat.intOrTuple(w.strides)), "
                          + "padding=\(PythonFormat.intOrTuple(padding(w))), dilation=\(PythonFormat.intOrTuple(w.dilations)), "
                          + "ceil_mode=\(PythonFormat.bool(w.ceilMode))")
        case .averagePool(let w, _):
            self.init(className: "AvgPool2d",
                      extraRepr: "kernel_size=\(PythonFormat.intOrTuple(w.kernel)), stride=\(PythonFormat.intOrTuple(w.strides)), "
                          + "padding=\(PythonFormat.intOrTuple(padding(w)))")
        case .globalAveragePool:
            self.init(className: "AdaptiveAvgPool2d", extraRepr: "output_size=(1, 1)")
        case .globalMaxPool:
            self.init(className: "AdaptiveMaxPool2d", extraRepr: "output_size=(1, 1)")
        case .reduceMean(let axes, let keepDims, _):
            let rank = sizes(node.input(0))?.count
            let list = node.input(1).flatMap { facts[$0]?.integers } ?? axes ?? []
            if keepDims, let rank, rank == 4, Set(list.map { $0 < 0 ? $0 + rank : $0 }) == [2, 3] {
                self.init(className: "AdaptiveAvgPool2d", extraRepr: "output_size=(1, 1)")
            } else {
                self.init(className: node.op.name, extraRepr: "", isKnown: false)
            }
        case .gemm(let a):
            let w = sizes(node.input(1)) ?? [0, 0]
            let (inFeatures, outFeatures) = a.transB ? (w[1], w[0]) : (w[0], w[1])
            self.init(className: "Linear",
                      extraRepr: "in_features=\(inFeatures), out_features=\(outFeatures), bias=\(PythonFormat.bool(node.input(2) != nil))")
        case .matMul where sizes(node.input(1))?.count == 2 && node.input(1).map({ graph.constants[$0] != nil }) == true:
            let w = sizes(node.input(1))!
            let bias = call.contains { $0.op == .add }
            self.init(className: "Linear",
                      extraRepr: "in_features=\(w[0]), out_features=\(w[1]), bias=\(PythonFormat.bool(bias))")
        case .flatten(let axis):
            self.init(className: "Flatten", extraRepr: "start_dim=\(axis), end_dim=-1")
        case .dropout(let ratio):
            self.init(className: "Dropout", extraRepr: "p=\(PythonFormat.repr(ratio)), inplace=False")
        case .softmax(let axis, _):
            self.init(className: "Softmax", extraRepr: "dim=\(axis)")
        case .logSoftmax(let axis, _):
            self.init(className: "LogSoftmax", extraRepr: "dim=\(axis)")
        case .identity:
            self.init(className: "Identity", extraRepr: "")
        default:
            self.init(className: node.op.name, extraRepr: "", isKnown: false)
        }
    }

    init(className: String, extraRepr: String, isKnown: Bool = true) {
        self.className = className
        self.extraRepr = extraRepr
        self.isKnown = isKnown
    }
}
