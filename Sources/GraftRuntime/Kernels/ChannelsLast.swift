import COpenBLAS
import GraftCore

/// An activation in channels-last layout (NHWC): `n` images of `h`×`w` pixels with `c`
/// consecutive channels each, surrounded by a border of `border` zero pixels so that the
/// convolutions reading it need no bounds checks for their padding.
final class ChannelsLast {
    let n, h, w, c, border: Int
    let data: UnsafeMutablePointer<Float>
    /// Floats from one row of pixels to the next, and from one image to the next.
    let rowPitch, imagePitch: Int
    /// Whether `data` is this value's own heap memory (else a slot of a session's arena).
    private let owned: Bool

    /// The bytes a value of this size takes: the bordered pixels and 64 bytes of slack for the
    /// kernels' full-vector reads past the last channel.
    static func byteCount(n: Int, h: Int, w: Int, c: Int, border: Int) throws -> Int {
        let count = try Reference.checkedElementCount([n, h + 2 * border, w + 2 * border, c], .float32, op: "Conv")
        return max(count, 1) * 4 + 64
    }

    /// An uninitialized interior with a zeroed border, in `memory` (at least `byteCount` bytes,
    /// 64-byte aligned, owned by the caller and outliving the value) or on the heap.
    init(n: Int, h: Int, w: Int, c: Int, border: Int, memory: UnsafeMutableRawPointer? = nil) throws {
        (self.n, self.h, self.w, self.c, self.border) = (n, h, w, c, border)
        rowPitch = (w + 2 * border) * c
        imagePitch = (h + 2 * border) * rowPitch
        let bytes = try Self.byteCount(n: n, h: h, w: w, c: c, border: border)
        owned = memory == nil
        let raw = memory ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        data = raw.bindMemory(to: Float.self, capacity: bytes / 4)
        guard border > 0 else { return }
        for b in 0..<n {
            let image = data + b * imagePitch
            image.update(repeating: 0, count: border * rowPitch)
            (image + (border + h) * rowPitch).update(repeating: 0, count: border * rowPitch)
            for y in 0..<h {
                let row = image + (border + y) * rowPitch
                row.update(repeating: 0, count: border * c)
                (row + (border + w) * c).update(repeating: 0, count: border * c)
            }
        }
    }

    deinit {
        if owned { UnsafeMutableRawPointer(data).deallocate() }
    }

    /// Pixel (y, x) of image b; y and x may reach `border` pixels outside the image.
    @inline(__always)
    func pixel(_ b: Int, _ y: Int, _ x: Int) -> UnsafeMutablePointer<Float> {
        data + b * imagePitch + (y + border) * rowPitch + (x + border) * c
    }

    /// Where the pixels are, as a plain value for the kernels' inner loops.
    struct Geometry {
        let data: UnsafeMutablePointer<Float>
        let imagePitch, rowPitch, c, border: Int

        @inline(__always)
        func pixel(_ b: Int, _ y: Int, _ x: Int) -> UnsafeMutablePointer<Float> {
            data + b * imagePitch + (y + border) * rowPitch + (x + border) * c
        }
    }

    var geometry: Geometry { Geometry(data: data, imagePitch: imagePitch, rowPitch: rowPitch, c: c, border: border) }

    /// An NCHW float tensor in channels-last layout with a border.
    convenience init(_ t: Tensor, border: Int) throws {
        guard t.dtype == .float32, t.rank == 4 else {
            throw GraftError(.badInput, "expected a 4-D float tensor, got \(t.dtype) \(t.shape)")
        }
        try self.init(n: t.shape[0], h: t.shape[2], w: t.shape[3], c: t.shape[1], border: border)
        let (n, h, w, c) = (self.n, self.h, self.w, self.c)
        t.withUnsafeBufferPointer(as: Float.self) { src in
            let s = src.baseAddress!
            Parallel.forEach(n * h) { row in
                let b = row / h, y = row % h
                let dst = self.pixel(b, y, 0)
                for ch in 0..<c {
                    let line = s + ((b * c + ch) * h + y) * w
                    for x in 0..<w { dst[x * c + ch] = line[x] }
                }
            }
        }
    }

