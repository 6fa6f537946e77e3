import GraftCore

/// Evaluates once every node whose inputs are all constants, and every node whose outputs shape
/// inference already knows (shape arithmetic: `Shape → Gather → Unsqueeze → Concat`), replacing
/// it by constants.
public struct FoldConstants: Pass {
    public let name = "constants folded"
    /// Results larger than this many elements stay computed (a ConstantOfShape of activations).
    public var elementLimit = 1 << 24
    /// Leave a `DequantizeLinear` of int8 constants that only convolutions and matrix products
    /// read, as their weights, for an int8 plan to take the integers as they are (folded, they
    /// would be four times the bytes, and their grid would have to be found again).
    public var keepsWeightDequantization: Bool

    public init(keepsWeightDequantization: Bool = false) {
        self.keepsWeightDequantization = keepsWeightDequantization
    }

    /// Whether `node` dequantizes int8 weights that only convolutions and matrix products read.
    func dequantizesWeights(_ node: Node, in context: PassContext) -> Bool {
        guard case .dequantizeLinear = node.op, context.constant(node, 0)?.dtype == .int8, let output = node.outputs.first,
              !context.outputNames.contains(output), let readers = context.consumers[output], !readers.isEmpty else { return false }
        return readers.allSatisfy { i in
            let reader = context.node(i)
            switch reader.op {
            case .conv, .gemm: return reader.inputs.firstIndex(of: output) == 1 && reader.inputs.lastIndex(of: output) == 1
            default: return false
            }
        }
    }

    public func patch(at index: Int, in context: PassContext) throws -> Patch? {
        let node = context.node(index)
        let outputs = node.outputs.filter { !$0.isEmpty }
        guard !outputs.isEmpty else { return nil }
        let inputs = node.inputs.filter { !$0.isEmpty }
        if keepsWeightDequantization && dequantizesWeights(node, in: context) { return nil }
        if inputs.allSatisfy({ context.constants[$0] != nil }) {
            let values: [Tensor]
            do {
                values = try node.op.evaluate(node.inputs.map { $0.isEmpty ? nil : context.constants[$0] })
            } catch {
                return nil  // Leave a node that cannot be evaluated for the runtime to report.
            }
            guard values.allSatisfy({ $0.elementCount <= elementLimit }) else { return nil }
            var constants: [String: Tensor] = [:]
            for (name, value) in zip(node.outputs, values) where !name.isEmpty { constants[name] = value }
            return Patch(summary: "fold \(node.op.name)", removing: [node.name], constants: constants)
        }
        // Shape arithmetic that inference has already worked out to plain numbers.
        var constants: [String: Tensor] = [:]
        for name in outputs {
            guard let fact = context.facts[name], fact.dtype == .int64, let sizes = fact.shape.concrete,
                  sizes.count <= 1, let elements = fact.elements else { return nil }
            var values: [Int64] = []
            for e in elements {
                guard let v = e.value else { return nil }
                values.append(Int64(v))
            }
            guard values.count == sizes.elementCount else { return nil }
            constants[name] = Tensor(shape: sizes, int64s: values)
        }
        return Patch(summary: "fold \(node.op.name) of known shape", removing: [node.name], constants: constants)
    }
}
