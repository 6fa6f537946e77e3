extension Reference {
    public enum PoolKind: Sendable { case max, average(countIncludePad: Bool) }

    /// 2-D max or average pooling, NCHW. Max ignores padding; average divides by the window's
    /// size inside the input, or inside the padded input when `countIncludePad`.
    public static func pool(_ x: Tensor, window: Window, kind: PoolKind) throws -> Tensor {
        try requireFloat(x, "Pool")
        guard x.rank == 4 else {
            throw GraftError(.badInput, "only 2-D pooling (rank-4 input) is supported, got \(x.shape)", op: "Pool")
        }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        try window.validatePooling(input: [h, w])
        let (outHW, pads) = window.resolve(input: [h, w])
        let (oh, ow) = (outHW[0], outHW[1])
        _ = try checkedElementCount([n, c, oh, ow], .float32, op: "Pool")
        var y = Tensor(zeros: [n, c, oh, ow])
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                for plane in 0..<(n * c) {
                    for i in 0..<oh {
                        for j in 0..<ow {
                            var best = -Float.infinity, sum: Float = 0, inside = 0
                            let r0 = i * window.strides[0] - pads[0], s0 = j * window.strides[1] - pads[1]
                            for di in 0..<window.kernel[0] {
                                let r = r0 + di * window.dilations[0]
                                if r < 0 || r >= h { continue }
                                for dj in 0..<window.kernel[1] {
                                    let s = s0 + dj * window.dilations[1]
                                    if s < 0 || s >= w { continue }
                                    let v = xp[(plane * h + r) * w + s]
                                    best = Reference.maximum(best, v)
                                    sum += v
                                    inside += 1
                                }
                            }
                            let out: Float
                            switch kind {
                            case .max: out = best
                            case .average(let includePad):
                                if includePad {
                                    // The window clipped to the padded input, as PyTorch counts it.
                                    let rEnd = min(r0 + window.kernel[0], h + pads[2]), sEnd = min(s0 + window.kernel[1], w + pads[3])
                                    out = sum / Float((rEnd - r0) * (sEnd - s0))
                                } else {
                                    out = inside > 0 ? sum / Float(inside) : 0
                                }
                            }
                            yp[(plane * oh + i) * ow + j] = out
                        }
                    }
                }
            }
        }
        return y
    }

    /// Mean or max over all spatial positions: `[N, C, ...] -> [N, C, 1, ...]`.
    public static func globalPool(_ x: Tensor, max: Bool) throws -> Tensor {
        try requireFloat(x, "GlobalPool")
        guard x.rank >= 3 else {
            throw GraftError(.badInput, "global pooling needs rank 3 or more, got \(x.shape)", op: "GlobalPool")
        }
        let planes = x.shape[0] * x.shape[1], size = x.elementCount / Swift.max(planes, 1)
        var y = Tensor(zeros: Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.rank - 2))
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                for p in 0..<planes {
                    var acc: Float = max ? -.infinity : 0
                    for k in 0..<size {
                        let v = xp[p * size + k]
                        acc = max ? Reference.maximum(acc, v) : acc + v
                    }
                    yp[p] = max ? acc : acc / Float(size)
                }
            }
        }
        return y
    }

    /// The mean over `axes` (all axes when empty).
    public static func reduceMean(_ x: Tensor, axes: [Int], keepDims: Bool) throws -> Tensor {
        try requireFloat(x, "ReduceMean")
        let list = try Set((axes.isEmpty ? Array(0..<x.rank) : axes).map { try axis($0, rank: x.rank, op: "ReduceMean") })
        let keptShape = x.shape.enumerated().map { list.contains($0.offset) ? 1 : $0.element }
        var y = Tensor(zeros: keptShape)
        let outStrides = broadcastStrides(keptShape, to: x.shape), inStrides = strides(x.shape)
        let divisor = Float(x.elementCount / Swift.max(keptShape.elementCount, 1))
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                for i in 0..<x.elementCount {
                    var rest = i, o = 0
                    for d in 0..<x.rank {
                        let q = rest / inStrides[d]
                        rest -= q * inStrides[d]
                        o += q * outStrides[d]
                    }
                    yp[o] += xp[i]
                }
                for o in 0..<yp.count { yp[o] /= divisor }
            }
        }
        return keepDims ? y : y.reshaped(x.shape.enumerated().filter { !list.contains($0.offset) }.map(\.element))
    }
}

extension Reference {
    /// The larger of two values, NaN when either is (PyTorch's max pool); `Swift.max` would
    /// drop a NaN that comes second.
    @inlinable
    public static func maximum(_ a: Float, _ b: Float) -> Float { b > a || b.isNaN ? b : a }
}