    /// The same values with another border.
    func withBorder(_ border: Int) throws -> ChannelsLast {
        let y = try ChannelsLast(n: n, h: h, w: w, c: c, border: border)
        for b in 0..<n {
            for r in 0..<h { y.pixel(b, r, 0).update(from: pixel(b, r, 0), count: w * c) }
        }
        return y
    }

    /// The values as an NCHW tensor.
    func tensor() -> Tensor {
        var t = Tensor(uninitialized: [n, c, h, w])
        t.withUnsafeMutableBufferPointer(as: Float.self) { dst in
            let d = dst.baseAddress!
            Parallel.forEach(n * h) { row in
                let b = row / h, y = row % h
                let src = self.pixel(b, y, 0)
                for ch in 0..<self.c {
                    let line = d + ((b * self.c + ch) * self.h + y) * self.w
                    for x in 0..<self.w { line[x] = src[x * self.c + ch] }
                }
            }
        }
        return t
    }
}

/// Floats owned by a kernel (packed weights, a bias padded to whole strips), zero-filled.
final class FloatBuffer {
    let base: UnsafeMutablePointer<Float>

    /// Aligned to cache lines: the kernels' vector loads of packed weights never straddle two.
    init(zeros count: Int) {
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: count)
    }

    /// A float tensor's values followed by zeros up to `count`.
    convenience init(_ tensor: Tensor, paddedTo count: Int) {
        self.init(zeros: count)
        tensor.withUnsafeBufferPointer(as: Float.self) { base.update(from: $0.baseAddress!, count: min($0.count, count)) }
    }

    deinit { base.deallocate() }
}

/// A convolution over channels-last activations, prepared once per model: the weights packed
/// into strips of the micro-kernel's width of output channels, k-blocks chosen so that a block
/// of a strip stays in L1 while the output pixels stream past it.
///
/// The product has a row per output pixel and a column per output channel. Row i of A is the
/// pixel's window read in place from the bordered input: for each k-block, the segments of
/// consecutive channels at fixed offsets from the window's corner. Nothing is copied: strides,
/// padding and dilations are all in the row pointers and the offsets.
///
/// A grouped convolution (ResNeXt's 3×3) runs the same way, each strip of output channels over
/// the input channels of the groups it covers: a strip of 64 outputs in groups of 4 reads the 64
/// inputs of its 16 groups, its packed weights zero outside each group's block (16 times the
/// products a group needs, but on the full-width kernel).
final class ChannelsLastConv {
    /// Input channels (the input's pixel pitch), output channels, window.
    let cin, cout, kh, kw: Int
    let window: Window
    /// Rows of each strip's packed weights: the strip's input channels times the window's taps.
    let k: Int
    /// Multiply-adds per output value that the convolution needs (`k` less a grouped strip's zeros).
    let multiplyAdds: Int
    let groups: Int
    /// The first input channel each strip of output channels reads (all 0 with one group).
    private let stripChannels: [Int]
    let kernel: MicroKernel
    /// A k-block: `segments` runs of `length` floats; segment s starts at channel `channel` of
    /// tap `taps[s]` (with `fused`, at tap (di, 0) and runs over kW·Cin floats: the whole row
    /// of the window, which is contiguous in NHWC).
    struct Block {
        let start: Int
        let channel: Int
        let length: Int
        let taps: [(di: Int, dj: Int)]
    }
    let blocks: [Block]
    /// The blocks as the inner loop reads them: first packed row, run length, segment count,
    /// and where each block's segments start in the flat list of (input rows, floats) offsets
    /// of its taps from the window's corner (`tapRows` scaled by the input's row pitch).
    private let starts, lengths, tapCounts, firstTap: [Int]
    private let tapRows, tapFloats: [Int]
    let fused: Bool
    private let strips: Int
    private let weight: Tensor
    private let biasTensor: Tensor?
    /// The packed weights and bias, made on the first run (a convolution that Winograd's
    /// method runs at every size never needs them).
    private var packing: (weights: FloatBuffer, bias: FloatBuffer?) { packed.value { pack() } }
    private let packed = Once<(weights: FloatBuffer, bias: FloatBuffer?)>()


