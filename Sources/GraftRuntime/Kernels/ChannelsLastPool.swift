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
        Parallel.forEachRun(x.n * oh) { run in for row in run {
            let b = row / oh, oy = row % oh
            withInputRows(window, pads: pads, row: oy, height: x.h, { UnsafePointer(source.pixel(b, $0, 0)) }) { rows, count in
                kernel.maxPoolRow(target.pixel(b, oy, 0), pixel: c, width: ow, rows: rows, rowCount: count, channels: c,
                                  inputPixel: c, inputWidth: width, window: kw, stride: sw, dilation: dw, pad: pw)
            }
        } }
    }

    /// Max pooling of floats, bytes or bfloat16 into the same type.
    static func max(_ x: any ChannelsLastImage, window: Window, into y: any ChannelsLastImage) {
        switch (x, y) {
        case let (x as ChannelsLast, y as ChannelsLast): max(x, window: window, into: y)
        case let (x as QuantizedActivation, y as QuantizedActivation): max(x, window: window, into: y)
        case let (x as BF16Activation, y as BF16Activation): max(x, window: window, into: y)
        default: preconditionFailure("a max pool between values of different types")
        }
    }

    /// Max pooling over quantized bytes (AVX512_VNNI's set: the bytes come from int8 steps),
    /// into bytes of the same grid: a grid orders its bytes as their values.
    static func max(_ x: QuantizedActivation, window: Window, into y: QuantizedActivation) {
        precondition(y.quantization == x.quantization)
        max(x, window: window, into: y, row: graft_avx512vnni_max_pool_row)
    }

    /// Max pooling over bfloat16 values (AVX512_BF16's set: they come from bf16 steps), into
    /// bfloat16: the maximum is one of the values, so nothing is rounded.
    static func max(_ x: BF16Activation, window: Window, into y: BF16Activation) {
        max(x, window: window, into: y, row: graft_avx512bf16_max_pool_row)
    }

    /// Max pooling of values of type `T` by a kernel's `max_pool_row` (output row, its width, the
    /// window's input rows and their count, channels, input width, window, stride, dilation, pad).
    private static func max<T>(_ x: any ChannelsLastImage, window: Window, into y: any ChannelsLastImage,
                               row kernel: @escaping (UnsafeMutablePointer<T>, Int, UnsafePointer<UnsafePointer<T>>, Int, Int, Int, Int, Int, Int, Int) -> Void) {
        let (out, pads) = window.resolve(input: [x.h, x.w])
        let (oh, ow) = (out[0], out[1])
        precondition(y.n == x.n && y.c == x.c && y.h == oh && y.w == ow)
        let (source, target, c, h, w) = (x.pixels, y.pixels, x.c, x.h, x.w)
        Parallel.forEachRun(x.n * oh) { run in for row in run {
            let b = row / oh, oy = row % oh
            withInputRows(window, pads: pads, row: oy, height: h, { UnsafePointer(source.pixel(b, $0, 0).assumingMemoryBound(to: T.self)) }) { rows, count in
                kernel(target.pixel(b, oy, 0).assumingMemoryBound(to: T.self), ow, rows, count, c,
                       w, window.kernel[1], window.strides[1], window.dilations[1], pads[1])
            }
        } }
    }

    /// `body(rows, count)` with the input rows of output row `row`'s window that lie inside the
    /// image (`pointer(y)` for row y), without allocating: pools run a row an index, and the
    /// arrays of each row's pointers cost more than a bf16 row's maxima at batch 1.
    private static func withInputRows<T>(_ window: Window, pads: [Int], row: Int, height: Int, _ pointer: (Int) -> UnsafePointer<T>,
                                         _ body: (UnsafePointer<UnsafePointer<T>>, Int) -> Void) {
        withUnsafeTemporaryAllocation(of: UnsafePointer<T>.self, capacity: window.kernel[0]) { rows in
            var count = 0
            for t in 0..<window.kernel[0] {
                let y = row * window.strides[0] - pads[0] + t * window.dilations[0]
                if y >= 0 && y < height { rows[count] = pointer(y); count += 1 }
            }
            body(UnsafePointer(rows.baseAddress!), count)
        }
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
