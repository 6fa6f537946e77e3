import GraftCore

/// A convolution over channels-last activations, prepared once per model: the weights packed
/// into strips of the micro-kernel's width of output channels, k-blocks chosen so that a block
/// of a strip stays in L1 while the output pixels stream past it.
///
/// The product has a row per output pixel and a column per output channel. Row i of A is the
/// pixel's window read in place from the bordered input: for each k-block, the segments of
/// consecutive channels at fixed offsets from the window's corner. Nothing is copied: strides,
/// padding and dilations are all in the row pointers and the offsets.
///
/// A grouped convolution that `GroupedConv` does not take runs the same way, each strip of
/// output channels over the input channels of the groups it covers: a strip of 64 outputs in
/// groups of 12 reads the inputs of the groups it touches, its packed weights zero outside each
/// group's block (more products than the groups need, but on the full-width kernel).
final class ChannelsLastConv: ConvolutionKernel {
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
        guard attributes.group >= 1, weight.dtype == .float32, weight.rank == 4, weight.shape[1] > 0, bias == nil || bias!.dtype == .float32,
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
            // Rows per block: a block of a strip (kc × nr floats: the budget's weight block with
            // AVX-512's 64 columns, at most 256 rows with AVX2's 16) stays in L1 while the
            // panels' rows stream past; a 3×3 window's taps in whole runs of 16 channels.
            let kc = min(256, CacheBudget.standard.weightBlock / (nr * 4))
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

