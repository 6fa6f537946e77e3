import COnnxProto
import Foundation
import GraftCore

#if !_endian(little)
#error("raw_data is little-endian; Graft writes tensor bytes as they lie in memory")
#endif

/// A model ready to be packed: everything the protobuf holds, in Swift values.
struct ExportedModel {
    var irVersion: Int
    /// `(domain, version)`, the default domain first.
    var opsets: [(String, Int)]
    var graphName: String
    var properties: [(String, String)]
    var inputs: [ValueInfo]
    var outputs: [ValueInfo]
    var initializers: [Initializer]
    var nodes: [ExportedNode]

    struct Initializer {
        var name: String
        var tensor: Tensor
        /// Where the bytes lie in the external data file; nil for inline `raw_data`.
        var external: (location: String, offset: Int)?
    }
}

extension ExportedModel {
    /// The serialized `ModelProto`, built as protobuf-c structs whose memory lives only until packed.
    func pack() -> Data {
        ProtoArena.with { arena in
            let model = arena.model(self)
            let size = onnx__model_proto__get_packed_size(model)
            var data = Data(count: size)
            let written = data.withUnsafeMutableBytes { onnx__model_proto__pack(model, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
            precondition(written == size, "protobuf-c packed \(written) of \(size) bytes")
            return data
        }
    }
}

/// Owns the C memory of one protobuf-c message tree (structs, strings, arrays, tensor bytes),
/// freed all at once when the arena is released.
final class ProtoArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    private init() {}

    /// Runs `body` with a fresh arena; nothing allocated in it outlives the call.
    static func with<R>(_ body: (ProtoArena) throws -> R) rethrows -> R {
        let arena = ProtoArena()
        return try withExtendedLifetime(arena) { try body(arena) }
    }

    deinit {
        for block in blocks { block.deallocate() }
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(MemoryLayout<T>.stride * count, 1),
                                                   alignment: max(MemoryLayout<T>.alignment, 16))
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }

