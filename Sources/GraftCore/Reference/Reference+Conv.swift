extension Reference {
    /// 2-D convolution, NCHW, with groups, strides, padding and dilation:
    /// `y[n, co, i, j] = b[co] + Σ x[n, g·Cin/g + ci, i·s - p + di·d, j·s - p + dj·d] · w[co, ci, di, dj]`.
    public static func conv(_ x: Tensor, weight w: Tensor, bias: Tensor?, attributes a: ConvAttributes) throws -> Tensor {
        try requireFloat(x, "Conv")
        guard x.rank == 4, w.rank == 4 else {
            throw GraftError(.badInput, "only 2-D convolutions (rank-4 input and weight) are supported, got input \(x.shape) and weight \(w.shape)", op: "Conv")
        }
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinPerGroup, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let g = a.group
        guard w.dtype == .float32 else {
            throw GraftError(.badInput, "expects a float32 weight, got \(w.dtype)", op: "Conv")
        }
        guard g > 0, cinPerGroup.multipliedReportingOverflow(by: g) == (cin, false), cout % g == 0 else {
            throw GraftError(.badInput, "input \(x.shape) does not fit weight \(w.shape) with group \(g)", op: "Conv")
        }
        if let bias, bias.elementCount != cout {
            throw GraftError(.badInput, "bias of \(bias.elementCount) values for \(cout) output channels", op: "Conv")
        }
        var window = a.window
        window.kernel = [kh, kw]
        try window.validate()
        let (outHW, pads) = window.resolve(input: [h, wd])
        let (oh, ow) = (outHW[0], outHW[1])
        let coutPerGroup = cout / g
        _ = try checkedElementCount([n, cout, oh, ow], .float32, op: "Conv")
        var y = Tensor(zeros: [n, cout, oh, ow])
        let b = bias?.floats
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            w.withUnsafeBufferPointer(as: Float.self) { wp in
                y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                    for b0 in 0..<n {
                        for co in 0..<cout {
                            let group = co / coutPerGroup
                            for i in 0..<oh {
                                for j in 0..<ow {
                                    var acc: Float = b?[co] ?? 0
                                    for ci in 0..<cinPerGroup {
                                        let c = group * cinPerGroup + ci
                                        for di in 0..<kh {
                                            let r = i * window.strides[0] - pads[0] + di * window.dilations[0]
                                            if r < 0 || r >= h { continue }
                                            for dj in 0..<kw {
                                                let s = j * window.strides[1] - pads[1] + dj * window.dilations[1]
                                                if s < 0 || s >= wd { continue }
                                                acc += xp[((b0 * cin + c) * h + r) * wd + s] * wp[((co * cinPerGroup + ci) * kh + di) * kw + dj]
                                            }
                                        }
                                    }
                                    yp[((b0 * cout + co) * oh + i) * ow + j] = acc
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}
