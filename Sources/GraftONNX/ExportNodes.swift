import GraftCore

/// An attribute value in the form ONNX stores it.
enum AttributeValue {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case tensor(Tensor)
}

/// One ONNX node as the exporter writes it.
struct ExportedNode {
    var name: String
    var opType: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [(String, AttributeValue)]
    var metadata: [(String, String)]
}

/// Writes one `Node` as the ONNX node of a target opset: the inverse of the translators in
/// Translators.swift. Attributes that became inputs (or inputs that were attributes) in some
/// opset are moved to the form the target wants; constants it needs are added to the model.
struct NodeWriter {
    let node: Node
    let opset: Int
    let constants: [String: Tensor]
    /// The shape of a value, from shape inference run on demand (few nodes need it).
    let shapeOf: (String) throws -> Shape
    private(set) var inputs: [String]
    private(set) var attributes: [(String, AttributeValue)] = []
    /// Constants this node reads that the graph does not hold (`<node>::axes`).
    private(set) var newConstants: [(String, Tensor)] = []

    init(node: Node, opset: Int, constants: [String: Tensor], shapeOf: @escaping (String) throws -> Shape) {
        self.node = node
        self.opset = opset
        self.constants = constants
        self.shapeOf = shapeOf
        self.inputs = node.inputs
    }

    /// The ONNX node, with the scope as Graft metadata.
    mutating func write() throws -> ExportedNode {
        try writeAttributes()
        return ExportedNode(name: node.name, opType: node.op.name, inputs: inputs, outputs: node.outputs,
                            attributes: attributes, metadata: node.scope.map(ModuleScopes.metadata) ?? [])
    }

    // MARK: - Per op

    private mutating func writeAttributes() throws {
        switch node.op {
        case .relu, .sigmoid, .tanh, .globalAveragePool, .globalMaxPool, .add, .sub, .mul, .div, .sum,
             .neg, .exp, .sqrt, .matMul, .identity:
            break
        case .conv(let a):
            try window(a.window, kernel: convKernel(a.window))
            set("group", .int(a.group))
        case .batchNorm(let epsilon, let momentum):
            set("epsilon", .float(epsilon))
            set("momentum", .float(momentum))
        case .leakyRelu(let alpha):
            set("alpha", .float(alpha))
        case .maxPool(let w):
            try window(w, kernel: w.kernel)
        case .averagePool(let w, let countIncludePad):
            try window(w, kernel: w.kernel)
            set("count_include_pad", .int(countIncludePad ? 1 : 0))
        case .reduceMean(let axes, let keepDims, let noop):
            try reduceMean(axes: axes, keepDims: keepDims, noop: noop)
        case .flatten(let axis):
            set("axis", .int(try legacyAxis(axis, rank: try rank(0))))
        case .reshape(let allowZero):
            try reshape(allowZero: allowZero)
        case .gemm(let a):
            if opset < 11 && node.input(2) == nil {
                throw unsupported("Gemm without C (input 2)", since: 11)
            }
            set("alpha", .float(a.alpha))
            set("beta", .float(a.beta))
            set("transA", .int(a.transA ? 1 : 0))
            set("transB", .int(a.transB ? 1 : 0))
        case .dropout(let ratio):
            try dropout(ratio: ratio)
        case .constantOfShape(let value):
            if opset < 9 { throw unsupported("ConstantOfShape", since: 9) }
            set("value", .tensor(value))
        case .shape(let start, let end):
            if opset < 15 && (start != 0 || end != nil) {
                throw unsupported("Shape with start \(start) and end \(end.map(String.init) ?? "none")", since: 15)
            }
            if start != 0 { set("start", .int(start)) }
            if let end { set("end", .int(end)) }
        case .gather(let axis):
            set("axis", .int(try legacyAxis(axis, rank: try rank(0))))
        case .unsqueeze(let axes):
            try axesOfShapeOp(axes, unsqueeze: true)
        case .squeeze(let axes):
            try axesOfShapeOp(axes, unsqueeze: false)
        case .concat(let axis):
            set("axis", .int(try legacyAxis(axis, rank: try rank(0))))
        case .transpose(let perm):
            if let perm { set("perm", .ints(perm)) }
        case .softmax(let axis, let coerce2D), .logSoftmax(let axis, let coerce2D):
            try softmax(axis: axis, coerce2D: coerce2D)
        case .slice:
            try slice()
        case .pad:
            try pad()
        case .quantizeLinear(let axis), .dequantizeLinear(let axis):
            if opset < 10 { throw unsupported(node.op.name, since: 10) }
            let perAxis = node.input(1).flatMap { constants[$0] }.map { $0.elementCount != 1 } ?? true
            if opset >= 13 { set("axis", .int(axis)) } else if perAxis {
                throw unsupported("\(node.op.name) with a scale per slice (or a computed scale)", since: 13)
            }
        }
    }

