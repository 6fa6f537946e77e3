import COnnxProto
import Foundation
import GraftCore

/// Reads ONNX models (inline weights or external data beside the file) into a `Graph`.
public enum ONNXImporter {
    /// The newest default-domain opset whose semantics Graft's translators follow.
    public static let newestOpset = 23

    /// Imports the model at `path`, mapping external data files that lie beside it.
    ///
    /// - Throws: `GraftError` naming the file, and the node, op, opset or tensor at fault.
    public static func importModel(at path: String) throws -> Graph {
        do {
            let file = try MappedFile(path: path)
            let directory = (path as NSString).deletingLastPathComponent
            return try importModel(bytes: UnsafeRawBufferPointer(start: file.bytes, count: file.size),
                                   directory: directory.isEmpty ? "." : directory)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    /// Imports a model from serialized bytes; external data paths are relative to `directory`.
    public static func importModel(bytes: UnsafeRawBufferPointer, directory: String?) throws -> Graph {
        guard bytes.count > 0 else {
            throw GraftError(.badInput, "the file is empty, not an ONNX model")
        }
        try WireNesting.check(bytes)
        guard let model = onnx__model_proto__unpack(nil, bytes.count, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)) else {
            throw GraftError(.badInput, "not an ONNX model: the protobuf does not parse (truncated or another format)")
        }
        defer { onnx__model_proto__free_unpacked(model, nil) }
        var importer = Importer(decoder: TensorDecoder(directory: directory))
        return try importer.model(model)
    }
}

/// A look at the protobuf wire format before protobuf-c parses it. protobuf-c's parser recurses
/// once per nested message, so a graph inside an attribute of a node of a graph, repeated a
/// hundred thousand times (a megabyte), would overflow the stack; this walk follows only that
/// path, without recursion, and refuses nesting deeper than `maximumDepth`. Malformed bytes are
/// left for protobuf-c to refuse.
enum WireNesting {
    /// Messages deep along model → graph → node → attribute → graph → ...: 33 levels of
    /// subgraphs (protobuf's C++ parser stops at 100 messages).
    static let maximumDepth = 100

    private enum Message { case model, graph, node, attribute }

    /// The fields of `message` that hold a message on the recursive path.
    private static func child(of message: Message, field: UInt64) -> Message? {
        switch (message, field) {
        case (.model, 7): return .graph       // ModelProto.graph
        case (.graph, 1): return .node        // GraphProto.node
        case (.node, 5): return .attribute    // NodeProto.attribute
        case (.attribute, 6), (.attribute, 11): return .graph  // AttributeProto.g, .graphs
        default: return nil
        }
    }

    static func check(_ bytes: UnsafeRawBufferPointer) throws {
        var stack: [(end: Int, message: Message)] = [(bytes.count, .model)]
        var i = 0
        func varint(below end: Int) -> UInt64? {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                guard i < end else { return nil }
                let byte = bytes[i]
                i += 1
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte & 0x80 == 0 { return value }
            }
            return nil
        }
        while let top = stack.last {
            if i >= top.end {
                stack.removeLast()
                continue
            }
            guard let key = varint(below: top.end) else { return }
            switch key & 7 {
            case 0: guard varint(below: top.end) != nil else { return }
            case 1: i += 8
            case 5: i += 4
            case 2:
                guard let length = varint(below: top.end), length <= UInt64(top.end - i) else { return }
                if let message = child(of: top.message, field: key >> 3) {
                    guard stack.count < maximumDepth else {
                        throw GraftError(.badInput, "the model nests graphs more than \(maximumDepth) messages deep (a graph in an attribute of a node of a graph ...)")
                    }
                    stack.append((i + Int(length), message))
                } else {
                    i += Int(length)
                }
            default: return
            }
            if i > top.end { return }
        }
    }
}

/// The state of one import.
private struct Importer {
    let decoder: TensorDecoder
    var graph = Graph()
    var opset = 0

    init(decoder: TensorDecoder) {
        self.decoder = decoder
    }

