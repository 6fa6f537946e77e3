import Foundation
import GraftCore

// The forward and reverse-mode derivatives of the ops a classifier head is made of. Each
// `backward` takes the gradient of the loss with respect to the op's output (`dy`) and returns
// the gradients with respect to its inputs and parameters.

/// A fully connected layer, ONNX `Gemm` with `alpha = beta = 1`: `y = x·Wᵀ + b` when the weight
/// is stored `[out, in]` (PyTorch's `nn.Linear`, `transB = 1`), else `y = x·W + b`.
enum LinearOp {
    static func forward(_ x: Matrix, weight: Matrix, bias: [Float]?, transB: Bool) -> Matrix {
        let outFeatures = transB ? weight.rows : weight.columns
        var y = Matrix(zeros: x.rows, outFeatures)
        if let bias {
            precondition(bias.count == outFeatures, "a bias of \(bias.count) for \(outFeatures) outputs")
            for r in 0..<x.rows { y.values.replaceSubrange((r * outFeatures)..<((r + 1) * outFeatures), with: bias) }
        }
        gemm(x, weight, transB: transB, beta: bias == nil ? 0 : 1, into: &y)
        return y
    }

    /// `dW = dyᵀ·x` (`[out, in]` weight) or `xᵀ·dy`; `db = Σ_rows dy`; `dx = dy·W` or `dy·Wᵀ`.
    ///
    /// - Parameter needsInputGradient: false for the first layer, whose input (the frozen
    ///   trunk's features) needs no gradient.
    static func backward(_ dy: Matrix, x: Matrix, weight: Matrix, transB: Bool,
                         needsInputGradient: Bool) -> (dx: Matrix?, dw: Matrix, db: [Float]) {
        var dw = Matrix(zeros: weight.rows, weight.columns)
        if transB {
            gemm(dy, transA: true, x, into: &dw)
        } else {
            gemm(x, transA: true, dy, into: &dw)
        }
        var db = [Float](repeating: 0, count: dy.columns)
        dy.values.withUnsafeBufferPointer { g in
            for r in 0..<dy.rows {
                for c in 0..<dy.columns { db[c] += g[r * dy.columns + c] }
            }
        }
        guard needsInputGradient else { return (nil, dw, db) }
        var dx = Matrix(zeros: x.rows, x.columns)
        gemm(dy, weight, transB: !transB, into: &dx)
        return (dx, dw, db)
    }
}

/// `y = max(x, 0)`.
enum ReLUOp {
    static func forward(_ x: Matrix) -> Matrix {
        var y = x
        for i in y.values.indices where !(y.values[i] > 0) { y.values[i] = 0 }
        return y
    }

    /// `dx = dy · [y > 0]` (zero at 0, as PyTorch).
    static func backward(_ dy: Matrix, output y: Matrix) -> Matrix {
        var dx = dy
        for i in dx.values.indices where !(y.values[i] > 0) { dx.values[i] = 0 }
        return dx
    }
}

/// Inverted dropout: in training each element is kept with probability `1 − p` and scaled by
/// `1 / (1 − p)`, `y = x · m` with `m ∈ {0, 1/(1−p)}`; in evaluation it is the identity.
enum DropoutOp {
    /// A mask of `count` factors drawn from `random`, or nil when `p` is 0 (nothing dropped).
    static func mask(ratio p: Float, count: Int, random: inout SeededGenerator) -> [Float]? {
        guard p > 0 else { return nil }
        // PyTorch gives zeros for p = 1; so does a mask of zeros.
        let scale: Float = p < 1 ? 1 / (1 - p) : 0
        return (0..<count).map { _ in random.uniform(in: 0...1) < Double(p) ? 0 : scale }
    }

    static func forward(_ x: Matrix, mask: [Float]?) -> Matrix {
        guard let mask else { return x }
        var y = x
        for i in y.values.indices { y.values[i] *= mask[i] }
        return y
    }

    /// `dx = dy · m`.
    static func backward(_ dy: Matrix, mask: [Float]?) -> Matrix {
        forward(dy, mask: mask)
    }
}

/// Row-wise `y_ij = x_ij − max_k x_ik − log Σ_k exp(x_ik − max_k x_ik)`.
enum LogSoftmaxOp {
    static func forward(_ x: Matrix) -> Matrix {
        var y = x
        let n = x.columns
        for r in 0..<x.rows {
            let row = (r * n)..<((r + 1) * n)
            let top = x.values[row].max() ?? 0
            var sum = 0.0
            for i in row { sum += Foundation.exp(Double(x.values[i] - top)) }
            let shift = top + Float(Foundation.log(sum))
            for i in row { y.values[i] = x.values[i] - shift }
        }
        return y
    }

    /// `dx_ij = dy_ij − exp(y_ij) · Σ_k dy_ik`.
    static func backward(_ dy: Matrix, output y: Matrix) -> Matrix {
        var dx = dy
        let n = dy.columns
        for r in 0..<dy.rows {
            let row = (r * n)..<((r + 1) * n)
            var sum: Float = 0
            for i in row { sum += dy.values[i] }
            for i in row { dx.values[i] = dy.values[i] - Foundation.exp(y.values[i]) * sum }
        }
        return dx
    }
}

/// The negative log-likelihood of log-probabilities, averaged over the batch:
/// `L = −(1/N) Σ_i y_{i, t_i}`.
enum NLLLossOp {
    static func forward(_ logProbabilities: Matrix, labels: [Int]) -> Float {
        precondition(labels.count == logProbabilities.rows, "\(labels.count) labels for \(logProbabilities.rows) rows")
        guard !labels.isEmpty else { return 0 }
        var sum = 0.0
        for (r, t) in labels.enumerated() { sum -= Double(logProbabilities[r, t]) }
        return Float(sum / Double(labels.count))
    }

    /// `∂L/∂y_ij = −1/N` where `j = t_i`, else 0.
    static func backward(rows: Int, columns: Int, labels: [Int]) -> Matrix {
        var dy = Matrix(zeros: rows, columns)
        let g = -1 / Float(max(rows, 1))
        for (r, t) in labels.enumerated() { dy[r, t] = g }
        return dy
    }
}
