import Foundation

extension Reference {
    /// Inference batch normalization over axis 1:
    /// `y = scale · (x - mean) / sqrt(var + ε) + bias`.
    public static func batchNorm(_ x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor,
                                 epsilon: Float) throws -> Tensor {
        try requireFloat(x, "BatchNormalization")
        guard x.rank >= 2 else {
            throw GraftError(.badInput, "input of rank \(x.rank); batch normalization needs rank 2 or more", op: "BatchNormalization")
        }
        let c = x.shape[1]
        for p in [scale, bias, mean, variance] where p.elementCount != c {
            throw GraftError(.badInput, "a parameter of \(p.elementCount) values for \(c) channels", op: "BatchNormalization")
        }
        let s = scale.floats, b = bias.floats, m = mean.floats, v = variance.floats
        let inner = x.shape.count > 2 ? Array(x.shape[2...]).elementCount : 1
        var y = Tensor(zeros: x.shape)
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                for i in 0..<x.elementCount {
                    let ch = (i / inner) % c
                    yp[i] = s[ch] * (xp[i] - m[ch]) / (v[ch] + epsilon).squareRoot() + b[ch]
                }
            }
        }
        return y
    }

    /// Softmax (or log-softmax) along `axis`; with `coerce2D` (before opset 13) over all axes from
    /// `axis` on, as if the input were flattened to 2-D there.
    public static func softmax(_ x: Tensor, axis: Int, coerce2D: Bool, log: Bool) throws -> Tensor {
        try requireFloat(x, "Softmax")
        let a = try Reference.axis(axis, rank: max(x.rank, 1), op: "Softmax")
        // A scalar is one row of one element.
        if x.rank == 0 { return try softmax(x.reshaped([1]), axis: 0, coerce2D: coerce2D, log: log).reshaped([]) }
        let outer = Array(x.shape[..<a]).elementCount
        let length = coerce2D ? Array(x.shape[a...]).elementCount : x.shape[a]
        let inner = coerce2D ? 1 : Array(x.shape[(a + 1)...]).elementCount
        var y = Tensor(zeros: x.shape)
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                for o in 0..<outer {
                    for k in 0..<inner {
                        let base = o * length * inner + k
                        var top = -Float.infinity
                        for l in 0..<length { top = max(top, xp[base + l * inner]) }
                        var sum: Float = 0
                        for l in 0..<length { sum += Foundation.exp(xp[base + l * inner] - top) }
                        for l in 0..<length {
                            let shifted = xp[base + l * inner] - top
                            yp[base + l * inner] = log ? shifted - Foundation.log(sum) : Foundation.exp(shifted) / sum
                        }
                    }
                }
            }
        }
        return y
    }
}
