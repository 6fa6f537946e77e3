import COnnxProto
import GraftCore

/// Typed access to a node's attributes with explicit defaults. It remembers which attributes
/// were read, so the importer can refuse those no translator understood.
struct AttributeReader {
    private var attributes: [String: UnsafeMutablePointer<Onnx__AttributeProto>] = [:]
    private(set) var consumed: Set<String> = []
    let decoder: TensorDecoder

    init(node: UnsafeMutablePointer<Onnx__NodeProto>, decoder: TensorDecoder) {
        self.decoder = decoder
        for a in repeated(node.pointee.n_attribute, node.pointee.attribute) {
            guard let a else { continue }
            attributes[GraftONNX.string(a.pointee.name)] = a
        }
    }

    /// Attribute names present on the node that no translator read.
    var unconsumed: [String] { attributes.keys.filter { !consumed.contains($0) }.sorted() }

    func has(_ name: String) -> Bool { attributes[name] != nil }

    private mutating func take(_ name: String, _ type: Onnx__AttributeType) throws -> UnsafeMutablePointer<Onnx__AttributeProto>? {
        guard let a = attributes[name] else { return nil }
        consumed.insert(name)
        // Files from old exporters leave `type` unset; accept them when the payload is there.
        if a.pointee.has_type != 0 && a.pointee.type != type && a.pointee.type != ONNX__ATTRIBUTE_TYPE__UNDEFINED {
            throw GraftError(.badInput, "attribute '\(name)' has type \(a.pointee.type.rawValue), expected \(type.rawValue)")
        }
        return a
    }

    mutating func int(_ name: String, default value: Int) throws -> Int {
        try take(name, ONNX__ATTRIBUTE_TYPE__INT).map { Int($0.pointee.i) } ?? value
    }

    mutating func float(_ name: String, default value: Float) throws -> Float {
        try take(name, ONNX__ATTRIBUTE_TYPE__FLOAT).map { $0.pointee.f } ?? value
    }

    mutating func string(_ name: String, default value: String) throws -> String {
        try take(name, ONNX__ATTRIBUTE_TYPE__STRING).map { GraftONNX.string($0.pointee.s) } ?? value
    }

    mutating func ints(_ name: String) throws -> [Int]? {
        try take(name, ONNX__ATTRIBUTE_TYPE__INTS).map { a in repeated(a.pointee.n_ints, a.pointee.ints).map { Int($0) } }
    }

    mutating func floats(_ name: String) throws -> [Float]? {
        try take(name, ONNX__ATTRIBUTE_TYPE__FLOATS).map { a in Array(repeated(a.pointee.n_floats, a.pointee.floats)) }
    }

    mutating func tensor(_ name: String) throws -> Tensor? {
        guard let a = try take(name, ONNX__ATTRIBUTE_TYPE__TENSOR) else { return nil }
        guard let t = a.pointee.t else {
            throw GraftError(.badInput, "attribute '\(name)' holds no tensor")
        }
        return try decoder.decode(t)
    }

    /// Reads an attribute that must have one value, or be absent, to be supported.
    mutating func require(_ name: String, equals expected: Int, default value: Int, _ why: String) throws {
        let v = try int(name, default: value)
        if v != expected {
            throw GraftError(.badInput, "attribute \(name)=\(v) is not supported (\(why))")
        }
    }
}
