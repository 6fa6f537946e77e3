import GraftCore
/// One module of the PyTorch model a graph was exported from, rebuilt from the node scopes.
struct SummaryModule: Sendable, Equatable {
    /// The attribute name in the parent (`conv1`, `0`); empty for the root.
    var name: String
    /// The attribute names from the root down (`["layer1", "0", "conv1"]`); empty for the root.
    var path: [String]
    var parent: Int?
    /// Child module indices, in PyTorch's registration order.
    var children: [Int] = []
    /// The class `print(model)` and torchinfo show (`Conv2d`, `Bottleneck`).
    var className = "Module"
    /// A leaf's `extra_repr()` (`3, 64, kernel_size=(7, 7), ...`); empty for containers.
    var extraRepr = ""
    /// The short class name the exporter recorded for this module, when it recorded one.
    var declaredClass: String?
    /// Whether torchinfo counts this module's mult-adds per output position (its class name
    /// contains `Conv`).
    var isConvolution = false
    /// The parameter constants (weights and biases) this module's own nodes read, in first-use order.
    var parameters: [String] = []

    var isLeaf: Bool { children.isEmpty }
    var depth: Int { path.count }
    var pathString: String { path.joined(separator: ".") }
}

/// Consecutive nodes, in forward order, that one call of a module ran: a leaf module's call, or
/// functional operations of a container (`x + identity` in a block, `torch.flatten` at the root).
struct ModuleCall: Sendable, Equatable {
    var module: Int
    /// Graph node indices.
    var nodes: [Int]
}

/// The module tree of the PyTorch model a graph came from, and the calls of its modules in
/// forward order.
///
/// Every node's `scope` names the module that ran it. A scope that other scopes lie under is a
/// container, and its own nodes are functional calls; a scope with nothing under it is a leaf
/// module, classified by its op (`Conv` is a `Conv2d`). A node without a scope (a hand-built graph,
/// another exporter) is a leaf of its own at the root, named by the node. Container classes come
/// from the exporter's class names when it recorded them, else from the shape of the torchvision
/// ResNet family (`layer1` under the root, numbered children, `conv1`..`conv3` in a block).
struct ModuleTree: Sendable, Equatable {
    static let root = 0

    var modules: [SummaryModule]
    var calls: [ModuleCall]
    /// Whether the model is a torchvision ResNet, whose `ReLU`s are built with `inplace=True`.
    var isResNetFamily: Bool

    /// - Parameter facts: the shapes of the graph's values, from `Graph.inferShapes`.
    /// - Throws: `GraftError` when the graph has no valid order (a cycle, a missing input).
    init(graph: Graph, facts: [String: ValueFact]) throws {
        // A quantized model's QuantizeLinear/DequantizeLinear pairs are no module of the float
        // model it was made from: its layers are listed as that model's.
        let order = try ModuleTree.forwardOrder(of: graph).filter {
            switch graph.nodes[$0].op {
            case .quantizeLinear, .dequantizeLinear: return false
            default: return true
            }
        }
        var modules = [SummaryModule(name: "", path: [], parent: nil)]
        var index: [[String]: Int] = [[]: ModuleTree.root]
        var moduleOfNode = [Int](repeating: ModuleTree.root, count: graph.nodes.count)
        var recordsTorchvisionResNet = false
        for i in order {
            let node = graph.nodes[i]
            let path = ModuleTree.path(of: node, at: i)
            var module = ModuleTree.root
            for depth in 0...path.count {
                let prefix = Array(path[..<depth])
                if let existing = index[prefix] {
                    module = existing
                } else {
                    let parent = module
                    module = modules.count
                    modules.append(SummaryModule(name: prefix.last!, path: prefix, parent: parent))
                    modules[parent].children.append(module)
                    index[prefix] = module
                }
                if let classes = node.scope?.classNames, depth < classes.count, modules[module].declaredClass == nil {
                    modules[module].declaredClass = String(classes[depth].split(separator: ".").last ?? "")
                }
            }
            moduleOfNode[i] = module
            if node.scope?.classNames.contains(where: { $0.hasPrefix("torchvision.models.resnet.") }) == true {
                recordsTorchvisionResNet = true
            }
        }

        for m in modules.indices where !modules[m].isLeaf {
            modules[m].className = modules[m].declaredClass ?? ModuleTree.containerClass(of: m, in: modules)
            modules[m].children = ModuleTree.registrationOrder(of: modules[m].children, in: modules,
                                                               className: modules[m].className)
        }
        isResNetFamily = recordsTorchvisionResNet || modules.contains {
            !$0.isLeaf && ["ResNet", "Bottleneck", "BasicBlock"].contains($0.className)
        }

        calls = []
        if modules[ModuleTree.root].isLeaf {
            // A model that is one module (an exported bare `nn.Conv2d`): one call of everything.
            if !order.isEmpty { calls = [ModuleCall(module: ModuleTree.root, nodes: order)] }
        } else {
            for i in order {
                let m = moduleOfNode[i]
                // The scope does not say where one call of a leaf ends and the next begins
                // (`relu` runs three times in a Bottleneck): a leaf call never runs the same op
                // twice, which keeps MatMul + Add (a Linear) one call.
                if let last = calls.last, last.module == m,
                   !(modules[m].isLeaf && last.nodes.contains { graph.nodes[$0].op.name == graph.nodes[i].op.name }) {
                    calls[calls.count - 1].nodes.append(i)
                } else {
                    calls.append(ModuleCall(module: m, nodes: [i]))
                }
            }
        }

        var classified = Set<Int>()
        for call in calls where modules[call.module].isLeaf && classified.insert(call.module).inserted {
            // torchvision builds its own ReLUs in place; one in a module the user appended (a
            // Sequential classifier head) is PyTorch's default `ReLU()`.
            let parent = modules[call.module].parent.map { modules[$0].className } ?? ""
            let layer = LeafLayer(call: call.nodes.map { graph.nodes[$0] }, graph: graph, facts: facts,
                                  inplaceReLU: isResNetFamily && ["ResNet", "Bottleneck", "BasicBlock"].contains(parent))
            let m = call.module
            // The op decides; a recorded class names only what no torch.nn class here covers.
            modules[m].className = layer.isKnown ? layer.className : (modules[m].declaredClass ?? layer.className)
            modules[m].extraRepr = layer.extraRepr
            modules[m].isConvolution = modules[m].className.contains("Conv")
        }
        for i in order {
            let m = moduleOfNode[i]
            for name in ModuleTree.parameterNames(of: graph.nodes[i], in: graph, linear: modules[m].className == "Linear")
            where !modules[m].parameters.contains(name) {
                modules[m].parameters.append(name)
            }
        }
        self.modules = modules
    }

