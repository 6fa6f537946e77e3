import GraftCore

/// 2-D max pooling over NCHW planes in parallel, with each window's valid range worked out once
/// per row and column instead of per element.
enum PoolingKernel {
    static func maxPool(_ x: Tensor, window: Window) throws -> Tensor {
        guard x.dtype == .float32, x.rank == 4 else { return try Reference.pool(x, window: window, kind: .max) }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (out, pads) = window.resolve(input: [h, w])
        let (oh, ow) = (out[0], out[1])
        guard oh > 0, ow > 0 else { return try Reference.pool(x, window: window, kind: .max) }
        // Per output row and column: the window's taps that fall inside the input.
        func taps(_ count: Int, _ size: Int, axis: Int) -> [[Int]] {
            (0..<count).map { o in
                (0..<window.kernel[axis]).map { o * window.strides[axis] - pads[axis] + $0 * window.dilations[axis] }
                    .filter { $0 >= 0 && $0 < size }
            }
        }
        let rows = taps(oh, h, axis: 0), columns = taps(ow, w, axis: 1)
        _ = try Reference.checkedElementCount([n, c, oh, ow], .float32, op: "MaxPool")
        var y = Tensor(uninitialized: [n, c, oh, ow])
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                let src = xp.baseAddress!, dst = yp.baseAddress!
                Parallel.forEach(n * c) { plane in
                    let p = src + plane * h * w, q = dst + plane * oh * ow
                    for i in 0..<oh {
                        for j in 0..<ow {
                            var best = -Float.infinity
                            for r in rows[i] {
                                let line = p + r * w
                                for s in columns[j] { best = Reference.maximum(best, line[s]) }
                            }
                            q[i * ow + j] = best
                        }
                    }
                }
            }
        }
        return y
    }
}
