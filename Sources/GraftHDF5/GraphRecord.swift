import Foundation
import GraftCore

/// The graph as Graft records it in the `graft_graph` file attribute (JSON): everything but the
/// constants' data, which are the file's datasets. Floats are written as the decimal of their
/// exact double value, so they read back bit for bit. See `schemas/hdf5-layout.md`.
struct GraphRecord: Codable {
    /// The value of the `graft_format_version` attribute this code writes and reads.
    static let formatVersion: Int64 = 1

    struct Metadata: Codable {
        var producerName: String
        var producerVersion: String
        var opset: Int
        var irVersion: Int
        var otherOpsets: [String: Int]
        var properties: [String: String]
    }

    /// A dimension: a size or a symbol.
    enum Dimension: Codable {
        case value(Int)
        case symbol(String)

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let v = try? container.decode(Int.self) { self = .value(v) } else { self = .symbol(try container.decode(String.self)) }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .value(let v): try container.encode(v)
            case .symbol(let s): try container.encode(s)
            }
        }
    }

    struct Value: Codable {
        var name: String
        var dtype: String
        var shape: [Dimension]
    }

    struct Constant: Codable {
        var name: String
        /// The dataset's path from the root: the name itself, or `graft_constants/N` for a name
        /// HDF5 cannot hold at the root.
        var dataset: String
        var dtype: String
        var shape: [Int]
    }

    struct Scope: Codable {
        var path: String
        var classes: [String]
    }

    struct Node: Codable {
        var name: String
        var op: String
        var attributes: Attributes?
        var inputs: [String]
        var outputs: [String]
        var scope: Scope?
    }

    /// A tensor held in an attribute (ConstantOfShape's value).
    struct TensorValue: Codable, Equatable {
        var dtype: String
        var shape: [Int]
        /// The little-endian bytes, base64.
        var data: String
    }

    /// The union of every op's attributes; each op sets the ones it has.
    struct Attributes: Codable, Equatable {
        var kernel: [Int]?
        var strides: [Int]?
        var pads: [Int]?
        var dilations: [Int]?
        var autoPad: String?
        var ceilMode: Bool?
        var group: Int?
        var epsilon: Double?
        var momentum: Double?
        var alpha: Double?
        var beta: Double?
        var transA: Bool?
        var transB: Bool?
        var axis: Int?
        var axes: [Int]?
        var keepDims: Bool?
        var noopWithEmptyAxes: Bool?
        var countIncludePad: Bool?
        var allowZero: Bool?
        var ratio: Double?
        var value: TensorValue?
        var start: Int?
        var end: Int?
        var perm: [Int]?
        var coerce2D: Bool?
    }

    var name: String
    var metadata: Metadata
    var inputs: [Value]
    var outputs: [Value]
    var constants: [Constant]
    var nodes: [Node]
}

// MARK: - Graph to record

