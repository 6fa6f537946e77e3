import CKernels
import GraftCore

/// A convolution over channels-last activations computed in bfloat16 with f32 sums (AVX512_BF16's
/// `vdpbf16ps`): the same inputs and outputs as `ChannelsLastConv`, each product of a weight and
/// an activation taken after rounding both to bfloat16 (8 significant bits, round to nearest even).
///
/// Each output pixel's window is a row of `k` values in a fixed order, tap by tap (row-major over
/// the window) and channel by channel within a tap: `q = (di·kW + dj)·Cin + c`. The kernel reads
/// them in pairs of consecutive values (`vdpbf16ps` multiplies a pair by a pair and adds both
/// products to one f32 lane); an odd `k` ends with a zero. The weights are packed once, the pairs
/// of each 64-channel strip k-block by k-block; the activations of a tile of pixels are converted
/// one k-block at a time as their windows are gathered (read in place from the bordered input,
/// as `ChannelsLastConv` reads them), and every strip of weights then passes over that block.
final class BF16Conv {
    /// Input channels (the input's pixel pitch), output channels, window.
    let cin, cout, kh, kw: Int
    let window: Window
    /// Values in each output pixel's window, and the pairs the kernel reads (`k` rounded up to even, halved).
    let k, pairs: Int
    /// The window as runs of consecutive floats: `runLength` floats at each of `runRows` input
    /// rows and `runFloats` floats from the window's corner. With few channels (the stem's 3) a
    /// run is a whole row of the window, else one tap's channels.
    let runLength: Int
    private let runRows, runFloats: [Int]
    /// The k-blocks, in pairs: block b is pairs `blockStarts[b]..<blockStarts[b + 1]`. A block
    /// of a strip's weights (up to 128 pairs × 64 columns, 32 KiB) stays in L1 while a tile's
    /// pixels pass under it.
    let blockStarts: [Int]
    private let strips: Int
    /// The bfloat16 weights, block-major in the order the tiles read them: block b of strip s
    /// starts `(blockStarts[b]·strips + s·length)·64` pairs in, `length` the block's pairs; each
    /// k-pair is 64 columns of 32 bits (value 2t in the low half, 2t + 1 in the high one), zero
    /// past `cout` and past `k`.
    private let weights: UnsafeMutablePointer<UInt32>
    /// The bias padded to whole strips.
    private let bias: FloatBuffer?

    /// Output channels per strip and output pixels per kernel call.
    static let columns = Int(GRAFT_AVX512BF16_ROW_COLUMNS), rowCount = Int(GRAFT_AVX512BF16_ROW_COUNT)
    /// Pairs per k-block at most.
    static let blockPairs = 128

