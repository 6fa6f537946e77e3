import COpenBLAS
import GraftCore

/// A dense row-major float32 matrix: the head's activations, weights and gradients.
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "\(values.count) values for a \(rows)×\(columns) matrix")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public init(zeros rows: Int, _ columns: Int) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: 0, count: rows * columns))
    }

    /// The matrix of a rank-2 float tensor.
    ///
    /// - Throws: `GraftError` when the tensor is not 2-D.
    public init(_ tensor: Tensor) throws {
        guard tensor.rank == 2 else {
            throw GraftError(.invalidArgument, "expected a 2-D tensor, got \(tensor.shape)")
        }
        self.init(rows: tensor.shape[0], columns: tensor.shape[1], values: tensor.floats)
    }

    /// The matrix as a `[rows, columns]` float32 tensor.
    public var tensor: Tensor { Tensor(shape: [rows, columns], floats: values) }

    public subscript(row: Int, column: Int) -> Float {
        get { values[row * columns + column] }
        set { values[row * columns + column] = newValue }
    }

    /// The rows at `indices`, in that order.
    public func gatheringRows(_ indices: [Int]) -> Matrix {
        var out = [Float](repeating: 0, count: indices.count * columns)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (r, i) in indices.enumerated() {
                    precondition(i >= 0 && i < rows, "row \(i) of \(rows)")
                    (dst.baseAddress! + r * columns).update(from: src.baseAddress! + i * columns, count: columns)
                }
            }
        }
        return Matrix(rows: indices.count, columns: columns, values: out)
    }

    /// The index of the largest value of each row (the first on ties).
    public func argmaxRows() -> [Int] {
        (0..<rows).map { r in
            var best = 0
            for c in 1..<max(columns, 1) where values[r * columns + c] > values[r * columns + best] { best = c }
            return best
        }
    }
}

/// `C = alpha · op(A) · op(B) + beta · C` on row-major matrices, through OpenBLAS sgemm.
///
/// - Parameters:
///   - transA, transB: use the transpose of A or B.
func gemm(_ a: Matrix, transA: Bool = false, _ b: Matrix, transB: Bool = false, alpha: Float = 1,
          beta: Float = 0, into c: inout Matrix) {
    let (m, k) = transA ? (a.columns, a.rows) : (a.rows, a.columns)
    let (kb, n) = transB ? (b.columns, b.rows) : (b.rows, b.columns)
    precondition(k == kb && c.rows == m && c.columns == n,
                 "gemm of \(a.rows)×\(a.columns)\(transA ? "ᵀ" : "") and \(b.rows)×\(b.columns)\(transB ? "ᵀ" : "") into \(c.rows)×\(c.columns)")
    if m == 0 || n == 0 { return }
    if k == 0 {
        for i in c.values.indices { c.values[i] *= beta }
        return
    }
    a.values.withUnsafeBufferPointer { ap in
        b.values.withUnsafeBufferPointer { bp in
            c.values.withUnsafeMutableBufferPointer { cp in
                cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), alpha, ap.baseAddress!, Int32(max(a.columns, 1)),
                            bp.baseAddress!, Int32(max(b.columns, 1)), beta, cp.baseAddress!, Int32(max(n, 1)))
            }
        }
    }
}