    mutating func model(_ model: UnsafeMutablePointer<Onnx__ModelProto>) throws -> Graph {
        let m = model.pointee
        guard let g = m.graph else { throw GraftError(.badInput, "the model has no graph") }
        var others: [String: Int] = [:]
        var defaultOpset: Int?
        for entry in repeated(m.n_opset_import, m.opset_import) {
            guard let entry else { continue }
            let domain = string(entry.pointee.domain)
            let version = Int(entry.pointee.version)
            if domain.isEmpty || domain == "ai.onnx" { defaultOpset = version } else { others[domain] = version }
        }
        guard let defaultOpset else {
            throw GraftError(.badInput, "the model imports no opset of the default ONNX domain")
        }
        guard defaultOpset >= 1 && defaultOpset <= ONNXImporter.newestOpset else {
            throw GraftError(.badInput, "opset \(defaultOpset) is not supported (Graft reads opsets 1 to \(ONNXImporter.newestOpset))")
        }
        opset = defaultOpset
        var properties: [String: String] = [:]
        for (k, v) in entries(m.n_metadata_props, m.metadata_props) { properties[k] = v }
        graph.metadata = ModelMetadata(producerName: string(m.producer_name), producerVersion: string(m.producer_version),
                                       opset: defaultOpset, irVersion: Int(m.ir_version), otherOpsets: others,
                                       properties: properties)
        graph.name = string(g.pointee.name)
        try body(g.pointee)
        try graph.validate()
        return graph
    }

    mutating func body(_ g: Onnx__GraphProto) throws {
        for t in repeated(g.n_initializer, g.initializer) {
            guard let t else { continue }
            let name = string(t.pointee.name)
            guard !name.isEmpty else { throw GraftError(.badInput, "an initializer has no name") }
            guard graph.constants[name] == nil else {
                throw GraftError(.badInput, "initializer '\(name)' is defined twice", tensor: name)
            }
            graph.setConstant(name, try decoder.decode(t))
        }
        // Before IR version 4, initializers were also listed as graph inputs.
        graph.inputs = try repeated(g.n_input, g.input).compactMap { $0 }.map(valueInfo).filter { graph.constants[$0.name] == nil }
        var nodes: [Node] = []
        var usedNames = Set<String>()
        var namedScopes = Set<Int>()
        for (index, proto) in repeated(g.n_node, g.node).enumerated() {
            guard let proto else { continue }
            if let (node, fromName) = try node(proto, index: index) {
                if fromName { namedScopes.insert(nodes.count) }
                var n = node
                if n.name.isEmpty || usedNames.contains(n.name) {
                    // Names must be unique (passes find nodes by name); a generated one may
                    // already be taken by an earlier node.
                    n.name = "\(n.op.name)_\(index)"
                    while usedNames.contains(n.name) { n.name += "_" }
                }
                usedNames.insert(n.name)
                nodes.append(n)
            }
        }
        ModuleScopes.foldRepeatedCalls(&nodes, at: namedScopes)
        graph.nodes = nodes
        graph.outputs = try repeated(g.n_output, g.output).compactMap { $0 }.map(valueInfo)
    }

    func valueInfo(_ v: UnsafeMutablePointer<Onnx__ValueInfoProto>) throws -> ValueInfo {
        let name = string(v.pointee.name)
        guard let type = v.pointee.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tensorType = type.pointee.tensor_type else {
            throw GraftError(.badInput, "graph input or output '\(name)' is not a tensor", tensor: name)
        }
        guard let dtype = DType(rawValue: tensorType.pointee.elem_type) else {
            throw GraftError(.badInput, "element type \(tensorType.pointee.elem_type) (\(TensorDecoder.typeName(tensorType.pointee.elem_type))) is not supported", tensor: name)
        }
        var dims: [Dim] = []
        if let shape = tensorType.pointee.shape {
            for (i, d) in repeated(shape.pointee.n_dim, shape.pointee.dim).enumerated() {
                guard let d else { continue }
                switch d.pointee.value_case {
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE:
                    guard d.pointee.dim_value >= 0 else {
                        throw GraftError(.badInput, "negative dimension \(d.pointee.dim_value)", tensor: name)
                    }
                    dims.append(.value(Int(d.pointee.dim_value)))
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM:
                    dims.append(.symbol(string(d.pointee.dim_param)))
                default:
                    dims.append(.symbol("\(name)_d\(i)"))
                }
            }
        }
        return ValueInfo(name: name, dtype: dtype, shape: Shape(dims))
    }

