import GraftCore

/// A 2-D convolution as a matrix product, prepared once per model: the weights of each group
/// packed for the micro-kernel, the geometry resolved.
///
/// For stride 1, row (c, di, dj) of the im2col matrix is the padded input plane shifted by
/// (di, dj): B is packed from it with whole-strip copies through a row-offset table, each
/// output row computed over the padded width and the extra columns dropped afterwards. Strided
/// convolutions pack their windows element by element. Bias, a residual add and ReLU are applied
/// as each tile leaves the registers (or as the padded-width result is compacted).
final class PackedConv {
    let cin, cout, group, kh, kw: Int
    let window: Window
    /// Per group: the weights as a `[Cout/g, Cin/g·kH·kW]` matrix packed for the micro-kernel.
    private let matrices: [PackedMatrix]
    private let bias: UnsafeMutablePointer<Float>?
    let k: Int
    private let rowsPerGroup: Int

    init(weight: Tensor, bias: Tensor?, attributes: ConvAttributes) {
        (cout, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        group = attributes.group
        cin = weight.shape[1] * group
        var w = attributes.window
        w.kernel = [kh, kw]
        window = w
        k = weight.shape[1] * kh * kw
        rowsPerGroup = cout / group
        let (rows, depth) = (rowsPerGroup, k)
        matrices = weight.withUnsafeBufferPointer(as: Float.self) { src in
            (0..<attributes.group).map { g in PackedMatrix(rows: rows, depth: depth) { r, kk in src[(g * rows + r) * depth + kk] } }
        }
        if let bias {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: bias.elementCount)
            bias.withUnsafeBufferPointer(as: Float.self) { _ = UnsafeMutableBufferPointer(start: b, count: $0.count).initialize(from: $0) }
            self.bias = b
        } else {
            self.bias = nil
        }
    }

    deinit {
        bias?.deallocate()
    }

    /// Output height and width for an input of `h`×`w`, and the pads applied.
    func outputSize(_ h: Int, _ w: Int) -> (Int, Int, [Int]) {
        let (out, pads) = window.resolve(input: [h, w])
        return (out[0], out[1], pads)
    }

    /// Scratch memory reused across runs (not shared between threads of one run).
    struct Scratch {
        var floats: [Float] = []
        var offsets: [Int] = []

        mutating func reserve(_ count: Int) {
            if floats.count < count { floats = [Float](repeating: 0, count: count) }
        }
    }

    /// `y = relu?(conv(x) + bias + residual?)` for NCHW `x` of `n` images of `h`×`w`.
    func run(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, into y: UnsafeMutablePointer<Float>,
             residual: UnsafePointer<Float>?, relu: Bool, scratch: inout Scratch) {
        let (oh, ow, pads) = outputSize(h, w)
        let cinG = cin / group
        let implicit = window.strides == [1, 1] && window.dilations == [1, 1] && window.autoPad == .notSet
        for b in 0..<n {
            for g in 0..<group {
                let input = x + (b * cin + g * cinG) * h * w
                let out = y + (b * cout + g * rowsPerGroup) * oh * ow
                let res = residual.map { $0 + (b * cout + g * rowsPerGroup) * oh * ow }
                if implicit {
                    runImplicit(input, h: h, w: w, oh: oh, ow: ow, pads: pads, group: g, into: out, residual: res, relu: relu, scratch: &scratch)
                } else {
                    runPacked(input, h: h, w: w, oh: oh, ow: ow, pads: pads, group: g, into: out, residual: res, relu: relu, scratch: &scratch)
                }
            }
        }
    }