    /// Module indices from the root down to `m`'s parent.
    func ancestors(of m: Int) -> [Int] {
        var chain: [Int] = []
        var current = modules[m].parent
        while let p = current {
            chain.append(p)
            current = modules[p].parent
        }
        return chain.reversed()
    }

    /// The parameter constants of `m` and every module under it, each once.
    func subtreeParameters(of m: Int) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        func visit(_ m: Int) {
            for name in modules[m].parameters where seen.insert(name).inserted { out.append(name) }
            modules[m].children.forEach(visit)
        }
        visit(m)
        return out
    }

    // MARK: - Building

    /// The nodes in execution order. Exporters list nodes in the order the model ran them, which
    /// is the order torchinfo's hooks see, so the file order is kept whenever it is a valid one.
    static func forwardOrder(of graph: Graph) throws -> [Int] {
        var available = Set(graph.inputs.map(\.name)).union(graph.constants.keys)
        for node in graph.nodes {
            guard node.inputs.allSatisfy({ $0.isEmpty || available.contains($0) }) else {
                return try graph.topologicalOrder()
            }
            available.formUnion(node.outputs)
        }
        return Array(graph.nodes.indices)
    }

    /// The module path of a node: its scope's path, or for a node without a scope its own name
    /// (one component, even if the name holds dots).
    static func path(of node: Node, at index: Int) -> [String] {
        guard let scope = node.scope else { return [node.name.isEmpty ? "\(node.op.name)_\(index)" : node.name] }
        return scope.path.isEmpty ? [] : scope.path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// A container's class when the exporter did not record it, from the torchvision ResNet
    /// family's layout.
    static func containerClass(of m: Int, in modules: [SummaryModule]) -> String {
        let names = Set(modules[m].children.map { modules[$0].name })
        if m == root && names.contains("layer1") { return "ResNet" }
        if names.allSatisfy({ Int($0) != nil }) { return "Sequential" }
        // Blocks are recognized by their convolutions alone: a folded export has no bn1..bn3.
        if names.isSuperset(of: ["conv1", "conv2", "conv3"]) { return "Bottleneck" }
        if names.isSuperset(of: ["conv1", "conv2"]) { return "BasicBlock" }
        return "Module"
    }

    /// torchvision's `__init__` order of the children of its ResNet classes; children that order
    /// does not name follow in the order the graph first uses them.
    static let torchvisionOrder: [String: [String]] = [
        "ResNet": ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"],
        "Bottleneck": ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu", "downsample"],
        "BasicBlock": ["conv1", "bn1", "relu", "conv2", "bn2", "downsample"],
    ]

    /// Children in PyTorch registration order: torchvision's for its classes, numeric for a
    /// `Sequential`, first use otherwise (`children` arrive in first-use order).
    static func registrationOrder(of children: [Int], in modules: [SummaryModule], className: String) -> [Int] {
        func rank(_ child: Int) -> Int? {
            let name = modules[child].name
            if className == "Sequential" { return Int(name) }
            return torchvisionOrder[className]?.firstIndex(of: name)
        }
        let known = children.filter { rank($0) != nil }.sorted { rank($0)! < rank($1)! }
        return known + children.filter { rank($0) == nil }
    }

    /// The float constants a node reads as weights or biases; inside a `Linear` the constant
    /// operand of the `Add` after a `MatMul` is its bias.
    static func parameterNames(of node: Node, in graph: Graph, linear: Bool) -> [String] {
        let positions = linear && node.op == .add ? Array(node.inputs.indices) : node.op.parameterInputs
        return positions.compactMap { i in
            guard let name = node.input(i), let t = graph.constants[name], t.dtype.isFloatingPoint else { return nil }
            return name
        }
    }
}
