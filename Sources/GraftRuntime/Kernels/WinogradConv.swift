import GraftCore

/// A 3×3 convolution of stride 1 and pad 1 by Winograd's minimal filtering F(2×2, 3×3), on
/// channels-last activations: each 2×2 block of outputs costs 16 multiply-adds per channel
/// pair instead of 36.
///
/// Per tile of 4×4 input pixels (2×2 outputs), the input is transformed (`Bᵀ d B`), the 16
/// transformed planes are multiplied by the 16 transformed weight matrices (`G g Gᵀ`, packed at
/// load) with the micro-kernel, and the products are transformed back (`Aᵀ m A`) with bias,
/// residual and ReLU. The transforms (in CKernels) work on vectors of channels; tiles are
/// processed in blocks whose transformed values stay in cache.
final class WinogradConv: ConvolutionKernel {
    let cin, cout: Int
    let window = Window(kernel: [3, 3], pads: [1, 1, 1, 1])
    /// The direct convolution's count (the method does fewer, but a profile compares the two).
    var multiplyAdds: Int { cin * 9 }
    let kernel: MicroKernel
    private let strips: Int
    /// Per ξ of the 16: `U_ξ` as `[Cin, Cout]`, packed in strips like `ChannelsLastConv`'s.
    private let packing: FloatBuffer
    /// Zero where the convolution has none.
    private let bias: FloatBuffer
    /// Channel blocks of the product's depth.
    private let channelBlocks: [(start: Int, length: Int)]

    /// Whether `Conv` with these weights and attributes is one this kernel runs.
    static func supports(weight: Tensor, attributes: ConvAttributes) -> Bool {
        let w = attributes.window
        return attributes.group == 1 && weight.dtype == .float32 && weight.rank == 4 && weight.shape[2] == 3 && weight.shape[3] == 3
            && weight.shape[0] % 16 == 0 && weight.shape[1] % 16 == 0 && w.strides == [1, 1] && w.dilations == [1, 1]
            && w.autoPad == .notSet && w.pads == [1, 1, 1, 1]
    }