    /// Conv takes its kernel from the weight when that is a constant: the importer fills a missing
    /// `kernel_shape` with a placeholder.
    private func convKernel(_ w: Window) -> [Int] {
        if let name = node.input(1), let weight = constants[name], weight.rank == 4 {
            return Array(weight.shape[2...])
        }
        return w.kernel
    }

    private mutating func window(_ w: Window, kernel: [Int]) throws {
        set("kernel_shape", .ints(kernel))
        set("strides", .ints(w.strides))
        if w.autoPad == .notSet {
            set("pads", .ints(w.pads))
        } else {
            set("auto_pad", .string(w.autoPad.rawValue))
        }
        let dilationsSince: Int
        switch node.op {
        case .maxPool: dilationsSince = 10
        case .averagePool: dilationsSince = 19
        default: dilationsSince = 1
        }
        if opset >= dilationsSince {
            set("dilations", .ints(w.dilations))
        } else if w.dilations != [1, 1] {
            throw unsupported("dilations \(w.dilations)", since: dilationsSince)
        }
        switch node.op {
        case .maxPool, .averagePool:
            if opset >= 10 {
                set("ceil_mode", .int(w.ceilMode ? 1 : 0))
            } else if w.ceilMode {
                throw unsupported("ceil_mode", since: 10)
            }
        default:
            if w.ceilMode { throw cannot("ceil_mode on Conv has no ONNX form") }
        }
    }

    private mutating func reduceMean(axes: [Int]?, keepDims: Bool, noop: Bool) throws {
        set("keepdims", .int(keepDims ? 1 : 0))
        if opset >= 18 {
            if let axes, !axes.isEmpty, node.input(1) == nil {
                appendConstantInput("axes", ints(axes), at: 1)
            }
            if noop { set("noop_with_empty_axes", .int(1)) }
            return
        }
        let list = try node.input(1) == nil ? axes : constantInts(1, "axes")
        if noop && (list ?? []).isEmpty {
            throw unsupported("ReduceMean with noop_with_empty_axes and no axes (the identity)", since: 18)
        }
        dropInputs(from: 1)
        if let list { set("axes", .ints(try list.map { try legacyAxis($0, rank: try rank(0)) })) }
    }

    private mutating func reshape(allowZero: Bool) throws {
        guard allowZero else { return }
        if opset >= 14 {
            set("allowzero", .int(1))
            return
        }
        // Without allowzero a 0 copies the input's size; a shape that holds none means the same.
        guard let shapeName = node.input(1), let shape = constants[shapeName], !shape.int64s.contains(0) else {
            throw unsupported("Reshape with allowzero=1 and a target shape that may hold 0", since: 14)
        }
    }

    private mutating func dropout(ratio: Float) throws {
        if opset >= 12 {
            // ONNX's default ratio is 0.5; any other is an input, so a model trained on keeps it.
            if node.input(1) == nil && ratio != 0.5 {
                appendConstantInput("ratio", Tensor(scalar: ratio), at: 1)
            }
            return
        }
        var value = ratio
        if let t = try constantInput(1, "ratio") {
            guard t.elementCount == 1, t.dtype.isFloatingPoint else { throw cannot("the ratio input is not a float scalar") }
            value = t.floats[0]
        }
        if let t = try constantInput(2, "training_mode"), t.int64s != [0] {
            throw unsupported("Dropout in training mode", since: 12)
        }
        dropInputs(from: 1)
        set("ratio", .float(value))
    }

    /// Unsqueeze and Squeeze: `axes` an attribute before opset 13, an int64 input from 13.
    private mutating func axesOfShapeOp(_ axes: [Int]?, unsqueeze: Bool) throws {
        if opset >= 13 {
            if let axes, node.input(1) == nil { appendConstantInput("axes", ints(axes), at: 1) }
            return
        }
        var list = axes
        if node.input(1) != nil { list = try constantInts(1, "axes") }
        dropInputs(from: 1)
        guard let list else {
            if unsqueeze { throw cannot("Unsqueeze has no axes") }
            return
        }
        if opset < 11 && list.contains(where: { $0 < 0 }) {
            // Unsqueeze's axes index its output.
            let r = try rank(0) + (unsqueeze ? list.count : 0)
            set("axes", .ints(list.map { $0 < 0 ? $0 + r : $0 }))
        } else {
            set("axes", .ints(list))
        }
    }