    /// Packs the weights `[Cout, Cin, kH, kW]` (float32) to bfloat16.
    /// - Throws: `GraftError` where the processor lacks AVX512_BF16 (the kernels would stop it
    ///   with an illegal instruction), for a grouped convolution, or for weights or a bias that
    ///   are not float32 of matching sizes.
    init(weight: Tensor, bias: Tensor?, attributes: ConvAttributes, processorHasBF16: Bool = MicroKernel.supportsBF16) throws {
        try Self.requireBF16(processorHasBF16)
        guard attributes.group == 1 else {
            throw GraftError(.badInput, "bf16 convolutions are ungrouped, this one has \(attributes.group) groups", op: "Conv")
        }
        guard weight.dtype == .float32, weight.rank == 4, bias.map({ $0.dtype == .float32 && $0.elementCount == weight.shape[0] }) ?? true else {
            throw GraftError(.badInput, "expected float32 weights [Cout, Cin, kH, kW] and a bias of Cout floats, got \(weight.dtype) \(weight.shape)", op: "Conv")
        }
        let (cout, cin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        (self.cout, self.cin, self.kh, self.kw) = (cout, cin, kh, kw)
        var w = attributes.window
        w.kernel = [kh, kw]
        window = w
        k = cin * kh * kw
        let pairs = (k + 1) / 2
        self.pairs = pairs
        let (dh, dw) = (w.dilations[0], w.dilations[1])
        if cin * kw <= 64 && kw > 1 && dw == 1 {
            runLength = kw * cin
            runRows = (0..<kh).map { $0 * dh }
            runFloats = Array(repeating: 0, count: kh)
        } else {
            runLength = cin
            runRows = (0..<kh * kw).map { $0 / kw * dh }
            runFloats = (0..<kh * kw).map { $0 % kw * dw * cin }
        }
        let blockCount = (pairs + Self.blockPairs - 1) / Self.blockPairs
        let blockStarts = (0...blockCount).map { $0 * pairs / max(blockCount, 1) }
        let strips = (cout + Self.columns - 1) / Self.columns
        (self.blockStarts, self.strips) = (blockStarts, strips)
        self.bias = bias.map { FloatBuffer($0, paddedTo: strips * Self.columns) }
        weights = Self.pack(weight, strips: strips, blockStarts: blockStarts)
    }

    deinit { weights.deallocate() }

    /// - Throws: `GraftError` unless the processor has AVX512_BF16 (the kernels would stop it with
    ///   an illegal instruction).
    static func requireBF16(_ processorHasBF16: Bool) throws {
        guard processorHasBF16 else {
            throw GraftError(.invalidArgument, "bf16 convolutions need a processor with AVX512_BF16 (avx512_bf16 in /proc/cpuinfo's flags), which this one lacks: run in f32", op: "Conv")
        }
    }

    /// The weights in bfloat16, in the kernel's order (see `weights`): the floats are laid out
    /// in that order first and converted in one pass by the same instruction as the activations.
    private static func pack(_ weight: Tensor, strips: Int, blockStarts: [Int]) -> UnsafeMutablePointer<UInt32> {
        let (cout, cin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let (k, nr, pairs) = (cin * kh * kw, columns, blockStarts.last!)
        let count = max(strips * pairs * nr, 1)
        let staged = FloatBuffer(zeros: 2 * count)
        weight.withUnsafeBufferPointer(as: Float.self) { src in
            for b in 0..<blockStarts.count - 1 {
                let (first, length) = (blockStarts[b], blockStarts[b + 1] - blockStarts[b])
                for s in 0..<strips {
                    let block = staged.base + 2 * (first * strips + s * length) * nr
                    for j in 0..<min(nr, cout - s * nr) {
                        let filter = src.baseAddress! + (s * nr + j) * k
                        for q in 2 * first..<min(2 * (first + length), k) {
                            // Window value q is channel c of tap (di, dj); the tensor holds (c, di, dj).
                            let (tap, c) = (q / cin, q % cin)
                            block[((q / 2 - first) * nr + j) * 2 + q % 2] = filter[c * kh * kw + tap]
                        }
                    }
                }
            }
        }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64)
        graft_avx512bf16_convert(staged.base, 2 * count, packed.bindMemory(to: UInt16.self, capacity: 2 * count))
        return packed.bindMemory(to: UInt32.self, capacity: count)
    }

    /// Output height and width for an input of `h`×`w`, and the pads applied.
    func outputSize(_ h: Int, _ w: Int) -> (Int, Int, [Int]) {
        let (out, pads) = window.resolve(input: [h, w])
        return (out[0], out[1], pads)
    }

    /// The border an input needs for this convolution's padding (read in place).
    func border(pads: [Int]) -> Int { pads.max() ?? 0 }

    /// The tile grid, as counts of tiles along the panels (of `rowCount` pixels) and the strips.
    /// A tile's converted k-block (96 KiB: 32 panels of 128 pairs) stays in L2 while its strips'
    /// weights pass over it. With several threads, about four tiles a thread: more tiles of
    /// pixels where the pixels outnumber the output channels (each reads all the weights again),
    /// else of strips (each thread converts its pixels again).
    private func tiling(panels: Int) -> (panelTiles: Int, stripTiles: Int) {
        let widest = zip(blockStarts.dropFirst(), blockStarts).map { $0 - $1 }.max() ?? 1
        let perTile = max(1, (96 << 10) / (Self.rowCount * max(widest, 1) * 4))
        var tiles = (panels: (panels + perTile - 1) / perTile, strips: 1)
        let wanted = Parallel.threads > 1 ? 4 * Parallel.threads : 1
        let splitPixels = panels * Self.rowCount >= cout
        while tiles.panels * tiles.strips < wanted {
            if splitPixels && tiles.panels < panels || tiles.strips == strips {
                guard tiles.panels < panels else { break }
                tiles.panels += 1
            } else {
                tiles.strips += 1
            }
        }
        return (tiles.panels, tiles.strips)
    }

    /// `y = relu?(conv(x) + bias + residual?)` with bfloat16 products; `y` has the output size
    /// and `x` a border at least the pads.
    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        let (oh, ow, pads) = outputSize(x.h, x.w)
        precondition(x.c == cin && y.c == cout && y.h == oh && y.w == ow && x.border >= border(pads: pads))
        let pixels = x.n * oh * ow
        guard pixels > 0 else { return }
        let (mr, nr) = (Self.rowCount, Self.columns)
        let panels = (pixels + mr - 1) / mr
        let (panelTiles, stripTiles) = tiling(panels: panels)
        let largestTile = (panels + panelTiles - 1) / panelTiles * mr
        let (sh, sw) = (window.strides[0], window.strides[1])
        let offsets = zip(runRows, runFloats).map { $0 * x.rowPitch + $1 }
        // Plain values only inside the parallel loop: no reference counting per tile.
        let (weights, bias, k, pairs, strips, cout, runLength) = (UnsafePointer(self.weights), self.bias.map { UnsafePointer($0.base) },
                                                                  k, pairs, strips, cout, runLength)
        let blockStarts = self.blockStarts, blockCount = blockStarts.count - 1
        let pitch = Self.blockPairs
        let weightsEnd = weights + strips * pairs * nr
        let source = x.geometry, target = y.geometry, added = residual?.geometry
        offsets.withUnsafeBufferPointer { offsetBuffer in
            let offsets = offsetBuffer.baseAddress!
            Parallel.forEachRun(panelTiles * stripTiles) { run in
                let a = UnsafeMutablePointer<UInt32>.allocate(capacity: largestTile * pitch)
                let rows = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: 2 * largestTile)
                let outs = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: largestTile)
                defer { a.deallocate(); rows.deallocate(); outs.deallocate() }
                let res = rows + largestTile
                // The run's tiles of the same pixels (consecutive, strips after strips) together:
                // their pixels are converted once for all their strips.
                var tile = run.lowerBound
                while tile < run.upperBound {
                    let pt = tile / stripTiles, last = min(run.upperBound, (pt + 1) * stripTiles) - 1
                    let (p0, p1) = (pt * panels / panelTiles, (pt + 1) * panels / panelTiles)
                    let (s0, s1) = (tile % stripTiles * strips / stripTiles, (last % stripTiles + 1) * strips / stripTiles)
                    tile = last + 1
                    let count = min(p1 * mr, pixels) - p0 * mr
                    let q = p0 * mr
                    var (b, oy, ox) = (q / (oh * ow), q % (oh * ow) / ow, q % ow)
                    for i in 0..<count {
                        rows[i] = UnsafePointer(source.pixel(b, oy * sh - pads[0], ox * sw - pads[1]))
                        outs[i] = target.pixel(b, oy, ox)
                        res[i] = UnsafePointer(added?.pixel(b, oy, ox) ?? outs[i])
                        ox += 1
                        if ox == ow { (ox, oy) = (0, oy + 1) }
                        if oy == oh { (oy, b) = (0, b + 1) }
                    }
                    for block in 0..<blockCount {
                        let (first, length) = (blockStarts[block], blockStarts[block + 1] - blockStarts[block])
                        let (firstBlock, lastBlock) = (block == 0, block == blockCount - 1)
                        a.withMemoryRebound(to: UInt16.self, capacity: 2 * largestTile * pitch) {
                            graft_avx512bf16_pack(count, rows, offsets, runLength, 2 * first, min(2 * (first + length), k) - 2 * first, $0, 2 * pitch)
                        }
                        for s in s0..<s1 {
                            let column = s * nr
                            let strip = weights + (first * strips + s * length) * nr
                            // The weights the next call reads, a slice per panel: the next block
                            // in memory (another strip's, or the next k-block's).
                            let next = strip + length * nr
                            let fetch = FetchAhead(UnsafeRawPointer(next < weightsEnd ? next : strip),
                                                   lines: next < weightsEnd ? min(length * nr, weightsEnd - next) / 16 : 0, calls: p1 - p0)
                            for p in p0..<p1 {
                                let i = (p - p0) * mr
                                graft_avx512bf16_rows(length, a + i * pitch, pitch, strip, outs + i, column, min(mr, count - i), min(nr, cout - column),
                                                      !firstBlock, firstBlock ? bias.map { $0 + column } : nil,
                                                      lastBlock && added != nil ? UnsafePointer(res + i) : nil, lastBlock && relu,
                                                      fetch.start(p - p0), fetch.step(length))
                            }
                        }
                    }
                }
            }
        }
    }
}

extension BF16Conv: ConvolutionKernel {
    var multiplyAdds: Int { k }
    func border(h: Int, w: Int) -> Int { border(pads: outputSize(h, w).2) }
}