    /// A message struct set to its defaults by protobuf-c's `init` function.
    private func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let p = allocate(T.self, count: 1)
        initialize(p)
        return p
    }

    private func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(s.utf8CString)
        let p = allocate(CChar.self, count: utf8.count)
        p.initialize(from: utf8, count: utf8.count)
        return p
    }

    /// A repeated field: its count and a C array (nil when empty).
    private func array<T>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !values.isEmpty else { return (0, nil) }
        let p = allocate(T.self, count: values.count)
        p.initialize(from: values, count: values.count)
        return (values.count, p)
    }

    private func bytes(_ source: UnsafeRawBufferPointer) -> ProtobufCBinaryData {
        let p = allocate(UInt8.self, count: source.count)
        if source.count > 0 { UnsafeMutableRawPointer(p).copyMemory(from: source.baseAddress!, byteCount: source.count) }
        return ProtobufCBinaryData(len: source.count, data: p)
    }

    private func bytes(_ s: String) -> ProtobufCBinaryData {
        Array(s.utf8).withUnsafeBytes { bytes($0) }
    }

    // MARK: - Messages

    func model(_ m: ExportedModel) -> UnsafeMutablePointer<Onnx__ModelProto> {
        let p: UnsafeMutablePointer<Onnx__ModelProto> = message(onnx__model_proto__init)
        p.pointee.has_ir_version = 1
        p.pointee.ir_version = Int64(m.irVersion)
        p.pointee.producer_name = string("graft")
        (p.pointee.n_opset_import, p.pointee.opset_import) = array(m.opsets.map { domain, version in
            let o: UnsafeMutablePointer<Onnx__OperatorSetIdProto> = message(onnx__operator_set_id_proto__init)
            o.pointee.domain = string(domain)
            o.pointee.has_version = 1
            o.pointee.version = Int64(version)
            return Optional(o)
        })
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = entries(m.properties)
        p.pointee.graph = graph(m)
        return p
    }

    private func graph(_ m: ExportedModel) -> UnsafeMutablePointer<Onnx__GraphProto> {
        let g: UnsafeMutablePointer<Onnx__GraphProto> = message(onnx__graph_proto__init)
        g.pointee.name = string(m.graphName)
        (g.pointee.n_node, g.pointee.node) = array(m.nodes.map { Optional(node($0)) })
        (g.pointee.n_initializer, g.pointee.initializer) = array(m.initializers.map { Optional(tensor($0)) })
        var inputs = m.inputs
        // Before IR version 4 every initializer had to be a graph input too.
        if m.irVersion < 4 {
            inputs += m.initializers.map { ValueInfo(name: $0.name, dtype: $0.tensor.dtype, shape: Shape($0.tensor.shape)) }
        }
        (g.pointee.n_input, g.pointee.input) = array(inputs.map { Optional(valueInfo($0)) })
        (g.pointee.n_output, g.pointee.output) = array(m.outputs.map { Optional(valueInfo($0)) })
        return g
    }

    private func node(_ n: ExportedNode) -> UnsafeMutablePointer<Onnx__NodeProto> {
        let p: UnsafeMutablePointer<Onnx__NodeProto> = message(onnx__node_proto__init)
        p.pointee.name = string(n.name)
        p.pointee.op_type = string(n.opType)
        (p.pointee.n_input, p.pointee.input) = array(n.inputs.map { Optional(string($0)) })
        (p.pointee.n_output, p.pointee.output) = array(n.outputs.map { Optional(string($0)) })
        (p.pointee.n_attribute, p.pointee.attribute) = array(n.attributes.map { Optional(attribute($0.0, $0.1)) })
        (p.pointee.n_metadata_props, p.pointee.metadata_props) = entries(n.metadata)
        return p
    }

    private func attribute(_ name: String, _ value: AttributeValue) -> UnsafeMutablePointer<Onnx__AttributeProto> {
        let a: UnsafeMutablePointer<Onnx__AttributeProto> = message(onnx__attribute_proto__init)
        a.pointee.name = string(name)
        a.pointee.has_type = 1
        switch value {
        case .int(let v):
            a.pointee.type = ONNX__ATTRIBUTE_TYPE__INT
            a.pointee.has_i = 1
            a.pointee.i = Int64(v)
        case .float(let v):
            a.pointee.type = ONNX__ATTRIBUTE_TYPE__FLOAT
            a.pointee.has_f = 1
            a.pointee.f = v
        case .string(let v):
            a.pointee.type = ONNX__ATTRIBUTE_TYPE__STRING
            a.pointee.has_s = 1
            a.pointee.s = bytes(v)
        case .ints(let v):
            a.pointee.type = ONNX__ATTRIBUTE_TYPE__INTS
            (a.pointee.n_ints, a.pointee.ints) = array(v.map { Int64($0) })
        case .floats(let v):
            a.pointee.type = ONNX__ATTRIBUTE_TYPE__FLOATS
            (a.pointee.n_floats, a.pointee.floats) = array(v)
        case .tensor(let t):
            a.pointee.type = ONNX__ATTRIBUTE_TYPE__TENSOR
            a.pointee.t = tensor(ExportedModel.Initializer(name: "", tensor: t, external: nil))
        }
        return a
    }

    private func tensor(_ i: ExportedModel.Initializer) -> UnsafeMutablePointer<Onnx__TensorProto> {
        let p: UnsafeMutablePointer<Onnx__TensorProto> = message(onnx__tensor_proto__init)
        if !i.name.isEmpty { p.pointee.name = string(i.name) }
        p.pointee.has_data_type = 1
        p.pointee.data_type = i.tensor.dtype.rawValue
        (p.pointee.n_dims, p.pointee.dims) = array(i.tensor.shape.map { Int64($0) })
        if let (location, offset) = i.external {
            p.pointee.has_data_location = 1
            p.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
            (p.pointee.n_external_data, p.pointee.external_data) = entries([
                ("location", location), ("offset", String(offset)), ("length", String(i.tensor.byteCount)),
            ])
        } else {
            p.pointee.has_raw_data = 1
            p.pointee.raw_data = i.tensor.withUnsafeBytes { bytes($0) }
        }
        return p
    }

    private func valueInfo(_ v: ValueInfo) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let shape: UnsafeMutablePointer<Onnx__TensorShapeProto> = message(onnx__tensor_shape_proto__init)
        (shape.pointee.n_dim, shape.pointee.dim) = array(v.shape.dims.map { d in
            let p: UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension> = message(onnx__tensor_shape_proto__dimension__init)
            switch d {
            case .value(let size):
                p.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                p.pointee.dim_value = Int64(size)
            case .symbol(let name):
                p.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                p.pointee.dim_param = string(name)
            }
            return Optional(p)
        })
        let tensorType: UnsafeMutablePointer<Onnx__TypeProto__Tensor> = message(onnx__type_proto__tensor__init)
        tensorType.pointee.has_elem_type = 1
        tensorType.pointee.elem_type = v.dtype.rawValue
        tensorType.pointee.shape = shape
        let type: UnsafeMutablePointer<Onnx__TypeProto> = message(onnx__type_proto__init)
        type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensorType
        let p: UnsafeMutablePointer<Onnx__ValueInfoProto> = message(onnx__value_info_proto__init)
        p.pointee.name = string(v.name)
        p.pointee.type = type
        return p
    }

    private func entries(_ pairs: [(String, String)]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?) {
        array(pairs.map { key, value in
            let e: UnsafeMutablePointer<Onnx__StringStringEntryProto> = message(onnx__string_string_entry_proto__init)
            e.pointee.key = string(key)
            e.pointee.value = string(value)
            return Optional(e)
        })
    }
}