    private mutating func softmax(axis: Int, coerce2D: Bool) throws {
        let legacy = opset < 13
        if coerce2D == legacy {
            set("axis", .int(legacy ? try legacyAxis(axis, rank: try rank(0)) : axis))
            return
        }
        let dims = try shapeOf(inputs[0]).dims
        let a = axis < 0 ? axis + dims.count : axis
        guard a >= 0 && a < dims.count else { throw cannot("axis \(axis) is out of range for rank \(dims.count)") }
        // The 2-D form works on axes a..<rank together, which is one axis when the others have size 1.
        let wide = (a..<dims.count).filter { dims[$0] != .value(1) }
        if legacy {
            guard wide.allSatisfy({ $0 == a }) else {
                throw cannot("\(node.op.name) over axis \(axis) of \(Shape(dims)) alone has no form before opset 13 (it works on the input coerced to 2-D)")
            }
            set("axis", .int(a))
        } else {
            guard wide.count <= 1 else {
                throw cannot("\(node.op.name) on the input coerced to 2-D at axis \(axis) of \(Shape(dims)) has no form from opset 13 on (only a single axis)")
            }
            set("axis", .int(wide.first ?? a))
        }
    }

    private mutating func slice() throws {
        guard opset < 10 else { return }
        guard let starts = try constantInts(1, "starts"), let ends = try constantInts(2, "ends") else {
            throw cannot("Slice without starts and ends")
        }
        let axes = try constantInts(3, "axes")
        if let steps = try constantInts(4, "steps"), steps.contains(where: { $0 != 1 }) {
            throw unsupported("Slice with steps \(steps)", since: 10)
        }
        dropInputs(from: 1)
        set("starts", .ints(starts))
        set("ends", .ints(ends))
        if let axes { set("axes", .ints(try axes.map { try legacyAxis($0, rank: try rank(0)) })) }
    }

    private mutating func pad() throws {
        guard opset < 11 else { return }
        guard let pads = try constantInts(1, "pads") else { throw cannot("Pad without pads") }
        var value: Float = 0
        if let t = try constantInput(2, "constant_value") {
            guard t.elementCount == 1 else { throw cannot("the constant_value input is not a scalar") }
            value = t.floats[0]
        }
        dropInputs(from: 1)
        set("pads", .ints(pads))
        set("value", .float(value))
    }

    // MARK: - Helpers

    private mutating func set(_ name: String, _ value: AttributeValue) {
        attributes.append((name, value))
    }

    private func rank(_ index: Int) throws -> Int {
        try shapeOf(inputs[index]).rank
    }

    /// An axis in the range `0..<rank` before opset 11, which first allowed negative axes.
    private func legacyAxis(_ axis: Int, rank: @autoclosure () throws -> Int) throws -> Int {
        guard opset < 11 && axis < 0 else { return axis }
        return axis + (try rank())
    }

    /// The constant behind input `index` (nil when the input is absent); a computed value cannot
    /// become an attribute.
    private func constantInput(_ index: Int, _ what: String) throws -> Tensor? {
        guard let name = node.input(index) else { return nil }
        guard let t = constants[name] else {
            throw cannot("its \(what) (input \(index), '\(name)') is computed, but opset \(opset) needs it as an attribute")
        }
        return t
    }

    private func constantInts(_ index: Int, _ what: String) throws -> [Int]? {
        try constantInput(index, what).map { t in t.int64s.map { Int($0) } }
    }

    private mutating func dropInputs(from index: Int) {
        if inputs.count > index { inputs.removeSubrange(index...) }
    }

    private func ints(_ values: [Int]) -> Tensor {
        Tensor(shape: [values.count], int64s: values.map { Int64($0) })
    }

    /// Adds a constant input `<node>::<suffix>`, the name the importer gives legacy attributes.
    private mutating func appendConstantInput(_ suffix: String, _ tensor: Tensor, at index: Int) {
        var name = "\(node.name)::\(suffix)"
        var n = 1
        while let existing = constants[name], existing != tensor {
            name = "\(node.name)::\(suffix)_\(n)"
            n += 1
        }
        while inputs.count < index { inputs.append("") }
        if inputs.count == index { inputs.append(name) } else { inputs[index] = name }
        if constants[name] == nil { newConstants.append((name, tensor)) }
    }

    private func cannot(_ why: String) -> GraftError {
        GraftError(.invalidArgument, "cannot be written at opset \(opset): \(why)", node: node.name, op: node.op.name)
    }

    private func unsupported(_ what: String, since first: Int) -> GraftError {
        cannot("\(what) needs opset \(first) or later")
    }
}

extension ModuleScopes {
    /// The node metadata that carries `scope` through an ONNX file (read back by `scope(...)`).
    static func metadata(_ scope: ModuleScope) -> [(String, String)] {
        var out = [(pathKey, scope.path)]
        if !scope.classNames.isEmpty { out.append((classesKey, pythonList(scope.classNames))) }
        return out
    }

    /// `repr` of a Python list of strings: `['a', "it's"]`, the inverse of `pythonStrings`.
    static func pythonList(_ strings: [String]) -> String {
        let items = strings.map { s -> String in
            // Python quotes with ' unless the string holds a ' and no ".
            let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
            var out = String(quote)
            for c in s {
                if c == "\\" || c == quote { out.append("\\") }
                out.append(c)
            }
            out.append(quote)
            return out
        }
        return "[" + items.joined(separator: ", ") + "]"
    }
}
