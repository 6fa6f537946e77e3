import GraftCore

/// A 2-D convolution prepared once per model: weights packed into 6-row panels for the
/// micro-kernel, geometry resolved. Running it packs the input into 16-column strips (im2col on
/// the fly, or a plain copy for 1×1 stride-1 kernels) and multiplies tile by tile on all threads,
/// applying bias, a residual add and ReLU as each tile leaves the registers.
final class PackedConv {
    let cin, cout, group, kh, kw: Int
    let window: Window
    /// Per group: Cout/g rows of K = Cin/g·kH·kW, as ⌈rows/6⌉ panels of 6 rows, k-major.
    private let panels: UnsafeMutablePointer<Float>
    private let bias: UnsafeMutablePointer<Float>?
    let k: Int
    private let rowsPerGroup: Int
    private let panelsPerGroup: Int
    static let kBlock = 256

    init(weight: Tensor, bias: Tensor?, attributes: ConvAttributes) {
        (cout, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        group = attributes.group
        cin = weight.shape[1] * group
        var w = attributes.window
        w.kernel = [kh, kw]
        window = w
        k = weight.shape[1] * kh * kw
        rowsPerGroup = cout / group
        panelsPerGroup = (rowsPerGroup + 5) / 6
        let (groups, rows, panelCount, depth) = (group, rowsPerGroup, panelsPerGroup, k)
        let count = groups * panelCount * 6 * depth
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: count)
        packed.initialize(repeating: 0, count: count)
        weight.withUnsafeBufferPointer(as: Float.self) { src in
            for g in 0..<groups {
                for r in 0..<rows {
                    let row = g * rows + r
                    let dst = packed + (g * panelCount + r / 6) * 6 * depth + r % 6
                    for kk in 0..<depth { dst[kk * 6] = src[row * depth + kk] }
                }
            }
        }
        panels = packed
        if let bias {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: bias.elementCount)
            bias.withUnsafeBufferPointer(as: Float.self) { _ = UnsafeMutableBufferPointer(start: b, count: $0.count).initialize(from: $0) }
            self.bias = b
        } else {
            self.bias = nil
        }
    }

    deinit {
        panels.deallocate()
        bias?.deallocate()
    }

    /// Output height and width for an input of `h`×`w`.
    func outputSize(_ h: Int, _ w: Int) -> (Int, Int, [Int]) {
        let (out, pads) = window.resolve(input: [h, w])
        return (out[0], out[1], pads)
    }

    /// `y = relu?(conv(x) + bias + residual?)` for NCHW `x` of `n` images of `h`×`w`.
    func run(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, into y: UnsafeMutablePointer<Float>,
             residual: UnsafePointer<Float>?, relu: Bool, scratch: inout [Float]) {
        let (oh, ow, pads) = outputSize(h, w)
        let pixels = oh * ow
        let strips = (pixels + 15) / 16
        let cinG = cin / group
        let stripStride = k * 16
        if scratch.count < strips * stripStride { scratch = [Float](repeating: 0, count: strips * stripStride) }
        let direct = kh == 1 && kw == 1 && window.strides == [1, 1] && pads == [0, 0, 0, 0]
        scratch.withUnsafeMutableBufferPointer { buffer in
            let packed = buffer.baseAddress!
            for b in 0..<n {
                for g in 0..<group {
                    let input = x + (b * cin + g * cinG) * h * w
                    // Pack B: strip s holds, for each k, the 16 pixels 16s..<16s+16 (zero past the end).
                    Parallel.forEach(strips) { s in
                        let dst = packed + s * stripStride
                        if direct {
                            Self.packDirect(input, pixels: pixels, strip: s, k: k, into: dst)
                        } else {
                            self.packWindows(input, h: h, w: w, oh: oh, ow: ow, pads: pads, strip: s, into: dst)
                        }
                    }
                    let out = y + (b * cout + g * rowsPerGroup) * pixels
                    let res = residual.map { $0 + (b * cout + g * rowsPerGroup) * pixels }
                    multiply(packed: UnsafePointer(packed), strips: strips, pixels: pixels, group: g, into: out, residual: res, relu: relu)
                }
            }
        }
    }

    /// C = A·B over the packed operands, tiles spread over the threads.
    private func multiply(packed: UnsafePointer<Float>, strips: Int, pixels: Int, group g: Int,
                          into c: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, relu: Bool) {
        // Tiles of up to 8 panels (48 rows) by 8 strips (128 columns): a 48×256 block of A and a
        // 256×16 strip of B stay in L2 and L1 while a tile is computed.
        let panelTile = 8, stripTile = 8
        let rowTiles = (panelsPerGroup + panelTile - 1) / panelTile
        let columnTiles = (strips + stripTile - 1) / stripTile
        let a = UnsafePointer(panels + g * panelsPerGroup * 6 * k)
        let biasRows = bias.map { UnsafePointer($0 + g * rowsPerGroup) }
        Parallel.forEach(rowTiles * columnTiles) { tile in
            let rt = tile / columnTiles, ct = tile % columnTiles
            let p0 = rt * panelTile, p1 = min(p0 + panelTile, panelsPerGroup)
            let s0 = ct * stripTile, s1 = min(s0 + stripTile, strips)
            var k0 = 0
            while k0 < k {
                let kb = min(Self.kBlock, k - k0)
                let last = k0 + kb == k
                for s in s0..<s1 {
                    let bStrip = packed + s * k * 16 + k0 * 16
                    let column = s * 16
                    let columnsValid = min(16, pixels - column)
                    for p in p0..<p1 {
                        let row = p * 6
                        let rowsValid = min(6, rowsPerGroup - row)
                        let store = MicroKernel.Store(accumulate: k0 > 0, bias: k0 == 0 ? biasRows.map { $0 + row } : nil,
                                                      residual: last ? residual.map { $0 + row * pixels + column } : nil,
                                                      relu: last && relu)
                        MicroKernel.run(kb, a + p * 6 * k + k0 * 6, bStrip, c + row * pixels + column, pixels,
                                        rowsValid: rowsValid, columnsValid: columnsValid, store: store)
                    }
                }
                k0 += kb
            }
        }
    }

    /// B for a 1×1 stride-1 kernel: the input channels themselves.
    private static func packDirect(_ x: UnsafePointer<Float>, pixels: Int, strip s: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        let j0 = s * 16, valid = min(16, pixels - j0)
        if valid == 16 {
            for kk in 0..<k {
                (dst + kk * 16).update(from: x + kk * pixels + j0, count: 16)
            }
        } else {
            for kk in 0..<k {
                let d = dst + kk * 16
                d.update(from: x + kk * pixels + j0, count: valid)
                (d + valid).update(repeating: 0, count: 16 - valid)
            }
        }
    }

    /// B for a general window (im2col): row (c, di, dj), column (oy, ox) holds the input pixel the
    /// window reads there, or 0 in the padding.
    private func packWindows(_ x: UnsafePointer<Float>, h: Int, w: Int, oh: Int, ow: Int, pads: [Int], strip s: Int,
                             into dst: UnsafeMutablePointer<Float>) {
        let pixels = oh * ow
        let j0 = s * 16, valid = min(16, pixels - j0)
        let (sh, sw) = (window.strides[0], window.strides[1])
        let (dh, dw) = (window.dilations[0], window.dilations[1])
        let (pt, pl) = (pads[0], pads[1])
        let cinG = cin / group
        var kk = 0
        for c in 0..<cinG {
            let plane = x + c * h * w
            for di in 0..<kh {
                for dj in 0..<kw {
                    let d = dst + kk * 16
                    var oy = j0 / ow, ox = j0 % ow
                    for j in 0..<16 {
                        if j < valid {
                            let iy = oy * sh - pt + di * dh, ix = ox * sw - pl + dj * dw
                            d[j] = iy >= 0 && iy < h && ix >= 0 && ix < w ? plane[iy * w + ix] : 0
                            ox += 1
                            if ox == ow { ox = 0; oy += 1 }
                        } else {
                            d[j] = 0
                        }
                    }
                    kk += 1
                }
            }
        }
    }
}