    /// Translates one node, and says whether its scope came from its TorchScript name; a
    /// `Constant` becomes a graph constant and yields no node.
    mutating func node(_ proto: UnsafeMutablePointer<Onnx__NodeProto>, index: Int) throws -> (Node, Bool)? {
        let p = proto.pointee
        let name = string(p.name)
        let opType = string(p.op_type)
        let domain = string(p.domain)
        let inputs = repeated(p.n_input, p.input).map { string($0) }
        let outputs = repeated(p.n_output, p.output).map { string($0) }
        let label = name.isEmpty ? "#\(index)" : name
        guard domain.isEmpty || domain == "ai.onnx" else {
            throw GraftError(.badInput, "op \(domain)::\(opType) of domain '\(domain)' is not supported", node: label, op: opType)
        }
        var attributes = AttributeReader(node: proto, decoder: decoder)
        do {
            if opType == "Constant" {
                guard let output = outputs.first else { throw GraftError(.badInput, "Constant without an output") }
                guard graph.constants[output] == nil else {
                    throw GraftError(.badInput, "the output redefines the constant (initializer) of that name", tensor: output)
                }
                graph.setConstant(output, try constant(&attributes))
                try checkConsumed(attributes)
                return nil
            }
            guard let translate = translators[opType] else {
                throw GraftError(.badInput, "op \(opType) is not supported (opset \(opset))")
            }
            let shapes = inputs.map { name in graph.constants[name].map { Shape($0.shape) } ?? graph.inputs.first { $0.name == name }?.shape }
            let constants = graph.constants
            var context = NodeContext(opset: opset, name: label, inputs: inputs, outputCount: outputs.filter { !$0.isEmpty }.count,
                                      attributes: attributes, inputShapes: shapes,
                                      constantInput: { i in i < inputs.count ? constants[inputs[i]] : nil })
            let op = try translate(&context)
            try checkConsumed(context.attributes)
            for (constantName, tensor) in context.newConstants { graph.setConstant(constantName, tensor) }
            var metadata: [String: String] = [:]
            for (k, v) in entries(p.n_metadata_props, p.metadata_props) { metadata[k] = v }
            let weight = context.inputs.count > 1 ? context.inputs[1] : nil
            // A name of slashes alone ("/", "//") names no module path; ModuleScopes reads a
            // TorchScript name as at least one component.
            let scopeName = name.contains { $0 != "/" } ? name : ""
            let scope = ModuleScopes.scope(nodeName: scopeName, metadata: metadata, weightName: weight, op: op)
            return (Node(name: name, op: op, inputs: context.inputs, outputs: outputs, scope: scope),
                    ModuleScopes.scopeIsFromName(scopeName, metadata: metadata))
        } catch let error as GraftError {
            var e = error.atNode(label, op: opType)
            if e.op == opType, !e.message.contains("opset") { e.message += " (opset \(opset))" }
            throw e
        }
    }

    func checkConsumed(_ attributes: AttributeReader) throws {
        if let unknown = attributes.unconsumed.first {
            throw GraftError(.badInput, "attribute '\(unknown)' is not supported")
        }
    }

    /// The tensor of a `Constant` node, from whichever of its value attributes is set.
    func constant(_ a: inout AttributeReader) throws -> Tensor {
        if let t = try a.tensor("value") { return t }
        if a.has("value_float") { return Tensor(shape: [], floats: [try a.float("value_float", default: 0)]) }
        if let v = try a.floats("value_floats") { return Tensor(shape: [v.count], floats: v) }
        if a.has("value_int") { return Tensor(shape: [], int64s: [Int64(try a.int("value_int", default: 0))]) }
        if let v = try a.ints("value_ints") { return Tensor(shape: [v.count], int64s: v.map { Int64($0) }) }
        throw GraftError(.badInput, "Constant has no supported value attribute (value, value_float(s), value_int(s))")
    }
}

extension ONNXImporter {
    /// Reads a serialized `TensorProto` file (as the ONNX test suites store inputs and outputs).
    ///
    /// - Throws: `GraftError` naming the file when it does not parse or its data does not fit.
    public static func readTensor(at path: String) throws -> Tensor {
        do {
            let file = try MappedFile(path: path)
            guard file.size > 0, let proto = onnx__tensor_proto__unpack(nil, file.size, file.bytes.assumingMemoryBound(to: UInt8.self)) else {
                throw GraftError(.badInput, "not a serialized ONNX TensorProto")
            }
            defer { onnx__tensor_proto__free_unpacked(proto, nil) }
            return try TensorDecoder(directory: (path as NSString).deletingLastPathComponent).decode(proto)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }
}
