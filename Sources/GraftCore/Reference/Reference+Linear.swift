extension Reference {
    /// `Y = alpha · A' · B' + beta · C`, with A' and B' optionally transposed and C broadcast.
    public static func gemm(_ a: Tensor, _ b: Tensor, _ c: Tensor?, attributes at: GemmAttributes) throws -> Tensor {
        try requireFloat(a, "Gemm")
        try requireFloat(b, "Gemm")
        guard a.rank == 2, b.rank == 2 else {
            throw GraftError(.badInput, "Gemm needs 2-D operands, got \(a.shape) and \(b.shape)", op: "Gemm")
        }
        let (m, k) = at.transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = at.transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == kb else {
            throw GraftError(.badInput, "inner dimensions differ: \(a.shape) and \(b.shape)", op: "Gemm")
        }
        _ = try checkedElementCount([m, n], .float32, op: "Gemm")
        var y = Tensor(zeros: [m, n])
        if let c {
            guard let shape = broadcastShape(c.shape, [m, n]), shape == [m, n] else {
                throw GraftError(.badInput, "C of shape \(c.shape) does not broadcast to [\(m), \(n)]", op: "Gemm")
            }
        }
        let cs = c.map { broadcastStrides($0.shape, to: [m, n]) }
        let cv = c?.floats
        a.withUnsafeBufferPointer(as: Float.self) { ap in
            b.withUnsafeBufferPointer(as: Float.self) { bp in
                y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                    for i in 0..<m {
                        for j in 0..<n {
                            var acc: Float = 0
                            for l in 0..<k {
                                let av = at.transA ? ap[l * m + i] : ap[i * k + l]
                                let bv = at.transB ? bp[j * k + l] : bp[l * n + j]
                                acc += av * bv
                            }
                            var out = at.alpha * acc
                            if let cv, let cs { out += at.beta * cv[i * cs[0] + j * cs[1]] }
                            yp[i * n + j] = out
                        }
                    }
                }
            }
        }
        return y
    }

    /// NumPy `matmul`: batched over leading axes with broadcasting; 1-D operands promoted.
    public static func matMul(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try requireFloat(a, "MatMul")
        try requireFloat(b, "MatMul")
        guard a.rank >= 1, b.rank >= 1 else {
            throw GraftError(.badInput, "MatMul of scalars", op: "MatMul")
        }
        let a2 = a.rank == 1 ? a.reshaped([1, a.shape[0]]) : a
        let b2 = b.rank == 1 ? b.reshaped([b.shape[0], 1]) : b
        let (m, k) = (a2.shape[a2.rank - 2], a2.shape[a2.rank - 1])
        let (kb, n) = (b2.shape[b2.rank - 2], b2.shape[b2.rank - 1])
        guard k == kb, let batch = broadcastShape(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2))) else {
            throw GraftError(.badInput, "shapes \(a.shape) and \(b.shape) do not multiply", op: "MatMul")
        }
        let sa = broadcastStrides(Array(a2.shape.dropLast(2)), to: batch)
        let sb = broadcastStrides(Array(b2.shape.dropLast(2)), to: batch)
        let sbatch = strides(batch)
        _ = try checkedElementCount(batch + [m, n], .float32, op: "MatMul")
        var y = Tensor(zeros: batch + [m, n])
        a2.withUnsafeBufferPointer(as: Float.self) { ap in
            b2.withUnsafeBufferPointer(as: Float.self) { bp in
                y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                    for t in 0..<batch.elementCount {
                        var rest = t, oa = 0, ob = 0
                        for d in 0..<batch.count {
                            let q = rest / sbatch[d]
                            rest -= q * sbatch[d]
                            oa += q * sa[d]
                            ob += q * sb[d]
                        }
                        for i in 0..<m {
                            for j in 0..<n {
                                var acc: Float = 0
                                for l in 0..<k { acc += ap[(oa * m + i) * k + l] * bp[(ob * k + l) * n + j] }
                                yp[(t * m + i) * n + j] = acc
                            }
                        }
                    }
                }
            }
        }
        var shape = batch
        if a.rank > 1 { shape.append(m) }
        if b.rank > 1 { shape.append(n) }
        return y.reshaped(shape)
    }
}
