import GraftCore
/// A summary of a model: the PyTorch module tree rebuilt from the graph's node scopes, and one
/// row per module call with its output shape, parameters and mult-adds, counted as torchinfo
/// 1.8 counts them.
///
/// Render it as `print(model)` shows the module (`renderTorch()`), as torchinfo's table
/// (`renderTable()`), or as JSON (`renderJSON()`, described by `schemas/summary.schema.json`).
public struct ModelSummary: Sendable {
    let graphName: String
    let tree: ModuleTree
    /// The graph inputs with the shapes the summary ran with.
    let inputs: [ValueInfo]
    /// Module calls in forward order, as torchinfo lists them: a container when entered, every
    /// leaf call (a ReLU called three times is three rows).
    let rows: [SummaryRow]
    let totals: SummaryTotals

    /// Rebuilds the module tree and computes shapes, parameters and mult-adds.
    ///
    /// - Parameters:
    ///   - graph: the model; node scopes give the module tree, shapes come from `inferShapes`.
    ///   - inputShape: the shape of the model's single input (`[1, 3, 224, 224]`); by default the
    ///     declared shape with a symbolic batch dimension set to 1.
    /// - Throws: `GraftError` when an input shape is unknown beyond the batch, when `inputShape`
    ///   does not fit the model, or when the graph is invalid.
    public init(graph: Graph, inputShape: Shape? = nil) throws {
        let inputs = try ModelSummary.resolveInputs(of: graph, inputShape: inputShape)
        let facts = try graph.inferShapes(inputShapes: Dictionary(uniqueKeysWithValues: inputs.map { ($0.name, $0.shape) }))
        let tree = try ModuleTree(graph: graph, facts: facts)
        let rows = ModelSummary.rows(of: tree, graph: graph, facts: facts)
        self.graphName = graph.name
        self.tree = tree
        self.inputs = inputs
        self.rows = rows
        self.totals = SummaryTotals(rows: rows, tree: tree, inputs: inputs)
    }

    /// Graph inputs (not initializers) with concrete shapes: `inputShape`, or the declared shape
    /// with a symbolic leading batch set to 1.
    static func resolveInputs(of graph: Graph, inputShape: Shape?) throws -> [ValueInfo] {
        var inputs = graph.inputs.filter { graph.constants[$0.name] == nil }
        if let inputShape {
            guard inputs.count == 1 else {
                throw GraftError(.invalidArgument, "an input shape can be given only for a model with one input; this one has \(inputs.count)")
            }
            guard let sizes = inputShape.concrete, sizes.allSatisfy({ $0 > 0 }) else {
                throw GraftError(.invalidArgument, "the input shape \(inputShape) must be positive sizes", tensor: inputs[0].name)
            }
            guard inputShape.rank == inputs[0].shape.rank else {
                throw GraftError(.invalidArgument, "the input shape \(inputShape) has rank \(inputShape.rank); the model declares \(inputs[0].shape)",
                                 tensor: inputs[0].name)
            }
            inputs[0].shape = inputShape
            return inputs
        }
        for i in inputs.indices {
            var dims = inputs[i].shape.dims
            if let first = dims.first, first.value == nil { dims[0] = .value(1) }
            guard dims.allSatisfy({ $0.value != nil }) else {
                throw GraftError(.invalidArgument, "the input has shape \(inputs[i].shape); give an input shape to summarize a model whose sizes beyond the batch are symbolic",
                                 tensor: inputs[i].name)
            }
            inputs[i].shape = Shape(dims)
        }
        return inputs
    }