    init(weight: Tensor, bias: Tensor?, kernel: MicroKernel = .active) {
        let (cout, cin) = (weight.shape[0], weight.shape[1])
        (self.cout, self.cin) = (cout, cin)
        self.kernel = kernel
        let nr = kernel.rowColumns
        let strips = (cout + nr - 1) / nr
        self.strips = strips
        let count = (cin + 255) / 256, per = (cin + count - 1) / count
        channelBlocks = stride(from: 0, to: cin, by: per).map { ($0, min(per, cin - $0)) }
        let total = 16 * strips * cin * nr
        let buffer = FloatBuffer(zeros: total)
        packing = buffer
        let packed = buffer.base
        weight.withUnsafeBufferPointer(as: Float.self) { src in
            for o in 0..<cout {
                for c in 0..<cin {
                    let g = src.baseAddress! + (o * cin + c) * 9
                    // U = G g Gᵀ with G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]: first G g (4×3), then
                    // each of its rows (a, b, d) times Gᵀ.
                    func row(_ r: Int, _ j: Int) -> Float {
                        let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j])
                        switch r {
                        case 0: return g0
                        case 1: return (g0 + g1 + g2) / 2
                        case 2: return (g0 - g1 + g2) / 2
                        default: return g2
                        }
                    }
                    for i in 0..<4 {
                        let (a, b, d) = (row(i, 0), row(i, 1), row(i, 2))
                        let u = (a, (a + b + d) / 2, (a - b + d) / 2, d)
                        let base = packed + ((i * 4 * strips + o / nr) * cin + c) * nr + o % nr
                        let step = strips * cin * nr
                        base[0] = u.0
                        base[step] = u.1
                        base[2 * step] = u.2
                        base[3 * step] = u.3
                    }
                }
            }
        }
        self.bias = bias.map { FloatBuffer($0, paddedTo: strips * nr) } ?? FloatBuffer(zeros: strips * nr)
    }

    /// The border the input needs: the pad, and one more row or column where the tiles
    /// overhang an odd size.
    static func border(h: Int, w: Int) -> Int { h % 2 == 1 || w % 2 == 1 ? 2 : 1 }

    func border(h: Int, w: Int) -> Int { Self.border(h: h, w: w) }

    /// Whether the method pays at this size: with few tiles (batch 1 at 7×7) the product has
    /// too few rows for the 16 times larger transformed weights to be worth reading.
    static func worthIt(n: Int, h: Int, w: Int) -> Bool { n * ((h + 1) / 2) * ((w + 1) / 2) >= 24 }

    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        precondition(x.c == cin && y.c == cout && y.h == x.h && y.w == x.w && x.border >= Self.border(h: x.h, w: x.w))
        let (th, tw) = ((x.h + 1) / 2, (x.w + 1) / 2)
        let tiles = x.n * th * tw
        guard tiles > 0 else { return }
        // Tiles per block: the 16 transformed inputs and products of a block within the budget's
        // Winograd block (L2). With a block for every thread, each thread runs whole blocks on its own
        // (nothing crosses between the cores' caches); otherwise the threads share each block.
        let mr = kernel.rowCount, threads = Parallel.threads
        let fit = max(mr, CacheBudget.standard.winogradBlock / (16 * 4 * (cin + cout)) / mr * mr)
        var blocks = (tiles + fit - 1) / fit
        let ownBlocks = threads > 1 && blocks >= threads
        if ownBlocks { blocks = (blocks + threads - 1) / threads * threads }
        let per = ((tiles + blocks - 1) / blocks + mr - 1) / mr * mr
        let nr = kernel.rowColumns
        let (cin, cout, strips, kernel) = (cin, cout, strips, kernel)
        let packed = UnsafePointer(packing.base), bias = UnsafePointer(bias.base)
        let source = x.geometry, target = y.geometry, added = residual?.geometry
        let (h, w) = (x.h, x.w)
        let channelBlocks = self.channelBlocks
        let offsets = (0..<16).flatMap { xi in channelBlocks.map { xi * per * cin + $0.start } }
        offsets.withUnsafeBufferPointer { offsetBuffer in
            let offsets = offsetBuffer.baseAddress!
            /// Block `block`: transform its tiles in, multiply, transform out; `spread` runs a
            /// loop over the threads or on the caller.
            func runBlock(_ block: Int, _ scratch: Scratch, spread: (Int, (Int) -> Void) -> Void) {
                let t0 = block * per, count = min(per, tiles - t0)
                guard count > 0 else { return }
                let (v, m, rows, outs) = (scratch.v, scratch.m, scratch.rows, scratch.outs)
                // Tile t of the block: image b, tile row ty, tile column tx.
                @inline(__always) func place(_ t: Int) -> (Int, Int, Int) {
                    let q = t0 + t, b = q / (th * tw), r = q % (th * tw)
                    return (b, r / tw, r % tw)
                }
                spread((count + 7) / 8) { chunk in
                    for t in chunk * 8..<min(count, chunk * 8 + 8) {
                        let (b, ty, tx) = place(t)
                        kernel.winogradInput(source.pixel(b, 2 * ty - 1, 2 * tx - 1), pixel: source.c, rowPitch: source.rowPitch,
                                             channels: cin, into: v + t * cin, planeStride: per * cin)
                    }
                }
                let panels = (count + mr - 1) / mr
                // The 16 · strips products in as many runs of consecutive items as there are
                // threads: each run's weights are one stretch of memory, which the kernels fetch
                // ahead block by block.
                let items = 16 * strips, parts = ownBlocks ? 1 : min(threads, items)
                spread(parts) { part in for item in Parallel.run(part, of: parts, in: items) {
                    let xi = item / strips, s = item % strips
                    let strip = packed + (xi * strips + s) * cin * nr
                    let column = s * nr
                    for (index, cb) in channelBlocks.enumerated() {
                        // The next block in memory (this strip's next channels, or the next item's
                        // first), fetched into L2 a slice per panel while this one is multiplied.
                        let fetch = FetchAhead(UnsafeRawPointer(strip + (cb.start + cb.length) * nr), lines: cb.length * nr / 16, calls: panels)
                        for p in 0..<panels {
                            kernel.runRows(segments: 1, length: cb.length, offsets + xi * channelBlocks.count + index,
                                           UnsafePointer(rows + p * mr), strip + cb.start * nr, outs + xi * per + p * mr,
                                           column: column, rowsValid: min(mr, count - p * mr), columnsValid: min(nr, cout - column),
                                           accumulate: index > 0, bias: nil, residual: nil, relu: false,
                                           ahead: fetch.start(p), aheadStep: fetch.step(cb.length))
                        }
                    }
                } }
                spread((count + 7) / 8) { chunk in
                    for t in chunk * 8..<min(count, chunk * 8 + 8) {
                        let (b, ty, tx) = place(t)
                        let (y0, x0) = (2 * ty, 2 * tx)
                        kernel.winogradOutput(m + t * cout, planeStride: per * cout, channels: cout, bias: bias,
                                              into: target.pixel(b, y0, x0), pixel: target.c, rowPitch: target.rowPitch,
                                              residual: added.map { UnsafePointer($0.pixel(b, y0, x0)) },
                                              residualPixel: added?.c ?? 0, residualRowPitch: added?.rowPitch ?? 0,
                                              rows: min(2, h - y0), columns: min(2, w - x0), relu: relu)
                    }
                }
            }
            if ownBlocks {
                // A run of blocks per thread, one scratch each.
                Parallel.forEachRun(blocks) { run in
                    let scratch = Scratch(per: per, cin: cin, cout: cout)
                    for block in run { runBlock(block, scratch) { count, body in for i in 0..<count { body(i) } } }
                }
            } else {
                let scratch = Scratch(per: per, cin: cin, cout: cout)
                for block in 0..<blocks { runBlock(block, scratch) { Parallel.forEach($0, $1) } }
            }
        }
    }

    /// One block's transformed inputs `v` (16 planes of tiles × Cin), products `m` (16 planes
    /// of tiles × Cout), and the micro-kernel's row pointers into them.
    private final class Scratch {
        let v, m: UnsafeMutablePointer<Float>
        let rows: UnsafeMutablePointer<UnsafePointer<Float>>
        let outs: UnsafeMutablePointer<UnsafeMutablePointer<Float>>

        init(per: Int, cin: Int, cout: Int) {
            v = .allocate(capacity: 16 * per * (cin + cout))
            m = v + 16 * per * cin
            rows = .allocate(capacity: per)
            outs = .allocate(capacity: 16 * per)
            for t in 0..<per { rows[t] = UnsafePointer(v + t * cin) }
            for xi in 0..<16 { for t in 0..<per { outs[xi * per + t] = m + (xi * per + t) * cout } }
        }

        deinit {
            v.deallocate()
            rows.deallocate()
            outs.deallocate()
        }
    }
}
