import GraftCore

/// Turns each inference BatchNormalization into one per-channel scale and shift:
/// `y = x · s + t` with `s = γ / √(σ² + ε)` and `t = β − μ · s`, as a `Mul` and an `Add`.
public struct BatchNormToScaleShift: Pass {
    public let name = "batch-norm folded"
    public init() {}

    public func patch(at index: Int, in context: PassContext) throws -> Patch? {
        let node = context.node(index)
        guard case .batchNorm(let epsilon, _) = node.op, let input = node.input(0),
              let rank = context.facts[input]?.shape.rank, rank >= 2,
              let gamma = context.constant(node, 1), let beta = context.constant(node, 2),
              let mean = context.constant(node, 3), let variance = context.constant(node, 4) else { return nil }
        let c = gamma.elementCount
        guard [beta, mean, variance].allSatisfy({ $0.elementCount == c }),
              [gamma, beta, mean, variance].allSatisfy({ $0.dtype == .float32 }) else { return nil }
        let g = gamma.floats, b = beta.floats, m = mean.floats, v = variance.floats
        var scale = [Float](repeating: 0, count: c), shift = scale
        for i in 0..<c {
            let s = Double(g[i]) / (Double(v[i]) + Double(epsilon)).squareRoot()
            scale[i] = Float(s)
            shift[i] = Float(Double(b[i]) - Double(m[i]) * s)
        }
        let shape = [c] + [Int](repeating: 1, count: rank - 2)
        let scaleName = "\(node.name)::scale", shiftName = "\(node.name)::shift", scaled = "\(node.name)::scaled"
        let mul = Node(name: "\(node.name)/scale", op: .mul, inputs: [input, scaleName], outputs: [scaled], scope: node.scope)
        let add = Node(name: "\(node.name)/shift", op: .add, inputs: [scaled, shiftName], outputs: [node.outputs[0]], scope: node.scope)
        return Patch(summary: "batch norm to scale and shift", removing: [node.name], inserting: [mul, add],
                     constants: [scaleName: Tensor(shape: shape, floats: scale), shiftName: Tensor(shape: shape, floats: shift)])
    }
}

/// Folds a per-channel constant `Mul` or `Add` that follows a Conv (and is its only reader) into
/// the Conv's weights and bias: `(W ∗ x + b) · s = (W · s) ∗ x + b · s`, `(W ∗ x + b) + t = W ∗ x + (b + t)`.
public struct FoldScaleShiftIntoConv: Pass {
    public let name = "scale and shift folded into conv"
    public init() {}

    public func patch(at index: Int, in context: PassContext) throws -> Patch? {
        let node = context.node(index)
        let isMul: Bool
        switch node.op {
        case .mul: isMul = true
        case .add: isMul = false
        default: return nil
        }
        // Either operand order: conv output and a constant.
        for (valueIndex, constantIndex) in [(0, 1), (1, 0)] {
            guard let value = node.input(valueIndex), let constant = context.constant(node, constantIndex),
                  let p = context.producer[value], context.hasSingleUse(value) else { continue }
            let conv = context.node(p)
            guard case .conv = conv.op, let weight = context.constant(conv, 1), weight.dtype == .float32, weight.rank == 4,
                  constant.dtype == .float32 else { continue }
            let cout = weight.shape[0]
            guard let perChannel = Self.perChannel(constant, channels: cout) else { continue }
            let bias = conv.input(2).map { _ in context.constant(conv, 2) } ?? nil
            if conv.input(2) != nil && bias == nil { continue }
            let newWeight = isMul ? Self.scaled(weight, perChannel) : weight
            var newBias = bias?.floats ?? [Float](repeating: 0, count: cout)
            if isMul {
                for o in 0..<cout { newBias[o] *= perChannel[o] }
            } else {
                for o in 0..<cout { newBias[o] += perChannel[o] }
            }
            var patch = Patch(summary: "fold \(node.op.name) into \(conv.name)", removing: [conv.name, node.name])
            var folded = conv
            folded.outputs = [node.outputs[0]]
            let weightName = uniqueName(conv.inputs[1], private: context.consumers[conv.inputs[1]]?.count == 1, conv: conv, suffix: "weight")
            let biasName = conv.input(2).map { uniqueName($0, private: context.consumers[$0]?.count == 1, conv: conv, suffix: "bias") }
                ?? "\(conv.name)::bias"
            patch.constants[weightName] = newWeight
            patch.constants[biasName] = Tensor(shape: [cout], floats: newBias)
            folded.inputs = [conv.inputs[0], weightName, biasName]
            patch.inserting = [folded]
            return patch
        }
        return nil
    }

    /// A float32 weight `[Cout, ...]` with output channel o times `scale[o]`, written into new
    /// storage in one pass (no copy of the old values first).
    static func scaled(_ weight: Tensor, _ scale: [Float]) -> Tensor {
        let cout = scale.count, inner = weight.elementCount / cout
        var out = Tensor(uninitialized: weight.shape)
        weight.withUnsafeBufferPointer(as: Float.self) { w in
            out.withUnsafeMutableBufferPointer(as: Float.self) { y in
                for o in 0..<cout {
                    let s = scale[o]
                    for k in o * inner..<(o + 1) * inner { y[k] = w[k] * s }
                }
            }
        }
        return out
    }

    /// The values of a constant holding one value per channel of a `[N, C, H, W]` tensor
    /// (`[C, 1, 1]`, `[1, C, 1, 1]`, or a scalar), or nil.
    static func perChannel(_ t: Tensor, channels: Int) -> [Float]? {
        if t.elementCount == 1 { return [Float](repeating: t.floats[0], count: channels) }
        let shape = t.shape
        let trailing = shape.count >= 3 ? Array(shape.suffix(2)) : []
        guard t.elementCount == channels, shape.count >= 3, shape.count <= 4, trailing == [1, 1],
              shape.count == 3 || shape[0] == 1 else { return nil }
        return t.floats
    }

    /// The weight's own name when only this conv reads it (rewritten in place), else a new one.
    private func uniqueName(_ name: String, private isPrivate: Bool, conv: Node, suffix: String) -> String {
        isPrivate ? name : "\(conv.name)::\(suffix)"
    }
}