extension GraphRecord {
    /// The record of `graph`; `dataset` gives the dataset path each constant is written to.
    init(_ graph: Graph, dataset: (String) -> String) {
        let m = graph.metadata
        name = graph.name
        metadata = Metadata(producerName: m.producerName, producerVersion: m.producerVersion, opset: m.opset,
                            irVersion: m.irVersion, otherOpsets: m.otherOpsets, properties: m.properties)
        inputs = graph.inputs.map(Value.init)
        outputs = graph.outputs.map(Value.init)
        constants = graph.constantOrder.map { name in
            let t = graph.constants[name]!
            return Constant(name: name, dataset: dataset(name), dtype: t.dtype.description, shape: t.shape)
        }
        nodes = graph.nodes.map { node in
            let attributes = Attributes(node.op)
            return Node(name: node.name, op: node.op.name, attributes: attributes == Attributes() ? nil : attributes,
                        inputs: node.inputs, outputs: node.outputs,
                        scope: node.scope.map { Scope(path: $0.path, classes: $0.classNames) })
        }
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    static func decode(json: String) throws -> GraphRecord {
        do {
            return try JSONDecoder().decode(GraphRecord.self, from: Data(json.utf8))
        } catch {
            throw GraftError(.badInput, "attribute 'graft_graph' is not a graph record Graft can read: \(Self.reason(error))")
        }
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "'\(key.stringValue)' is missing at \(path(context))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong value at \(path(context))"
        case DecodingError.dataCorrupted(let context):
            return "\(context.debugDescription) at \(path(context))"
        default:
            return "\(error)"
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        let p = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return p.isEmpty ? "the top" : p
    }
}

extension GraphRecord.Value {
    init(_ v: ValueInfo) {
        name = v.name
        dtype = v.dtype.description
        shape = v.shape.dims.map { d in
            switch d {
            case .value(let n): return .value(n)
            case .symbol(let s): return .symbol(s)
            }
        }
    }
}

extension GraphRecord.TensorValue {
    init(_ t: Tensor) {
        dtype = t.dtype.description
        shape = t.shape
        data = t.withUnsafeBytes { Data($0).base64EncodedString() }
    }
}

extension GraphRecord.Attributes {
    /// The attributes of `op`, each float as its exact double.
    init(_ op: Op) {
        self.init()
        switch op {
        case .conv(let a):
            set(a.window)
            group = a.group
        case .batchNorm(let e, let m):
            epsilon = Double(e)
            momentum = Double(m)
        case .leakyRelu(let a):
            alpha = Double(a)
        case .maxPool(let w):
            set(w)
        case .averagePool(let w, let include):
            set(w)
            countIncludePad = include
        case .reduceMean(let a, let keep, let noop):
            axes = a
            keepDims = keep
            noopWithEmptyAxes = noop
        case .flatten(let a), .gather(let a), .concat(let a), .quantizeLinear(let a), .dequantizeLinear(let a):
            axis = a
        case .reshape(let allow):
            allowZero = allow
        case .gemm(let a):
            alpha = Double(a.alpha)
            beta = Double(a.beta)
            transA = a.transA
            transB = a.transB
        case .dropout(let r):
            ratio = Double(r)
        case .constantOfShape(let v):
            value = GraphRecord.TensorValue(v)
        case .shape(let s, let e):
            start = s
            end = e
        case .unsqueeze(let a), .squeeze(let a):
            axes = a
        case .transpose(let p):
            perm = p
        case .softmax(let a, let c), .logSoftmax(let a, let c):
            axis = a
            coerce2D = c
        case .relu, .sigmoid, .tanh, .globalAveragePool, .globalMaxPool, .add, .sub, .mul, .div, .sum,
             .neg, .exp, .sqrt, .matMul, .identity, .slice, .pad:
            break
        }
    }

    private mutating func set(_ w: Window) {
        kernel = w.kernel
        strides = w.strides
        pads = w.pads
        dilations = w.dilations
        autoPad = w.autoPad.rawValue
        ceilMode = w.ceilMode
    }
}

// MARK: - Record to graph

extension GraphRecord {
    /// The graph, with each constant's tensor from `tensor`.
    func graph(tensor: (Constant, DType) throws -> Tensor) throws -> Graph {
        var graph = Graph(name: name)
        graph.metadata = ModelMetadata(producerName: metadata.producerName, producerVersion: metadata.producerVersion,
                                       opset: metadata.opset, irVersion: metadata.irVersion,
                                       otherOpsets: metadata.otherOpsets, properties: metadata.properties)
        graph.inputs = try inputs.map { try $0.valueInfo() }
        graph.outputs = try outputs.map { try $0.valueInfo() }
        for values in [graph.inputs, graph.outputs] where Set(values.map(\.name)).count < values.count {
            throw GraftError(.badInput, "attribute 'graft_graph' names a graph input or output twice")
        }
        for c in constants {
            guard graph.constants[c.name] == nil else {
                throw GraftError(.badInput, "attribute 'graft_graph' lists the constant '\(c.name)' twice")
            }
            graph.setConstant(c.name, try tensor(c, try Self.dtype(c.dtype, of: "constant '\(c.name)'")))
        }
        graph.nodes = try nodes.map { n in
            let op: Op
            do {
                op = try (n.attributes ?? Attributes()).op(n.op)
            } catch let error as GraftError {
                throw error.atNode(n.name, op: n.op)
            }
            return GraftCore.Node(name: n.name, op: op, inputs: n.inputs, outputs: n.outputs,
                                  scope: n.scope.map { ModuleScope(path: $0.path, classNames: $0.classes) })
        }
        return graph
    }