    /// Whether a convolution can run channels-last: float weights `[Cout, Cin/groups, kH, kW]`,
    /// and with several groups, strips that each cover whole groups or lie inside one (the
    /// output channels per group divide the strip width, or the other way round).
    static func supports(weight: Tensor, bias: Tensor?, attributes: ConvAttributes, kernel: MicroKernel = .active) -> Bool {
        guard attributes.group >= 1, weight.dtype == .float32, weight.rank == 4, bias == nil || bias!.dtype == .float32,
              bias.map({ $0.elementCount == weight.shape[0] }) ?? true else { return false }
        let (groups, cout, nr) = (attributes.group, weight.shape[0], kernel.rowColumns)
        guard groups > 1 else { return true }
        let perGroup = cout / groups
        return cout % groups == 0 && perGroup > 0 && cout % nr == 0 && (nr % perGroup == 0 || perGroup % nr == 0)
    }

    init(weight: Tensor, bias: Tensor?, attributes: ConvAttributes, kernel: MicroKernel = .active) {
        let groups = attributes.group
        let (cout, cinPerGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let cin = cinPerGroup * groups
        (self.cout, self.cin, self.kh, self.kw, self.groups) = (cout, cin, kh, kw, groups)
        var w = attributes.window
        w.kernel = [kh, kw]
        window = w
        let nr = kernel.rowColumns
        // The input channels a strip reads: all of them, or those of the groups it covers.
        let coutPerGroup = cout / groups
        let depth = groups == 1 ? cin : (nr >= coutPerGroup ? nr / coutPerGroup : 1) * cinPerGroup
        stripChannels = (0..<((cout + nr - 1) / nr)).map { groups == 1 ? 0 : ($0 * nr / coutPerGroup) * cinPerGroup }
        let k = depth * kh * kw
        self.k = k
        multiplyAdds = cinPerGroup * kh * kw
        self.kernel = kernel
        // Few channels (the stem's 3): a window row of kW pixels is one contiguous run.
        let fused = groups == 1 && cin * kw <= 64 && kw > 1 && w.dilations[1] == 1
        self.fused = fused
        var blocks: [Block] = []
        if fused {
            let rowsPerBlock = max(1, 256 / (kw * cin))
            var di = 0
            while di < kh {
                let count = min(rowsPerBlock, kh - di)
                blocks.append(Block(start: di * kw * cin, channel: 0, length: kw * cin, taps: (di..<di + count).map { ($0, 0) }))
                di += count
            }
        } else {
            let taps = (0..<kh).flatMap { di in (0..<kw).map { dj in (di: di, dj: dj) } }
            // Rows per block: a block of a strip (kc × nr floats, 32 KiB with AVX-512's 64
            // columns, 16 KiB with AVX2's 16) stays in L1 while the panels' rows stream past;
            // a 3×3 window's taps in whole runs of 16 channels.
            let kc = nr >= 64 ? 128 : 256
            let wanted = kh * kw == 1 ? kc : max(16, (kc / (kh * kw) + 15) / 16 * 16)
            let count = (depth + wanted - 1) / wanted
            let per = (depth + count - 1) / count
            var c0 = 0, start = 0
            while c0 < depth {
                let length = min(per, depth - c0)
                blocks.append(Block(start: start, channel: c0, length: length, taps: taps))
                start += length * taps.count
                c0 += length
            }
        }
        self.blocks = blocks
        starts = blocks.map(\.start)
        lengths = blocks.map(\.length)
        tapCounts = blocks.map(\.taps.count)
        firstTap = blocks.indices.map { i in blocks[..<i].reduce(0) { $0 + $1.taps.count } }
        tapRows = blocks.flatMap { $0.taps.map { $0.di * w.dilations[0] } }
        tapFloats = blocks.flatMap { block in block.taps.map { $0.dj * w.dilations[1] * cin + block.channel } }
        strips = (cout + nr - 1) / nr
        self.weight = weight
        biasTensor = bias
    }

    /// Packs the weights now (at load, for the sizes the plan expects).
    func prepare() { _ = packing }

    private func pack() -> (weights: FloatBuffer, bias: FloatBuffer?) {
        let (nr, strips, k, cin, cout, kh, kw, fused, blocks) = (kernel.rowColumns, strips, k, cin, cout, kh, kw, fused, blocks)
        let buffer = FloatBuffer(zeros: strips * k * nr)
        let packed = buffer.base
        // Where each weight of an output channel ((c, di, dj) order, contiguous in the tensor)
        // goes in its strip: the strip's channels are read side by side in that order (a
        // sequential stream each) and written a packed row at a time.
        var rowOf = [Int](repeating: 0, count: k)
        for block in blocks {
            var row = block.start
            for tap in block.taps {
                for t in 0..<block.length {
                    let (di, dj, c) = fused ? (tap.di, t / cin, t % cin) : (tap.di, tap.dj, block.channel + t)
                    rowOf[(c * kh + di) * kw + dj] = row
                    row += 1
                }
            }
        }
        let (groups, stripChannels) = (groups, stripChannels)
        weight.withUnsafeBufferPointer(as: Float.self) { src in
            rowOf.withUnsafeBufferPointer { rowOf in
                if groups == 1 {
                    for s in 0..<strips {
                        let channels = min(nr, cout - s * nr)
                        let from = src.baseAddress! + s * nr * k, to = packed + s * k * nr
                        for q in 0..<k {
                            let row = to + rowOf[q] * nr
                            for j in 0..<channels { row[j] = from[j * k + q] }
                        }
                    }
                    return
                }
                // Output channel o reads its group's input channels: in its strip's window
                // they start at the group's first channel less the strip's; the rest stay 0.
                let (cinPerGroup, coutPerGroup) = (cin / groups, cout / groups)
                let perOutput = cinPerGroup * kh * kw
                for s in 0..<strips {
                    let to = packed + s * k * nr
                    for j in 0..<min(nr, cout - s * nr) {
                        let o = s * nr + j
                        let local = (o / coutPerGroup) * cinPerGroup - stripChannels[s]
                        let from = src.baseAddress! + o * perOutput
                        for q in 0..<perOutput {
                            to[rowOf[local * kh * kw + q] * nr + j] = from[q]
                        }
                    }
                }
            }
        }
        return (buffer, biasTensor.map { FloatBuffer($0, paddedTo: strips * nr) })
    }

    /// Output height and width for an input of `h`×`w`, and the pads applied.
    func outputSize(_ h: Int, _ w: Int) -> (Int, Int, [Int]) {
        let (out, pads) = window.resolve(input: [h, w])
        return (out[0], out[1], pads)
    }

    /// The border an input needs for this convolution's padding (read in place).
    func border(pads: [Int]) -> Int { pads.max() ?? 0 }

    /// The tile grid: panels of the kernel's rows of output pixels × strips of output channels,
    /// as counts of tiles along each (tile t of n covers `t·panels/n ..< (t+1)·panels/n`: sizes
    /// differ by one at most). A tile's pixels' windows (about 96 KiB of input, at least 96
    /// pixels) stay in L2 while its strips of weights pass over them. With several threads there
    /// are about four tiles per thread, split first along the side that costs fewer extra reads:
    /// a split of the pixels reads the weights once more, a split of the strips the activations.
    private func tiling(panels: Int) -> (panelTiles: Int, stripTiles: Int) {
        let mr = kernel.rowCount
        let inL2 = min(panels, max(96 / mr, (96 * 1024) / (mr * cin * 4)))
        var panelTiles = (panels + inL2 - 1) / inL2, stripTiles = 1
        let wanted = Parallel.threads > 1 ? 4 * Parallel.threads : 1
        let pixelsFirst = panels * mr >= cout
        while panelTiles * stripTiles < wanted && (panelTiles < panels || stripTiles < strips) {
            if (pixelsFirst || stripTiles == strips) && panelTiles < panels { panelTiles += 1 } else { stripTiles += 1 }
        }
        return (panelTiles, stripTiles)
    }

    /// `y = relu?(conv(x) + bias + residual?)`; `y` has the output size and `x` a border at
    /// least the pads.
    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        let (oh, ow, pads) = outputSize(x.h, x.w)
        precondition(x.c == cin && y.c == cout && y.h == oh && y.w == ow && x.border >= border(pads: pads))
        let nr = kernel.rowColumns
        let pixels = x.n * oh * ow
        guard pixels > 0 else { return }
        let mr = kernel.rowCount
        let panels = (pixels + mr - 1) / mr
        let (panelTiles, stripTiles) = tiling(panels: panels)
        let largestTile = (panels + panelTiles - 1) / panelTiles
        let (sh, sw) = (window.strides[0], window.strides[1])
        // Each block's segment offsets from the window's corner (pads included), for this
        // input's row pitch; a grouped convolution's strips each from their first channel.
        let corner = zip(tapRows, tapFloats).map { $0 * x.rowPitch + $1 }
        let offsets = groups == 1 ? corner : stripChannels.flatMap { first in corner.map { $0 + first } }
        let stripOffsets = groups == 1 ? 0 : corner.count
        // Plain values only inside the parallel loop: no reference counting per tile.
        let packing = self.packing
        let (kernel, packed, bias, k, strips, cout) = (self.kernel, UnsafePointer(packing.weights.base),
                                                       packing.bias.map { UnsafePointer($0.base) }, self.k, self.strips, self.cout)
        let (starts, lengths, tapCounts, firstOffset) = (self.starts, self.lengths, self.tapCounts, self.firstTap)
        let source = x.geometry, target = y.geometry, added = residual?.geometry
        let blockCount = blocks.count
        // A product whose weights stay in L2 (up to 256 KiB: the stem's, layer1's, layer2's 1×1)
        // is limited by its activations instead, and the next tile's bigger side is one stretch
        // of memory: the outputs of a widening product (the stem's 3 → 64, layer1's 64 → 256),
        // else the inputs of a 1×1 of stride 1 (256 → 64).
        let smallWeights = strips * k * nr * 4 <= 256 << 10
        let streamOutputs = smallWeights && cout > cin
        let streamInputs = smallWeights && !streamOutputs && kh == 1 && kw == 1 && sh == 1 && sw == 1
        offsets.withUnsafeBufferPointer { offsetBuffer in
            let offsets = offsetBuffer.baseAddress!
            // Output pixel q: image, row, column.
            @inline(__always) func place(_ q: Int) -> (Int, Int, Int) { (q / (oh * ow), q % (oh * ow) / ow, q % ow) }
            // Tile t: panels and strips (strips after strips of the same pixels, in order).
            @inline(__always) func bounds(_ t: Int) -> (p0: Int, p1: Int, s0: Int, s1: Int) {
                let (pt, st) = (t / stripTiles, t % stripTiles)
                return (pt * panels / panelTiles, (pt + 1) * panels / panelTiles, st * strips / stripTiles, (st + 1) * strips / stripTiles)
            }
            // Each thread takes a run of consecutive tiles: the weights it reads next follow the
            // ones it reads now, or start the next tile's strips.
            Parallel.forEachRun(panelTiles * stripTiles) { run in for tile in run {
                let (p0, p1, s0, s1) = bounds(tile)
                let next = tile + 1 < run.upperBound ? bounds(tile + 1) : nil
                let capacity = largestTile * mr
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 2 * capacity) { rowBuffer in
                    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: capacity) { outBuffer in
                        let rows = rowBuffer.baseAddress!, res = rows + capacity, outs = outBuffer.baseAddress!
                        // The tile's pixels in order (a last partial panel runs a kernel of fewer rows).
                        let firstPixel = p0 * mr
                        var (b, oy, ox) = place(firstPixel)
                        for i in 0..<min((p1 - p0) * mr, pixels - firstPixel) {
                            rows[i] = UnsafePointer(source.pixel(b, oy * sh - pads[0], ox * sw - pads[1]))
                            outs[i] = target.pixel(b, oy, ox)
                            res[i] = UnsafePointer(added?.pixel(b, oy, ox) ?? outs[i])
                            ox += 1
                            if ox == ow {
                                ox = 0
                                oy += 1
                                if oy == oh { (oy, b) = (0, b + 1) }
                            }
                        }
                        // Such a product's kernels fetch the next tile's pixels ahead instead of
                        // weights (when the next tile starts new pixels), a slice per call.
                        var pixelFetch: FetchAhead? = nil
                        if streamOutputs || streamInputs, let next, next.p0 != p0 {
                            let g = streamOutputs ? target : source
                            @inline(__always) func at(_ q: Int) -> UnsafeMutablePointer<Float> { let (b, y, x) = place(q); return g.pixel(b, y, x) }
                            let first = at(next.p0 * mr), end = at(min(pixels, next.p1 * mr) - 1) + (streamOutputs ? cout : cin)
                            pixelFetch = FetchAhead(UnsafeRawPointer(first), lines: (end - first) / 16, calls: (s1 - s0) * blockCount * (p1 - p0))
                        }
                        var call = 0
                        // Strip by strip: a strip's k-block stays in L1 while the tile's panels
                        // pass under it, and the strip's blocks follow each other in memory. The
                        // weights come from memory on every run (a run reads 100 MB of them): the
                        // kernels fetch the next block into L2 while they multiply this one.
                        for s in s0..<s1 {
                            let column = s * nr
                            let columnsValid = min(nr, cout - column)
                            for index in 0..<blockCount {
                                let first = index == 0, last = index == blockCount - 1
                                let segmentOffsets = offsets + s * stripOffsets + firstOffset[index]
                                let strip = packed + (s * k + starts[index]) * nr
                                let blockBias = first ? bias.map { $0 + column } : nil
                                let steps = lengths[index] * tapCounts[index]
                                // The weights are one run in memory, block after block; after
                                // the tile's last block come the next tile's first strip's.
                                // The next block's lines a slice per panel.
                                let ahead = last && s + 1 == s1 ? next.map { packed + $0.s0 * k * nr } : strip + steps * nr
                                let nextFloats = ahead.map { min(steps * nr, packed + strips * k * nr - $0) } ?? 0
                                let weightFetch = FetchAhead(UnsafeRawPointer(nextFloats > 0 ? ahead! : strip), lines: nextFloats / 16, calls: p1 - p0)
                                for p in p0..<p1 {
                                    let i = (p - p0) * mr
                                    let fetch = pixelFetch.map { ($0.start(call), $0.step(steps)) } ?? (weightFetch.start(p - p0), weightFetch.step(steps))
                                    kernel.runRows(segments: tapCounts[index], length: lengths[index], segmentOffsets,
                                                   rows + i, strip, outs + i, column: column,
                                                   rowsValid: min(mr, pixels - p * mr), columnsValid: columnsValid,
                                                   accumulate: !first, bias: blockBias,
                                                   residual: last && added != nil ? UnsafePointer(res + i) : nil, relu: last && relu,
                                                   ahead: fetch.0, aheadStep: fetch.1)
                                    call += 1
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

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
            // The window's input rows inside the image, at their pixel 0.
            let rows = (0..<window.kernel[0]).map { oy * window.strides[0] - pads[0] + $0 * window.dilations[0] }
                .filter { $0 >= 0 && $0 < x.h }.map { UnsafePointer(source.pixel(b, $0, 0)) }
            rows.withUnsafeBufferPointer { rows in
                kernel.maxPoolRow(target.pixel(b, oy, 0), pixel: c, width: ow, rows: rows.baseAddress!, rowCount: rows.count, channels: c,
                                  inputPixel: c, inputWidth: width, window: kw, stride: sw, dilation: dw, pad: pw)
            }
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