    /// Stride 1: the input (padded when the window pads it) read in place.
    private func runImplicit(_ input: UnsafePointer<Float>, h: Int, w: Int, oh: Int, ow: Int, pads: [Int], group g: Int,
                             into out: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, relu: Bool, scratch: inout Scratch) {
        let cinG = cin / group
        let (hp, wp) = (h + pads[0] + pads[2], w + pads[1] + pads[3])
        // Anything but a 1×1 kernel reads up to kW−1 past the last pixel: copy the input into a
        // buffer with its pads and slack. A 1×1 kernel reads its input in place.
        let padded = pads != [0, 0, 0, 0] || kh > 1 || kw > 1
        // Columns are output pixels over the padded width: (oy, ox) for ox in 0..<wp.
        let columns = oh * wp
        let nr = MicroKernel.active.columns
        // The result goes to a wide buffer of whole strips (row stride `ldc`), compacted into the
        // output tile by tile, unless it is the output's layout already and ends on a strip.
        let ldc = (columns + nr - 1) / nr * nr
        let compact = wp != ow || ldc != columns
        // Layout of the scratch floats: padded input, then the wide output, each with slack for
        // the last strip's over-read.
        let paddedCount = padded ? cinG * hp * wp + 64 : 0
        let wideCount = compact ? rowsPerGroup * ldc : 0
        // One row of tiles reads each strip of B once: copy strips as the tiles need them. With
        // several, pack B once so the rows of tiles share it.
        let strips = (columns + nr - 1) / nr
        let panelTile = matrices[g].tiling(strips: strips, nr: nr).panels
        let packOnce = matrices[g].panelCount > panelTile
        let packedCount = packOnce ? strips * k * nr : 0
        scratch.reserve(paddedCount + wideCount + packedCount)
        if scratch.offsets.count != k { scratch.offsets = [Int](repeating: 0, count: k) }
        var kk = 0
        for c in 0..<cinG {
            for di in 0..<kh {
                for dj in 0..<kw {
                    scratch.offsets[kk] = c * hp * wp + di * wp + dj
                    kk += 1
                }
            }
        }
        let offsets = scratch.offsets
        scratch.floats.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            var source = input
            if padded {
                let dst = base
                dst.update(repeating: 0, count: paddedCount)
                Parallel.forEach(cinG) { c in
                    for r in 0..<h {
                        (dst + c * hp * wp + (r + pads[0]) * wp + pads[1]).update(from: input + (c * h + r) * w, count: w)
                    }
                }
                source = UnsafePointer(dst)
            }
            let target = compact ? base + paddedCount : out
            let biasRows = bias.map { UnsafePointer($0 + g * rowsPerGroup) }
            // The wide result (output rows over the padded width) is compacted tile by tile as
            // each tile finishes, while it is in cache, adding the residual and applying ReLU.
            let wide = UnsafePointer(base + paddedCount)
            let compactTile = !compact ? nil : Self.compactor(wide: wide, ldc: ldc, rowWidth: wp, out: out, oh: oh, ow: ow,
                                                             residual: residual, relu: relu)
            offsets.withUnsafeBufferPointer { rows in
                if packOnce {
                    let packed = base + paddedCount + wideCount
                    Parallel.forEach(strips) { st in
                        let dst = packed + st * self.k * nr, column = st * nr
                        let valid = min(nr, columns - column)
                        for kk in 0..<self.k {
                            let src = source + rows[kk] + column, d = dst + kk * nr
                            if valid < nr && !padded {
                                for j in 0..<nr { d[j] = j < valid ? src[j] : 0 }
                            } else {
                                d.update(from: src, count: nr)
                            }
                        }
                    }
                    matrices[g].multiply(.strips(UnsafePointer(packed)), columns: columns, ldc: ldc, into: target, bias: biasRows,
                                         residual: compact ? nil : residual, relu: compact ? false : relu, afterTile: compactTile)
                } else {
                    matrices[g].multiply(.rows(base: source, offsets: rows.baseAddress!, paddedEnd: padded), columns: columns,
                                         ldc: ldc, into: target, bias: biasRows, residual: compact ? nil : residual, relu: compact ? false : relu,
                                         afterTile: compactTile)
                }
            }
        }
    }

    /// Strides or dilations: windows packed into 16-column strips (im2col), then multiplied.
    private func runPacked(_ input: UnsafePointer<Float>, h: Int, w: Int, oh: Int, ow: Int, pads: [Int], group g: Int,
                           into out: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?, relu: Bool, scratch: inout Scratch) {
        let pixels = oh * ow
        let nr = MicroKernel.active.columns
        let strips = (pixels + nr - 1) / nr
        let ldc = strips * nr
        let compact = ldc != pixels
        let wideCount = compact ? rowsPerGroup * ldc : 0
        scratch.reserve(strips * k * nr + wideCount)
        scratch.floats.withUnsafeMutableBufferPointer { buffer in
            let packed = buffer.baseAddress!, wide = packed + strips * k * nr
            Parallel.forEach(strips) { s in
                self.packWindows(input, h: h, w: w, oh: oh, ow: ow, pads: pads, strip: s, width: nr, into: packed + s * self.k * nr)
            }
            let compactTile = !compact ? nil : Self.compactor(wide: UnsafePointer(wide), ldc: ldc, rowWidth: ow, out: out, oh: oh, ow: ow,
                                                             residual: residual, relu: relu)
            matrices[g].multiply(.strips(UnsafePointer(packed)), columns: pixels, ldc: ldc, into: compact ? wide : out,
                                 bias: bias.map { UnsafePointer($0 + g * rowsPerGroup) },
                                 residual: compact ? nil : residual, relu: compact ? false : relu, afterTile: compactTile)
        }
    }

    /// Moves a finished tile of the wide result (row stride `ldc`, output rows `rowWidth` wide of
    /// which the first `ow` are real) into the output, adding the residual and applying ReLU.
    private static func compactor(wide: UnsafePointer<Float>, ldc: Int, rowWidth: Int, out: UnsafeMutablePointer<Float>,
                                  oh: Int, ow: Int, residual: UnsafePointer<Float>?, relu: Bool) -> (Range<Int>, Range<Int>) -> Void {
        let columns = oh * rowWidth
        return { rowRange, columnRange in
            for r in rowRange {
                var j = columnRange.lowerBound
                let end = min(columnRange.upperBound, columns)
                while j < end {
                    let oy = j / rowWidth, ox = j % rowWidth
                    let run = min(end - j, rowWidth - ox)
                    let count = min(run, max(0, ow - ox))
                    if count > 0 {
                        let src = wide + r * ldc + j, dst = out + (r * oh + oy) * ow + ox
                        if let residual {
                            let res = residual + (r * oh + oy) * ow + ox
                            for i in 0..<count { let v = src[i] + res[i]; dst[i] = relu ? max(v, 0) : v }
                        } else if relu {
                            for i in 0..<count { dst[i] = max(src[i], 0) }
                        } else {
                            dst.update(from: src, count: count)
                        }
                    }
                    j += run
                }
            }
        }
    }

    /// One strip (`width` columns) of the im2col matrix: row (c, di, dj), column (oy, ox) holds
    /// the input pixel the window reads there, or 0 in the padding.
    private func packWindows(_ x: UnsafePointer<Float>, h: Int, w: Int, oh: Int, ow: Int, pads: [Int], strip s: Int, width: Int,
                             into dst: UnsafeMutablePointer<Float>) {
        let pixels = oh * ow
        let j0 = s * width, valid = min(width, pixels - j0)
        let (sh, sw) = (window.strides[0], window.strides[1])
        let (dh, dw) = (window.dilations[0], window.dilations[1])
        let (pt, pl) = (pads[0], pads[1])
        let cinG = cin / group
        // Where each of the 16 columns' windows start, computed once for all rows.
        var iy0 = [Int](repeating: Int.min / 2, count: width), ix0 = iy0
        for j in 0..<valid {
            iy0[j] = ((j0 + j) / ow) * sh - pt
            ix0[j] = ((j0 + j) % ow) * sw - pl
        }
        var kk = 0
        for c in 0..<cinG {
            let plane = x + c * h * w
            for di in 0..<kh {
                for dj in 0..<kw {
                    let d = dst + kk * width
                    for j in 0..<width {
                        let iy = iy0[j] + di * dh, ix = ix0[j] + dj * dw
                        d[j] = iy >= 0 && iy < h && ix >= 0 && ix < w ? plane[iy * w + ix] : 0
                    }
                    kk += 1
                }
            }
        }
    }
}
