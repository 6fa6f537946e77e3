/// The plain reference semantics of every op: readable, any shape, obviously right. Constant
/// folding uses it, the interpreter falls back to it, and every fast kernel is tested against it.
extension Op {
    /// Evaluates the op on concrete inputs (nil for an absent optional input).
    ///
    /// - Throws: `GraftError` when the inputs do not fit the op (shape, type, count).
    public func evaluate(_ inputs: [Tensor?]) throws -> [Tensor] {
        func required(_ i: Int) throws -> Tensor {
            guard i < inputs.count, let t = inputs[i] else {
                throw GraftError(.badInput, "input \(i) is missing", op: name)
            }
            return t
        }
        func optional(_ i: Int) -> Tensor? { i < inputs.count ? inputs[i] : nil }

        switch self {
        case .conv(let a):
            return [try Reference.conv(try required(0), weight: try required(1), bias: optional(2), attributes: a)]
        case .batchNorm(let epsilon, _):
            return [try Reference.batchNorm(try required(0), scale: try required(1), bias: try required(2),
                                            mean: try required(3), variance: try required(4), epsilon: epsilon)]
        case .relu: return [try Reference.map(try required(0)) { max($0, 0) }]
        case .sigmoid: return [try Reference.map(try required(0)) { 1 / (1 + Foundation.exp(-$0)) }]
        case .tanh: return [try Reference.map(try required(0)) { Foundation.tanh($0) }]
        case .leakyRelu(let alpha): return [try Reference.map(try required(0)) { $0 >= 0 ? $0 : alpha * $0 }]
        case .neg: return [try Reference.map(try required(0)) { -$0 }]
        case .exp: return [try Reference.map(try required(0)) { Foundation.exp($0) }]
        case .sqrt: return [try Reference.map(try required(0)) { $0.squareRoot() }]
        case .maxPool(let w):
            return [try Reference.pool(try required(0), window: w, kind: .max)]
        case .averagePool(let w, let countIncludePad):
            return [try Reference.pool(try required(0), window: w, kind: .average(countIncludePad: countIncludePad))]
        case .globalAveragePool: return [try Reference.globalPool(try required(0), max: false)]
        case .globalMaxPool: return [try Reference.globalPool(try required(0), max: true)]
        case .reduceMean(let axes, let keepDims, let noop):
            let x = try required(0)
            var list = axes
            if let t = optional(1) { list = try Reference.integers(t, "axes", op: name) }
            if (list ?? []).isEmpty && noop { return [x] }
            return [try Reference.reduceMean(x, axes: list ?? [], keepDims: keepDims)]
        case .add: return [try Reference.broadcast(try required(0), try required(1), .add)]
        case .sub: return [try Reference.broadcast(try required(0), try required(1), .sub)]
        case .mul: return [try Reference.broadcast(try required(0), try required(1), .mul)]
        case .div: return [try Reference.broadcast(try required(0), try required(1), .div)]
        case .sum:
            var acc = try required(0)
            for i in 1..<max(inputs.count, 1) { acc = try Reference.broadcast(acc, try required(i), .add) }
            return [acc]
        case .flatten(let axis): return [try Reference.flatten(try required(0), axis: axis)]
        case .reshape(let allowZero):
            return [try Reference.reshape(try required(0), shape: try required(1), allowZero: allowZero)]
        case .gemm(let a):
            return [try Reference.gemm(try required(0), try required(1), optional(2), attributes: a)]
        case .matMul: return [try Reference.matMul(try required(0), try required(1))]
        case .identity, .dropout: return [try required(0)]
        case .constantOfShape(let value):
            return [try Reference.constantOfShape(try required(0), value: value)]
        case .shape(let start, let end): return [Reference.shape(try required(0), start: start, end: end)]
        case .gather(let axis): return [try Reference.gather(try required(0), indices: try required(1), axis: axis)]
        case .unsqueeze(let axes):
            let list = try axes ?? Reference.integers(try required(1), "axes", op: name)
            return [try Reference.unsqueeze(try required(0), axes: list)]
        case .squeeze(let axes):
            let list = try axes ?? optional(1).map { try Reference.integers($0, "axes", op: name) }
            return [try Reference.squeeze(try required(0), axes: list)]
        case .concat(let axis):
            return [try Reference.concat(try (0..<inputs.count).map(required), axis: axis)]
        case .transpose(let perm): return [try Reference.transpose(try required(0), perm: perm)]
        case .softmax(let axis, let coerce2D):
            return [try Reference.softmax(try required(0), axis: axis, coerce2D: coerce2D, log: false)]
        case .logSoftmax(let axis, let coerce2D):
            return [try Reference.softmax(try required(0), axis: axis, coerce2D: coerce2D, log: true)]
        case .slice:
            return [try Reference.slice(try required(0), starts: try required(1), ends: try required(2),
                                        axes: optional(3), steps: optional(4))]
        case .pad:
            return [try Reference.pad(try required(0), pads: try required(1), value: optional(2))]
        case .quantizeLinear(let axis):
            return [try Reference.quantizeLinear(try required(0), scale: try required(1), zeroPoint: optional(2), axis: axis)]
        case .dequantizeLinear(let axis):
            return [try Reference.dequantizeLinear(try required(0), scale: try required(1), zeroPoint: optional(2), axis: axis)]
        }
    }
}

import Foundation

/// Reference kernels, one family per file.
public enum Reference {
    /// Normalizes a possibly negative axis for a tensor of rank `rank`.
    static func axis(_ axis: Int, rank: Int, op: String) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw GraftError(.badInput, "axis \(axis) is out of range for rank \(rank)", op: op)
        }
        return a
    }

    static func requireFloat(_ t: Tensor, _ op: String) throws {
        guard t.dtype == .float32 else {
            throw GraftError(.badInput, "expects float32 input, got \(t.dtype)", op: op)
        }
    }

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// A copy of an element type's tensor, element by element, through an index map.
    static func gatherElements(_ x: Tensor, shape: [Int], sourceIndex: (Int) -> Int) -> Tensor {
        var out = Tensor(zeros: shape, dtype: x.dtype)
        let size = x.dtype.byteSize
        x.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                for i in 0..<shape.elementCount {
                    (dst.baseAddress! + i * size).copyMemory(from: src.baseAddress! + sourceIndex(i) * size, byteCount: size)
                }
            }
        }
        return out
    }
}
