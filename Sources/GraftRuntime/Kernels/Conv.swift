import COpenBLAS
import GraftCore

/// Convolution as matrix products: each group's weight `[Cout/g, Cin/g·kH·kW]` times the input
/// unfolded into columns (im2col), or times the input itself for 1×1 stride-1 unpadded kernels.
enum ConvKernel {
    static func run(_ x: Tensor, weight w: Tensor, bias: Tensor?, attributes a: ConvAttributes) throws -> Tensor {
        guard x.dtype == .float32, w.dtype == .float32, x.rank == 4, w.rank == 4 else {
            return try Reference.conv(x, weight: w, bias: bias, attributes: a)
        }
        let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let g = a.group
        guard g > 0, cin == cinG * g, cout % g == 0, bias.map({ $0.elementCount == cout && $0.dtype == .float32 }) ?? true else {
            // Let the reference kernel produce the precise error.
            return try Reference.conv(x, weight: w, bias: bias, attributes: a)
        }
        var window = a.window
        window.kernel = [kh, kw]
        let (outHW, pads) = window.resolve(input: [h, wd])
        let (oh, ow) = (outHW[0], outHW[1])
        let coutG = cout / g
        let k = cinG * kh * kw, pixels = oh * ow
        let direct = kh == 1 && kw == 1 && window.strides == [1, 1] && pads == [0, 0, 0, 0]
        var y = Tensor(zeros: [n, cout, oh, ow])
        var columns = [Float](repeating: 0, count: direct ? 0 : k * pixels)
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            w.withUnsafeBufferPointer(as: Float.self) { wp in
                y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                    if let bias {
                        bias.withUnsafeBufferPointer(as: Float.self) { bp in
                            for b in 0..<n {
                                for c in 0..<cout {
                                    let base = (b * cout + c) * pixels
                                    for p in 0..<pixels { yp[base + p] = bp[c] }
                                }
                            }
                        }
                    }
                    columns.withUnsafeMutableBufferPointer { cp in
                        for b in 0..<n {
                            for grp in 0..<g {
                                let input = xp.baseAddress! + (b * cin + grp * cinG) * h * wd
                                let source: UnsafePointer<Float>
                                if direct {
                                    source = input
                                } else {
                                    im2col(input, channels: cinG, height: h, width: wd, window: window, pads: pads,
                                           outHeight: oh, outWidth: ow, into: cp.baseAddress!)
                                    source = UnsafePointer(cp.baseAddress!)
                                }
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                            Int32(coutG), Int32(pixels), Int32(k), 1,
                                            wp.baseAddress! + grp * coutG * k, Int32(k),
                                            source, Int32(pixels), bias == nil ? 0 : 1,
                                            yp.baseAddress! + (b * cout + grp * coutG) * pixels, Int32(pixels))
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Unfolds `[C, H, W]` into `[C·kH·kW, outH·outW]`, zeros where the window reads padding.
    static func im2col(_ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, window: Window, pads: [Int],
                       outHeight oh: Int, outWidth ow: Int, into out: UnsafeMutablePointer<Float>) {
        let (kh, kw) = (window.kernel[0], window.kernel[1])
        let (sh, sw) = (window.strides[0], window.strides[1])
        let (dh, dw) = (window.dilations[0], window.dilations[1])
        var row = 0
        for c in 0..<channels {
            for i in 0..<kh {
                for j in 0..<kw {
                    let dst = out + row * oh * ow
                    for r in 0..<oh {
                        let y = r * sh - pads[0] + i * dh
                        let line = dst + r * ow
                        if y < 0 || y >= h {
                            line.initialize(repeating: 0, count: ow)
                            continue
                        }
                        let src = x + (c * h + y) * w
                        for s in 0..<ow {
                            let xx = s * sw - pads[1] + j * dw
                            line[s] = xx >= 0 && xx < w ? src[xx] : 0
                        }
                    }
                    row += 1
                }
            }
        }
    }
}