    func border(h: Int, w: Int) -> Int { outputSize(h, w).2.max() ?? 0 }

    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        run([(self, x)], into: y, residual: residual, relu: relu)
    }

    func sums(with other: any ConvolutionKernel) -> Bool {
        guard let other = other as? ChannelsLastConv else { return false }
        return other.cout == cout && other.kernel == kernel && other.groups == 1 && other.biasTensor == nil
    }

    func run(_ x: any ChannelsLastImage, plus other: any ConvolutionKernel, _ x2: any ChannelsLastImage, into y: any ChannelsLastImage, relu: Bool) {
        guard let x = x as? ChannelsLast, let x2 = x2 as? ChannelsLast, let y = y as? ChannelsLast else { preconditionFailure("a float kernel given bytes") }
        run([(self, x), (other as! ChannelsLastConv, x2)], into: y, residual: nil, relu: relu)
    }

    /// What one convolution of a summed product needs inside the tile loop, as plain values.
    private struct Term {
        let packed: UnsafePointer<Float>
        let k: Int
        let starts, lengths, tapCounts, firstTap: [Int]
        /// Each block's segment offsets from the window's corner, for the input's row pitch (a
        /// grouped convolution's strips each from their first channel), and how far apart the
        /// strips' lists are.
        let offsets: [Int]
        let stripOffsets: Int
        let pixels: OutputPixels
        var blockCount: Int { starts.count }
    }

    /// `y = relu?(Σ conv_t(x_t) + bias + residual?)` over `terms`, each a convolution with the
    /// same output channels and micro-kernel and its input (of the output's size through its
    /// window): for each strip of output channels the k-blocks of one term after the other's,
    /// into the same sums, so that the epilogue runs once and no term's output is stored. The
    /// bias is the first term's (the others must have none).
    func run(_ terms: [(ChannelsLastConv, ChannelsLast)], into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        precondition(!terms.isEmpty && terms.allSatisfy { $0.0.cout == self.cout && $0.0.kernel == self.kernel }
                     && terms.dropFirst().allSatisfy { $0.0.biasTensor == nil && $0.0.groups == 1 })
        let nr = kernel.rowColumns
        let prepared = terms.map { conv, x -> Term in
            let (oh, ow, pads) = conv.outputSize(x.h, x.w)
            precondition(x.c == conv.cin && y.c == self.cout && y.h == oh && y.w == ow && x.n == y.n && x.border >= (pads.max() ?? 0))
            let corner = zip(conv.tapRows, conv.tapFloats).map { $0 * x.rowPitch + $1 }
            return Term(packed: UnsafePointer(conv.packing.weights.base), k: conv.k, starts: conv.starts, lengths: conv.lengths,
                        tapCounts: conv.tapCounts, firstTap: conv.firstTap,
                        offsets: conv.groups == 1 ? corner : conv.stripChannels.flatMap { first in corner.map { $0 + first } },
                        stripOffsets: conv.groups == 1 ? 0 : corner.count,
                        pixels: OutputPixels(x, y, residual: residual, window: conv.window, pads: pads))
        }
        let pixels = y.n * y.h * y.w
        guard pixels > 0 else { return }
        let mr = kernel.rowCount
        let panels = (pixels + mr - 1) / mr
        let budget = CacheBudget.standard
        let inputChannels = terms.reduce(0) { $0 + $1.0.cin }
        let grid = budget.tiles(panels: panels, strips: strips, rowCount: mr, inputChannels: inputChannels, outputChannels: cout)
        // Plain values inside the parallel loop but the terms' lists (retained once a tile).
        let (kernel, bias, strips, cout) = (self.kernel, packing.bias.map { UnsafePointer($0.base) }, self.strips, self.cout)
        let hasResidual = residual != nil, termCount = prepared.count
        let totalBlocks = prepared.reduce(0) { $0 + $1.blockCount }
        // A product whose weights stay in L2 (up to 256 KiB: the stem's, layer1's, layer2's 1×1)
        // is limited by its activations instead, and the next tile's bigger side is one stretch
        // of memory: the outputs of a widening product (the stem's 3 → 64, layer1's 64 → 256),
        // else the inputs of a 1×1 of stride 1 (256 → 64).
        let smallWeights = prepared.reduce(0) { $0 + strips * $1.k * nr * 4 } <= budget.weightsInL2
        let streamOutputs = smallWeights && cout > inputChannels
        let streamInputs = smallWeights && !streamOutputs && termCount == 1 && kh == 1 && kw == 1 && window.strides == [1, 1]
        // Each thread takes a run of consecutive tiles: the weights it reads next follow the
        // ones it reads now, or start the next tile's strips.
        Parallel.forEachRun(grid.count) { run in for tile in run {
            let (p0, p1, s0, s1) = grid.bounds(tile)
            let next = tile + 1 < run.upperBound ? grid.bounds(tile + 1) : nil
            let capacity = grid.largestPanels * mr
            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: (termCount + 1) * capacity) { rowBuffer in
                withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: capacity) { outBuffer in
                    let rows = rowBuffer.baseAddress!, res = rows + termCount * capacity, outs = outBuffer.baseAddress!
                    // The tile's pixels in order (a last partial panel runs a kernel of fewer rows):
                    // each term's windows, the outputs and the residuals.
                    let firstPixel = p0 * mr, count = min((p1 - p0) * mr, pixels - firstPixel)
                    for (t, term) in prepared.enumerated() {
                        term.pixels.fill(from: firstPixel, count: count, rows: rows + t * capacity, outs: outs, residuals: res)
                    }
                    // Such a product's kernels fetch the next tile's pixels ahead instead of
                    // weights (when the next tile starts new pixels), a slice per call.
                    var pixelFetch: FetchAhead? = nil
                    if streamOutputs || streamInputs, let next, next.p0 != p0 {
                        let pixelPointers = prepared[0].pixels
                        let g = streamOutputs ? pixelPointers.target : pixelPointers.source
                        @inline(__always) func at(_ q: Int) -> UnsafeMutablePointer<Float> { let (b, y, x) = pixelPointers.place(q); return g.pixel(b, y, x) }
                        let first = at(next.p0 * mr), end = at(min(pixels, next.p1 * mr) - 1) + (streamOutputs ? cout : cin)
                        pixelFetch = FetchAhead(UnsafeRawPointer(first), lines: (end - first) / 16, calls: (s1 - s0) * totalBlocks * (p1 - p0))
                    }
                    var call = 0
                    // Strip by strip: a strip's k-block stays in L1 while the tile's panels
                    // pass under it, and the strip's blocks follow each other in memory. The
                    // weights come from memory on every run (a run reads 100 MB of them): the
                    // kernels fetch the next block into L2 while they multiply this one.
                    for s in s0..<s1 {
                        let column = s * nr
                        let columnsValid = min(nr, cout - column)
                        for (t, term) in prepared.enumerated() {
                            let lastTerm = t == termCount - 1
                            for index in 0..<term.blockCount {
                                let first = t == 0 && index == 0, last = lastTerm && index == term.blockCount - 1
                                let strip = term.packed + (s * term.k + term.starts[index]) * nr
                                let steps = term.lengths[index] * term.tapCounts[index]
                                // The weights that come next in this order: the block after this
                                // one, the next term's first block of this strip, the next strip's
                                // (after a strip's blocks come the next strip's), or the next
                                // tile's first strip's.
                                var ahead: (UnsafePointer<Float>, end: UnsafePointer<Float>)?
                                if index + 1 < term.blockCount || lastTerm && s + 1 < s1 && termCount == 1 {
                                    ahead = (strip + steps * nr, term.packed + strips * term.k * nr)
                                } else if !lastTerm {
                                    let other = prepared[t + 1]
                                    ahead = (other.packed + s * other.k * nr, other.packed + strips * other.k * nr)
                                } else if s + 1 < s1 {
                                    let other = prepared[0]
                                    ahead = (other.packed + (s + 1) * other.k * nr, other.packed + strips * other.k * nr)
                                } else if let next {
                                    let other = prepared[0]
                                    ahead = (other.packed + next.s0 * other.k * nr, other.packed + strips * other.k * nr)
                                }
                                let nextFloats = ahead.map { min(steps * nr, $0.end - $0.0) } ?? 0
                                let weightFetch = FetchAhead(UnsafeRawPointer(nextFloats > 0 ? ahead!.0 : strip), lines: nextFloats / 16, calls: p1 - p0)
                                term.offsets.withUnsafeBufferPointer { offsetBuffer in
                                    let segmentOffsets = offsetBuffer.baseAddress! + s * term.stripOffsets + term.firstTap[index]
                                    let termRows = rows + t * capacity
                                    for p in p0..<p1 {
                                        let i = (p - p0) * mr
                                        let fetch = pixelFetch.map { ($0.start(call), $0.step(steps)) } ?? (weightFetch.start(p - p0), weightFetch.step(steps))
                                        kernel.runRows(segments: term.tapCounts[index], length: term.lengths[index], segmentOffsets,
                                                       termRows + i, strip, outs + i, column: column,
                                                       rowsValid: min(mr, pixels - p * mr), columnsValid: columnsValid,
                                                       accumulate: !first, bias: first ? bias.map { $0 + column } : nil,
                                                       residual: last && hasResidual ? UnsafePointer(res + i) : nil, relu: last && relu,
                                                       ahead: fetch.0, aheadStep: fetch.1)
                                        call += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } }
    }
}
