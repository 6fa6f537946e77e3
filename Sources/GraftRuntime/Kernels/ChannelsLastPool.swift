import CKernels
import GraftCore

/// Pools over channels-last activations, a vector of channels at a time.
enum ChannelsLastPool {
    /// Max pooling; the window's taps outside the image are skipped (the border is not read).
    static func max(_ x: ChannelsLast, window: Window, into y: ChannelsLast) {
        let (out, pads) = window.resolve(input: [x.h, x.w])
        let (oh, ow) = (out[0], out[1])
        precondition(y.n == x.n && y.c == x.c && y.h == oh && y.w == ow)
        let (c, kernel, source, target) = (x.c, MicroKernel.active, x.geometry, y.geometry)
        let (kw, sw, dw, pw, width) = (window.kernel[1], window.strides[1], window.dilations[1], pads[1], x.w)
        Parallel.forEach(x.n * oh) { row in
            let b = row / oh, oy = row % oh
            let rows = inputRows(window, pads: pads, row: oy, height: x.h).map { UnsafePointer(source.pixel(b, $0, 0)) }
            rows.withUnsafeBufferPointer { rows in
                kernel.maxPoolRow(target.pixel(b, oy, 0), pixel: c, width: ow, rows: rows.baseAddress!, rowCount: rows.count, channels: c,
                                  inputPixel: c, inputWidth: width, window: kw, stride: sw, dilation: dw, pad: pw)
            }
        }
    }

    /// Max pooling over quantized bytes (AVX512_VNNI's set: the bytes come from int8 steps),
    /// into bytes of the same grid: a grid orders its bytes as their values.
    static func max(_ x: QuantizedActivation, window: Window, into y: QuantizedActivation) {
        let (out, pads) = window.resolve(input: [x.h, x.w])
        let (oh, ow) = (out[0], out[1])
        precondition(y.n == x.n && y.c == x.c && y.h == oh && y.w == ow && y.quantization == x.quantization)
        let (source, target) = (x.pixels, y.pixels)
        Parallel.forEach(x.n * oh) { row in
            let b = row / oh, oy = row % oh
            let rows = inputRows(window, pads: pads, row: oy, height: x.h).map { UnsafePointer(source.pixel(b, $0, 0).assumingMemoryBound(to: UInt8.self)) }
            rows.withUnsafeBufferPointer { rows in
                graft_avx512vnni_max_pool_row(target.pixel(b, oy, 0).assumingMemoryBound(to: UInt8.self), ow, rows.baseAddress!, rows.count, x.c,
                                              x.w, window.kernel[1], window.strides[1], window.dilations[1], pads[1])
            }
        }
    }

    /// The input rows of output row `row`'s window that lie inside the image.
    private static func inputRows(_ window: Window, pads: [Int], row: Int, height: Int) -> [Int] {
        (0..<window.kernel[0]).map { row * window.strides[0] - pads[0] + $0 * window.dilations[0] }.filter { $0 >= 0 && $0 < height }
    }

    /// Global average pooling to an NCHW `[n, c, 1, 1]` tensor.
    static func globalAverage(_ x: ChannelsLast) -> Tensor {
        var t = Tensor(uninitialized: [x.n, x.c, 1, 1])
        let scale = 1 / Float(x.h * x.w)
        t.withUnsafeMutableBufferPointer(as: Float.self) { dst in
            for b in 0..<x.n {
                let sums = dst.baseAddress! + b * x.c
                sums.update(repeating: 0, count: x.c)
                for yy in 0..<x.h {
                    for xx in 0..<x.w {
                        let src = x.pixel(b, yy, xx)
                        for ch in 0..<x.c { sums[ch] += src[ch] }
                    }
                }
                for ch in 0..<x.c { sums[ch] *= scale }
            }
        }
        return t
    }
}