    /// The rows torchinfo's forward hooks would record: a container's row is opened when a call
    /// first enters it, every leaf call is a row, and a row's output is its call's last node's.
    static func rows(of tree: ModuleTree, graph: Graph, facts: [String: ValueFact]) -> [SummaryRow] {
        var rows: [SummaryRow] = []
        var called = Set<Int>()
        func open(_ module: Int) -> Int {
            rows.append(SummaryRow(module: module, depth: tree.modules[module].depth, isRecursive: !called.insert(module).inserted))
            return rows.count - 1
        }
        // openRows[d] is the open container row at depth d.
        var openRows = [open(ModuleTree.root)]
        for call in tree.calls {
            let module = tree.modules[call.module]
            if call.module == ModuleTree.root && module.isLeaf {
                rows[0].lastNode = call.nodes.last
                continue
            }
            let chain = tree.ancestors(of: call.module) + (module.isLeaf ? [] : [call.module])
            var kept = 1
            while kept < openRows.count && kept < chain.count && rows[openRows[kept]].module == chain[kept] { kept += 1 }
            openRows.removeLast(openRows.count - kept)
            for m in chain[kept...] { openRows.append(open(m)) }
            for r in openRows { rows[r].lastNode = call.nodes.last }
            if module.isLeaf {
                let r = open(call.module)
                rows[r].lastNode = call.nodes.last
            }
        }

        var depthCounters: [Int: Int] = [:]
        for r in rows.indices {
            let module = tree.modules[rows[r].module]
            // The root's output is the model's, whatever node the file lists last.
            let modelOutput = r == 0 ? graph.outputs.first.flatMap { facts[$0.name] } : nil
            if let fact = modelOutput ?? rows[r].lastNode.flatMap({ graph.nodes[$0].outputs.first }).flatMap({ facts[$0] }) {
                rows[r].outputShape = fact.shape
                rows[r].outputBytes = (fact.shape.concrete?.elementCount ?? 0) * fact.dtype.byteSize
            }
            let parameters = tree.subtreeParameters(of: rows[r].module).compactMap { graph.constants[$0] }
            rows[r].parameters = parameters.reduce(0) { $0 + $1.elementCount }
            rows[r].trainability = Trainability(module: module.pathString, trainable: graph.trainableModules)
            rows[r].parameterBytes = parameters.reduce(0) { $0 + $1.byteCount }
            if module.isLeaf, let out = rows[r].outputShape?.concrete, !out.isEmpty {
                // torchinfo: each weight or bias times the batch, and for convolutions times every
                // output position too.
                let perElement = module.isConvolution ? out[0] * out.dropFirst(2).reduce(1, *) : out[0]
                rows[r].multAdds = rows[r].parameters * perElement
            }
            depthCounters[rows[r].depth, default: 0] += 1
            rows[r].depthIndex = depthCounters[rows[r].depth]!
        }
        for r in rows.indices {
            var end = r + 1
            while end < rows.count && rows[end].depth > rows[r].depth { end += 1 }
            rows[r].descendants = (r + 1)..<end
            if !tree.modules[rows[r].module].isLeaf {
                rows[r].multAdds = rows[rows[r].descendants].filter { tree.modules[$0.module].isLeaf }.reduce(0) { $0 + $1.multAdds }
            }
        }
        for r in rows.indices.reversed() where !tree.modules[rows[r].module].isLeaf {
            // torchinfo's leftover: what no non-recursive row under this one accounts for.
            rows[r].leftoverParameters = rows[r].parameters - rows[rows[r].descendants].filter { !$0.isRecursive }.reduce(0) {
                $0 + (tree.modules[$1.module].isLeaf ? $1.parameters : $1.leftoverParameters)
            }
        }
        return rows
    }

    /// The class name of a row's module.
    func className(_ row: SummaryRow) -> String { tree.modules[row.module].className }
}

/// One call of a module, as a line of torchinfo's table.
struct SummaryRow: Sendable, Equatable {
    var module: Int
    var depth: Int
    /// Whether an earlier row is a call of the same module (torchinfo's "recursive").
    var isRecursive: Bool
    /// torchinfo's depth-index: this row's number among all rows of its depth.
    var depthIndex = 0
    /// The last graph node the call ran; its first output is the row's output.
    var lastNode: Int?
    var outputShape: Shape?
    var outputBytes = 0
    /// Parameters of the module and every module under it.
    var parameters = 0
    var parameterBytes = 0
    /// torchinfo's count for a leaf call; for a container, the sum over the leaf calls under it.
    var multAdds = 0
    /// The rows of the calls made inside this one.
    var descendants: Range<Int> = 0..<0
    /// Parameters of a container that no row under it accounts for.
    var leftoverParameters = 0
    var trainability = Trainability.all
}

/// Whether a module's parameters are trained (torchinfo's Trainable column): all of them unless
/// the graph names the only modules that are (a grafted model's head, its trunk frozen).
enum Trainability: Sendable, Equatable {
    case all, none, partial

    init(module: String, trainable: [String]?) {
        guard let trainable else {
            self = .all
            return
        }
        func under(_ path: String, _ prefix: String) -> Bool { prefix.isEmpty || path == prefix || path.hasPrefix(prefix + ".") }
        if trainable.contains(where: { under(module, $0) }) {
            self = .all
        } else if trainable.contains(where: { under($0, module) }) {
            self = .partial
        } else {
            self = .none
        }
    }

    /// The table's word for it: `True`, `False`, `Partial`.
    var text: String {
        switch self {
        case .all: return "True"
        case .none: return "False"
        case .partial: return "Partial"
        }
    }
}

/// The totals under torchinfo's table.
struct SummaryTotals: Sendable, Equatable {
    var parameters = 0
    /// Every parameter, unless the graph names its trainable modules (a grafted model's head).
    var trainableParameters = 0
    var multAdds = 0
    var inputBytes = 0
    /// Outputs of the leaf calls that have parameters, twice (torchinfo's allowance for gradients).
    var forwardBackwardBytes = 0
    var parameterBytes = 0
    var totalBytes: Int { inputBytes + forwardBackwardBytes + parameterBytes }

    init(rows: [SummaryRow], tree: ModuleTree, inputs: [ValueInfo]) {
        for row in rows {
            if tree.modules[row.module].isLeaf {
                multAdds += row.multAdds
                if row.parameters > 0 { forwardBackwardBytes += 2 * row.outputBytes }
                if row.isRecursive { continue }
                parameters += row.parameters
                parameterBytes += row.parameterBytes
                if row.trainability == .all { trainableParameters += row.parameters }
            } else if !row.isRecursive {
                parameters += max(row.leftoverParameters, 0)
                if row.trainability == .all { trainableParameters += max(row.leftoverParameters, 0) }
            }
        }
        inputBytes = inputs.reduce(0) { $0 + ($1.shape.concrete?.elementCount ?? 0) * $1.dtype.byteSize }
    }
}