    static func dtype(_ name: String, of what: String) throws -> DType {
        guard let t = DType.allCases.first(where: { $0.description == name }) else {
            throw GraftError(.badInput, "attribute 'graft_graph': \(what) has the unknown element type '\(name)'")
        }
        return t
    }
}

extension GraphRecord.Value {
    func valueInfo() throws -> ValueInfo {
        let dims = try shape.map { d -> Dim in
            switch d {
            case .value(let n):
                guard n >= 0 else { throw GraftError(.badInput, "attribute 'graft_graph': value '\(name)' has a negative dimension \(n)") }
                return .value(n)
            case .symbol(let s): return .symbol(s)
            }
        }
        return ValueInfo(name: name, dtype: try GraphRecord.dtype(dtype, of: "value '\(name)'"), shape: Shape(dims))
    }
}

extension GraphRecord.TensorValue {
    func tensor() throws -> Tensor {
        let type = try GraphRecord.dtype(dtype, of: "an attribute tensor")
        let count = try Reference.checkedElementCount(shape, type, "an attribute tensor")
        guard let bytes = Data(base64Encoded: data), bytes.count == count * type.byteSize else {
            throw GraftError(.badInput, "an attribute tensor's data does not fit \(dtype) \(shape)")
        }
        var t = Tensor(zeros: shape, dtype: type)
        t.withUnsafeMutableBytes { out in bytes.withUnsafeBytes { out.copyMemory(from: $0) } }
        return t
    }
}

extension GraphRecord.Attributes {
    /// The op of ONNX type `type` with these attributes.
    ///
    /// - Throws: `GraftError` for an unknown op or a missing attribute.
    func op(_ type: String) throws -> Op {
        func need<T>(_ value: T?, _ name: String) throws -> T {
            guard let value else { throw GraftError(.badInput, "attribute '\(name)' is missing from the recorded graph") }
            return value
        }
        func window() throws -> Window {
            let autoPadName = try need(autoPad, "autoPad")
            guard let mode = AutoPad(rawValue: autoPadName) else {
                throw GraftError(.badInput, "autoPad '\(autoPadName)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
            }
            return Window(kernel: try need(kernel, "kernel"), strides: try need(strides, "strides"), pads: try need(pads, "pads"),
                          dilations: try need(dilations, "dilations"), autoPad: mode, ceilMode: try need(ceilMode, "ceilMode"))
        }
        func float(_ value: Double?, _ name: String) throws -> Float { Float(try need(value, name)) }

        switch type {
        case "Conv":
            return .conv(ConvAttributes(window: try window(), group: try need(group, "group")))
        case "BatchNormalization": return .batchNorm(epsilon: try float(epsilon, "epsilon"), momentum: try float(momentum, "momentum"))
        case "Relu": return .relu
        case "Sigmoid": return .sigmoid
        case "Tanh": return .tanh
        case "LeakyRelu": return .leakyRelu(alpha: try float(alpha, "alpha"))
        case "MaxPool": return .maxPool(try window())
        case "AveragePool": return .averagePool(try window(), countIncludePad: try need(countIncludePad, "countIncludePad"))
        case "GlobalAveragePool": return .globalAveragePool
        case "GlobalMaxPool": return .globalMaxPool
        case "ReduceMean":
            return .reduceMean(axes: axes, keepDims: try need(keepDims, "keepDims"), noopWithEmptyAxes: try need(noopWithEmptyAxes, "noopWithEmptyAxes"))
        case "Add": return .add
        case "Sub": return .sub
        case "Mul": return .mul
        case "Div": return .div
        case "Sum": return .sum
        case "Neg": return .neg
        case "Exp": return .exp
        case "Sqrt": return .sqrt
        case "Flatten": return .flatten(axis: try need(axis, "axis"))
        case "Reshape": return .reshape(allowZero: try need(allowZero, "allowZero"))
        case "Gemm":
            return .gemm(GemmAttributes(alpha: try float(alpha, "alpha"), beta: try float(beta, "beta"),
                                        transA: try need(transA, "transA"), transB: try need(transB, "transB")))
        case "MatMul": return .matMul
        case "Identity": return .identity
        case "Dropout": return .dropout(ratio: try float(ratio, "ratio"))
        case "ConstantOfShape":
            let v = try need(value, "value").tensor()
            guard v.elementCount == 1 else { throw GraftError(.badInput, "value must hold one element, it holds \(v.elementCount)") }
            return .constantOfShape(value: v)
        case "Shape": return .shape(start: try need(start, "start"), end: end)
        case "Gather": return .gather(axis: try need(axis, "axis"))
        case "Unsqueeze": return .unsqueeze(axes: axes)
        case "Squeeze": return .squeeze(axes: axes)
        case "Concat": return .concat(axis: try need(axis, "axis"))
        case "Transpose": return .transpose(perm: perm)
        case "Softmax": return .softmax(axis: try need(axis, "axis"), coerce2D: try need(coerce2D, "coerce2D"))
        case "LogSoftmax": return .logSoftmax(axis: try need(axis, "axis"), coerce2D: try need(coerce2D, "coerce2D"))
        case "Slice": return .slice
        case "Pad": return .pad
        case "QuantizeLinear": return .quantizeLinear(axis: try need(axis, "axis"))
        case "DequantizeLinear": return .dequantizeLinear(axis: try need(axis, "axis"))
        default: throw GraftError(.badInput, "op \(type) is not one Graft knows (a newer Graft wrote this file?)")
        }
    }
}
