/// The element-wise arithmetic ops, with NumPy broadcasting.
public enum BinaryOperator: Sendable {
    case add, sub, mul, div

    @inline(__always) func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        }
    }

    @inline(__always) func apply(_ a: Double, _ b: Double) -> Double {
        switch self {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        }
    }

    func apply(_ a: Int64, _ b: Int64) -> Int64 {
        switch self {
        case .add: return a &+ b
        case .sub: return a &- b
        case .mul: return a &* b
        case .div: return b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
        }
    }
}

extension Reference {
    /// `f` applied to every element of a float tensor.
    static func map(_ x: Tensor, _ f: (Float) -> Float) throws -> Tensor {
        try requireFloat(x, "element-wise")
        var out = Tensor(zeros: x.shape)
        x.withUnsafeBufferPointer(as: Float.self) { src in
            out.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                for i in 0..<src.count { dst[i] = f(src[i]) }
            }
        }
        return out
    }

    /// The shape two shapes broadcast to, NumPy style.
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard x == y || x == 1 || y == 1 else { return nil }
            out[i] = x == 1 ? y : x
        }
        return out
    }

    /// Strides of `shape` seen inside `target` for broadcasting (0 along broadcast axes).
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(shape)
        let offset = target.count - shape.count
        return (0..<target.count).map { i in
            i < offset || shape[i - offset] == 1 ? 0 : own[i - offset]
        }
    }

    /// `a op b` element by element, broadcasting NumPy style; float32, float64 or int64 operands.
    public static func broadcast(_ a: Tensor, _ b: Tensor, _ op: BinaryOperator) throws -> Tensor {
        guard let shape = broadcastShape(a.shape, b.shape) else {
            throw GraftError(.badInput, "shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        guard a.dtype == b.dtype else {
            throw GraftError(.badInput, "operands of different types \(a.dtype) and \(b.dtype)")
        }
        let sa = broadcastStrides(a.shape, to: shape), sb = broadcastStrides(b.shape, to: shape)
        let so = strides(shape)
        let count = try checkedElementCount(shape, a.dtype)
        func offsets(_ i: Int) -> (Int, Int) {
            var ia = 0, ib = 0, rest = i
            for d in 0..<shape.count {
                let q = rest / so[d]
                rest -= q * so[d]
                ia += q * sa[d]
                ib += q * sb[d]
            }
            return (ia, ib)
        }
        var out = Tensor(zeros: shape, dtype: a.dtype)
        switch a.dtype {
        case .float32:
            a.withUnsafeBufferPointer(as: Float.self) { x in
                b.withUnsafeBufferPointer(as: Float.self) { y in
                    out.withUnsafeMutableBufferPointer(as: Float.self) { z in
                        if a.shape == b.shape {
                            for i in 0..<count { z[i] = op.apply(x[i], y[i]) }
                        } else {
                            for i in 0..<count { let (ia, ib) = offsets(i); z[i] = op.apply(x[ia], y[ib]) }
                        }
                    }
                }
            }
        case .float64:
            a.withUnsafeBufferPointer(as: Double.self) { x in
                b.withUnsafeBufferPointer(as: Double.self) { y in
                    out.withUnsafeMutableBufferPointer(as: Double.self) { z in
                        for i in 0..<count { let (ia, ib) = offsets(i); z[i] = op.apply(x[ia], y[ib]) }
                    }
                }
            }
        case .int64:
            let x = a.int64s, y = b.int64s
            out.withUnsafeMutableBufferPointer(as: Int64.self) { z in
                for i in 0..<count { let (ia, ib) = offsets(i); z[i] = op.apply(x[ia], y[ib]) }
            }
        default:
            throw GraftError(.badInput, "element-wise arithmetic on \(a.dtype) is not supported")
        }
        return out
    }
}
