import CKernels
import GraftCore

/// A 3×3 convolution of stride 1 and pad 1 by Winograd's F(2×2, 3×3) with bfloat16 products:
/// `WinogradConv`'s method and interface, its 16 products per tile taken on `vdpbf16ps` (AVX512_BF16,
/// f32 sums) after rounding both factors, the transformed input `Bᵀ d B` and the transformed
/// filter `G g Gᵀ`, to bfloat16.
///
/// The transforms stay in f32: the filters are transformed at load and rounded once; each tile's
/// input (floats, or bfloat16 widened exactly) is transformed in f32 and its 16 planes rounded to
/// pairs of bfloat16 as they are written into the tile's block; the products come back in f32 and
/// the output transform adds bias and residual (floats or bfloat16) and ReLU in f32, storing
/// floats or bfloat16 as the output is laid out. Each plane is a `BF16Conv` product: a row of
/// Cin/2 pairs per tile, 64 output channels a strip. A block's planes (bfloat16) and products
/// (f32) together fit in `blockBytes`, so that they stay in one core's L2 from one step to the next.
final class BF16WinogradConv {
    let cin, cout: Int
    /// Output-channel strips of `columns`, and pairs of input channels (a row of a plane).
    private let strips, pairs: Int
    /// Per ξ of the 16 and per strip, `U_ξ`'s pairs: `pairs` steps of `columns` 32-bit pairs
    /// (input channel 2t in the low half, 2t + 1 in the high one), zero past `cout`.
    private let weights: UnsafeMutablePointer<UInt32>
    /// Zero where the convolution has none.
    private let bias: FloatBuffer
    /// Blocks of the products' depth, in pairs: a strip's block (up to 128 pairs × 64 columns,
    /// 32 KiB) stays in L1 while a block's tiles pass under it.
    private let pairBlocks: [(start: Int, length: Int)]

    /// Output channels per strip and tiles per kernel call.
    static let columns = BF16Conv.columns, rowCount = BF16Conv.rowCount
    /// The bytes a block of tiles' transformed inputs and products take at most: half of the
    /// 1–2 MiB of L2 a core has, leaving room for the weights streaming past. (From 256 KiB to
    /// 2 MiB, ResNet-50's four shapes ran within the noise of each other on a 1 MiB L2.)
    static let blockBytes = 512 << 10

