import COpenBLAS
import GraftCore

/// `Gemm` and 2-D `MatMul` through OpenBLAS sgemm.
enum GemmKernel {
    static func run(_ a: Tensor, _ b: Tensor, _ c: Tensor?, attributes at: GemmAttributes) throws -> Tensor {
        guard a.dtype == .float32, b.dtype == .float32, a.rank == 2, b.rank == 2, c.map({ $0.dtype == .float32 }) ?? true else {
            return try Reference.gemm(a, b, c, attributes: at)
        }
        let (m, k) = at.transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = at.transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == kb else { return try Reference.gemm(a, b, c, attributes: at) }
        var y: Tensor
        if let c {
            guard let shape = Reference.broadcastShape(c.shape, [m, n]), shape == [m, n] else {
                return try Reference.gemm(a, b, c, attributes: at)
            }
            // Start from C broadcast to [M, N]; sgemm then adds alpha·A·B to beta·C.
            y = try Reference.broadcast(Tensor(zeros: [m, n]), c, .add)
        } else {
            y = Tensor(zeros: [m, n])
        }
        a.withUnsafeBufferPointer(as: Float.self) { ap in
            b.withUnsafeBufferPointer(as: Float.self) { bp in
                y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                    cblas_sgemm(CblasRowMajor, at.transA ? CblasTrans : CblasNoTrans, at.transB ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), at.alpha, ap.baseAddress!, Int32(a.shape[1]),
                                bp.baseAddress!, Int32(b.shape[1]), c == nil ? 0 : at.beta, yp.baseAddress!, Int32(n))
                }
            }
        }
        return y
    }

    static func matMul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        if a.rank == 2 && b.rank == 2 && a.shape[1] == b.shape[0] {
            return try run(a, b, nil, attributes: GemmAttributes())
        }
        return try Reference.matMul(a, b)
    }
}
