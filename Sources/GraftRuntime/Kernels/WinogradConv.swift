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
        Self.transformFilters(weight) { xi, o, c, u in packed[((xi * strips + o / nr) * cin + c) * nr + o % nr] = u }
        self.bias = bias.map { FloatBuffer($0, paddedTo: strips * nr) } ?? FloatBuffer(zeros: strips * nr)
    }

    /// The 16 transformed filters `U = G g Gᵀ` of `weight` `[Cout, Cin, 3, 3]`, handed to `store`
    /// value by value as (ξ, output channel, input channel, `U_ξ`), ξ = 4·row + column of `U`.
    static func transformFilters(_ weight: Tensor, _ store: (_ xi: Int, _ o: Int, _ c: Int, _ u: Float) -> Void) {
        let (cout, cin) = (weight.shape[0], weight.shape[1])
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
                        store(4 * i, o, c, a)
                        store(4 * i + 1, o, c, (a + b + d) / 2)
                        store(4 * i + 2, o, c, (a - b + d) / 2)
                        store(4 * i + 3, o, c, d)
                    }
                }
            }
        }
    }

    /// The border the input needs: the pad, and one more row or column where the tiles
    /// overhang an odd size.
    static func border(h: Int, w: Int) -> Int { h % 2 == 1 || w % 2 == 1 ? 2 : 1 }

    func border(h: Int, w: Int) -> Int { Self.border(h: h, w: w) }

    /// Whether the method pays at this size: with fewer tiles than a 7×7 image's 16 the product
    /// has too few rows for the 16/9 times larger transformed weights to be worth reading. (At 16
    /// tiles, ResNet-50's layer4 at batch 1, a block of all of them reads those weights once:
    /// 2-core Zen 5, 0.31 → 0.27 ms a layer in bf16 on two threads, 0.57 → 0.51 in f32.)
    static func worthIt(n: Int, h: Int, w: Int) -> Bool { tiles(n: n, h: h, w: w) >= 16 }

    /// The 2×2 output tiles of `n` images of `h`×`w`.
    static func tiles(n: Int, h: Int, w: Int) -> Int { n * ((h + 1) / 2) * ((w + 1) / 2) }

    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        precondition(x.c == cin && y.c == cout && y.h == x.h && y.w == x.w && x.border >= Self.border(h: x.h, w: x.w))
        // Tiles per block: the 16 transformed inputs and products of a block within the budget's
        // Winograd block (L2), or more under large weights.
        let mr = kernel.rowCount, threads = Parallel.threads
        let fit = WinogradBlocks.fit(tileBytes: 16 * 4 * (cin + cout), weightBytes: 16 * cin * cout * 4,
                                     budget: CacheBudget.standard.winogradBlock, rows: mr)
        let blocks = WinogradBlocks(n: x.n, h: x.h, w: x.w, fit: fit, rows: mr)
        guard blocks.tiles > 0 else { return }
        let (tiles, per, ownBlocks) = (blocks.tiles, blocks.per, blocks.ownBlocks)
        let nr = kernel.rowColumns
        let (cin, cout, strips, kernel) = (cin, cout, strips, kernel)
        let packed = UnsafePointer(packing.base), bias = UnsafePointer(bias.base)
        let source = x.geometry, target = y.geometry, added = residual?.geometry
        let (h, w) = (x.h, x.w)
        let channelBlocks = self.channelBlocks
        let offsets = (0..<16).flatMap { xi in channelBlocks.map { xi * per * cin + $0.start } }
        offsets.withUnsafeBufferPointer { offsetBuffer in
            let offsets = offsetBuffer.baseAddress!
            // Block `block`: transform its tiles in, multiply, transform out.
            blocks.forEach(scratch: { Scratch(per: per, cin: cin, cout: cout) }) { block, scratch, spread in
                let t0 = block * per, count = min(per, tiles - t0)
                guard count > 0 else { return }
                let (v, m, rows, outs) = (scratch.v, scratch.m, scratch.rows, scratch.outs)
                blocks.forEachTile(first: t0, count: count, height: h, width: w, spread: spread) { t, b, y0, x0, _, _ in
                    kernel.winogradInput(source.pixel(b, y0 - 1, x0 - 1), pixel: source.c, rowPitch: source.rowPitch,
                                         channels: cin, into: v + t * cin, planeStride: per * cin)
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
                blocks.forEachTile(first: t0, count: count, height: h, width: w, spread: spread) { t, b, y0, x0, rows, columns in
                    kernel.winogradOutput(m + t * cout, planeStride: per * cout, channels: cout, bias: bias,
                                          into: target.pixel(b, y0, x0), pixel: target.c, rowPitch: target.rowPitch,
                                          residual: added.map { UnsafePointer($0.pixel(b, y0, x0)) },
                                          residualPixel: added?.c ?? 0, residualRowPitch: added?.rowPitch ?? 0,
                                          rows: rows, columns: columns, relu: relu)
                }
            }
        }
    }

    /// One block's transformed inputs `v` (16 planes of tiles × Cin), products `m` (16 planes
    /// of tiles × Cout), and the micro-kernel's row pointers into them.
    private final class Scratch {
        let v, m: UnsafeMutablePointer<Float>
        let rows: UnsafePointer<UnsafePointer<Float>>
        let outs: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
        private let memory: ScratchMemory

        init(per: Int, cin: Int, cout: Int) {
            let pointer = MemoryLayout<UnsafePointer<Float>>.stride
            memory = ScratchMemory([(4, 16 * per * (cin + cout)), (pointer, per), (pointer, 16 * per)])
            v = memory.array(0, of: Float.self)
            m = v + 16 * per * cin
            let rows = memory.array(1, of: UnsafePointer<Float>.self)
            outs = memory.array(2, of: UnsafeMutablePointer<Float>.self)
            for t in 0..<per { rows[t] = UnsafePointer(v + t * cin) }
            for xi in 0..<16 { for t in 0..<per { outs[xi * per + t] = m + (xi * per + t) * cout } }
            self.rows = UnsafePointer(rows)
        }
    }
}