    /// Packs the transformed weights `[Cout, Cin, 3, 3]` in bfloat16.
    /// - Throws: `GraftError` where the processor lacks AVX512_BF16, or for weights this kernel
    ///   does not run (see `WinogradConv.supports`).
    init(weight: Tensor, bias: Tensor?, processorHasBF16: Bool = MicroKernel.supportsBF16) throws {
        try BF16Conv.requireBF16(processorHasBF16)
        guard weight.dtype == .float32, weight.rank == 4, weight.shape[2] == 3, weight.shape[3] == 3,
              weight.shape[0] % 16 == 0, weight.shape[1] % 16 == 0,
              bias.map({ $0.dtype == .float32 && $0.elementCount == weight.shape[0] }) ?? true else {
            throw GraftError(.badInput, "expected float32 3×3 weights [Cout, Cin, 3, 3] over multiples of 16 channels and a bias of Cout floats, "
                             + "got \(weight.dtype) \(weight.shape)", op: "Conv")
        }
        let (cout, cin) = (weight.shape[0], weight.shape[1])
        (self.cout, self.cin) = (cout, cin)
        let nr = Self.columns, pairs = cin / 2, strips = (cout + nr - 1) / nr
        (self.pairs, self.strips) = (pairs, strips)
        let count = (pairs + BF16Conv.blockPairs - 1) / BF16Conv.blockPairs, per = (pairs + count - 1) / count
        pairBlocks = stride(from: 0, to: pairs, by: per).map { ($0, min(per, pairs - $0)) }
        let total = 16 * strips * pairs * nr
        let staged = FloatBuffer(zeros: 2 * total), base = staged.base
        WinogradConv.transformFilters(weight) { xi, o, c, u in base[(((xi * strips + o / nr) * pairs + c / 2) * nr + o % nr) * 2 + c % 2] = u }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: total * 4, alignment: 64)
        graft_avx512bf16_convert(staged.base, 2 * total, packed.bindMemory(to: UInt16.self, capacity: 2 * total))
        weights = packed.bindMemory(to: UInt32.self, capacity: total)
        self.bias = bias.map { FloatBuffer($0, paddedTo: strips * nr) } ?? FloatBuffer(zeros: strips * nr)
    }

    deinit { weights.deallocate() }

    /// Tiles per block: as many as `blockBytes` holds (16 planes of Cin bfloat16s and 16 of Cout
    /// floats each), or more under large weights (`WinogradBlocks.fit`), a multiple of the kernel's rows.
    static func blockTiles(cin: Int, cout: Int) -> Int {
        WinogradBlocks.fit(tileBytes: 16 * (2 * cin + 4 * cout), weightBytes: 16 * cin * cout * 2, budget: blockBytes, rows: rowCount)
    }

    /// `y = relu?(conv(x) + bias + residual?)`, `y` the size of `x`, `x` a border of at least
    /// `WinogradConv.border(h:w:)`.
    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        run(image: x, into: y, residual: residual, relu: relu)
    }

    /// The same over floats or bfloat16 (`BF16Activation`): input, output and residual each either.
    func run(image x: any ChannelsLastImage, into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?, relu: Bool) {
        precondition(x.c == cin && y.c == cout && y.h == x.h && y.w == x.w && x.border >= WinogradConv.border(h: x.h, w: x.w))
        let mr = Self.rowCount, nr = Self.columns, threads = Parallel.threads
        let blocks = WinogradBlocks(n: x.n, h: x.h, w: x.w, fit: Self.blockTiles(cin: cin, cout: cout), rows: mr)
        guard blocks.tiles > 0 else { return }
        let (tiles, per, ownBlocks) = (blocks.tiles, blocks.per, blocks.ownBlocks)
        let (cin, cout, pairs, strips) = (cin, cout, pairs, strips)
        let weights = UnsafePointer(self.weights), bias = UnsafePointer(self.bias.base)
        let source = x.pixels, target = y.pixels, added = residual?.pixels
        let (h, w, pairBlocks) = (x.h, x.w, self.pairBlocks)
        // Block `block`: transform its tiles in, multiply, transform out.
        blocks.forEach(scratch: { Scratch(per: per, cin: cin, cout: cout) }) { block, scratch, spread in
            let t0 = block * per, count = min(per, tiles - t0)
            guard count > 0 else { return }
            let (v, m, outs) = (scratch.v, scratch.m, scratch.outs)
            let planes = UnsafeMutableRawPointer(v).assumingMemoryBound(to: UInt16.self)
            blocks.forEachTile(first: t0, count: count, height: h, width: w, spread: spread) { t, b, y0, x0, _, _ in
                graft_avx512bf16_winograd_input(source.pixel(b, y0 - 1, x0 - 1), source.elementSize == 2, source.c,
                                                source.rowPitch, cin, planes + t * cin, per * cin)
            }
            let panels = (count + mr - 1) / mr
            // The 16 · strips products in as many runs of consecutive items as there are
            // threads: each run's weights are one stretch of memory, which the kernel fetches
            // ahead block by block.
            let items = 16 * strips, parts = ownBlocks ? 1 : min(threads, items)
            spread(parts) { part in for item in Parallel.run(part, of: parts, in: items) {
                let xi = item / strips, s = item % strips
                let strip = weights + (xi * strips + s) * pairs * nr, plane = UnsafePointer(v + xi * per * pairs)
                let column = s * nr
                for (index, pb) in pairBlocks.enumerated() {
                    // The next block in memory (this strip's next pairs, or the next item's
                    // first), fetched into L2 a slice per panel while this one is multiplied.
                    let fetch = FetchAhead(UnsafeRawPointer(strip + (pb.start + pb.length) * nr), lines: pb.length * nr / 16, calls: panels)
                    let rows = outs + xi * per
                    graft_avx512bf16_rows(pb.length, plane + pb.start, pairs, strip + pb.start * nr,
                                          UnsafeRawPointer(rows).assumingMemoryBound(to: UnsafeMutableRawPointer.self),
                                          UnsafeRawPointer(rows).assumingMemoryBound(to: UnsafePointer<Float>.self), column,
                                          count, min(nr, cout - column), index > 0, nil, nil, false, false, false,
                                          fetch.base, fetch.perCall, fetch.step(pb.length))
                }
            } }
            blocks.forEachTile(first: t0, count: count, height: h, width: w, spread: spread) { t, b, y0, x0, rows, columns in
                graft_avx512bf16_winograd_output(m + t * cout, per * cout, cout, bias, target.pixel(b, y0, x0), target.elementSize == 2,
                                                 target.c, target.rowPitch, added.map { UnsafeRawPointer($0.pixel(b, y0, x0)) },
                                                 added?.elementSize == 2, added?.c ?? 0, added?.rowPitch ?? 0, rows, columns, relu)
            }
        }
    }

    /// One block's transformed inputs `v` (16 planes of tiles × Cin/2 pairs of bfloat16),
    /// products `m` (16 planes of tiles × Cout floats), and the kernel's row pointers into `m`.
    private final class Scratch {
        let v: UnsafeMutablePointer<UInt32>
        let m: UnsafeMutablePointer<Float>
        let outs: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
        private let memory: ScratchMemory

        init(per: Int, cin: Int, cout: Int) {
            memory = ScratchMemory([(4, 16 * per * cin / 2), (4, 16 * per * cout), (MemoryLayout<UnsafeMutablePointer<Float>>.stride, 16 * per)])
            v = memory.array(0, of: UInt32.self)
            m = memory.array(1, of: Float.self)
            outs = memory.array(2, of: UnsafeMutablePointer<Float>.self)
            for xi in 0..<16 { for t in 0..<per { outs[xi * per + t] = m + (xi * per + t) * cout } }
        }
    }
}

extension BF16WinogradConv: ConvolutionKernel {
    var window: Window { Window(kernel: [3, 3], pads: [1, 1, 1, 1]) }
    var multiplyAdds: Int { cin * 9 }
    func border(h: Int, w: Int) -> Int { WinogradConv.border(h: h, w: w) }
}
