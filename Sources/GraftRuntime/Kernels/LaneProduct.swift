import CKernels
import GraftCore

/// What the reduced-precision direct convolutions share (`BF16Conv`: pairs of bfloat16 in each
/// 32-bit lane, `Int8Conv`: quads of bytes): the window's order, the k-blocks, the packed
/// weights' order and the tile loop. Their kernels differ only in how a tile's windows are
/// gathered (converted or quantized) and which micro-kernel multiplies them.
///
/// Each output pixel's window is a row of `k` values in a fixed order, tap by tap (row-major over
/// the window) and channel by channel within a tap: `q = (di·kW + dj)·Cin + c`. The kernels read
/// them `perWord` at a time (a 32-bit word); `k` is padded with zeros to whole words. The weights
/// are packed once, the words of each 64-channel strip k-block by k-block; the activations of a
/// tile of pixels are gathered one k-block at a time (read in place from the bordered input, as
/// `ChannelsLastConv` reads them), and every strip of weights then passes over that block. A 1×1
/// of stride 1 over values already in the kernel's words reads them where they are, no copy
/// (`readsInPlace`).
struct LaneProduct {
    /// Input channels (the input's pixel pitch), output channels, window.
    let cin, cout, kh, kw: Int
    let window: Window
    /// Window values per 32-bit word, values in each output pixel's window, and the words the
    /// kernel reads (`k` rounded up to whole words).
    let perWord, k, words: Int
    /// The window as runs of consecutive values (floats or bytes): `runLength` values at each of
    /// `runRows` input rows and `runFloats` values from the window's corner. With few channels
    /// (the stem's 3) a run is a whole row of the window, else one tap's channels.
    let runLength: Int
    let runRows, runFloats: [Int]
    /// The k-blocks, in words: block b is words `blockStarts[b]..<blockStarts[b + 1]`. A block
    /// of a strip's weights (by default up to 128 words × 64 columns, 32 KiB) stays in L1 while a
    /// tile's pixels pass under it; int8's one block of all of k streams from L2.
    let blockStarts: [Int]
    let strips: Int

    /// Output channels per strip and output pixels per kernel call: the bf16 micro-kernel's
    /// shape, which the int8 one shares (`Int8Conv` checks).
    static let columns = Int(GRAFT_AVX512BF16_ROW_COLUMNS), rowCount = Int(GRAFT_AVX512BF16_ROW_COUNT)
    /// Words per k-block at most, by default.
    static let blockWords = 128
    /// Words per k-block at most in this product (the gathered rows' pitch).
    let blockWords: Int

    /// - Throws: `GraftError` for a grouped convolution or weights that are not `[Cout, Cin, kH, kW]`.
    init(weight: Tensor, attributes: ConvAttributes, perWord: Int, precision: String, blockWords: Int = Self.blockWords) throws {
        guard attributes.group == 1 else {
            throw GraftError(.badInput, "\(precision) convolutions are ungrouped, this one has \(attributes.group) groups", op: "Conv")
        }
        guard weight.rank == 4 else {
            throw GraftError(.badInput, "expected weights [Cout, Cin, kH, kW], got \(weight.shape)", op: "Conv")
        }
        let (cout, cin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        (self.cout, self.cin, self.kh, self.kw, self.perWord) = (cout, cin, kh, kw, perWord)
        var w = attributes.window
        w.kernel = [kh, kw]
        window = w
        k = cin * kh * kw
        words = (k + perWord - 1) / perWord
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
        let blockWords = min(blockWords, max(words, 1))
        self.blockWords = blockWords
        let (words, blockCount) = (words, (words + blockWords - 1) / blockWords)
        blockStarts = (0...blockCount).map { $0 * words / max(blockCount, 1) }
        strips = (cout + Self.columns - 1) / Self.columns
    }

    /// Elements of the packed weights (values, `perWord` to a word): whole strips of every word.
    var packedCount: Int { max(strips * words * Self.columns, 1) * perWord }

    /// Lays weights `[Cout, Cin, kH, kW]` out in the kernels' order: `put(index, element)` for
    /// window value q of each output channel, `element` its place in the weights (row-major),
    /// `index` its place in the packing; every other element stays as the caller filled it
    /// (zero). Block b of strip s starts `(blockStarts[b]·strips + s·length)·64` words in,
    /// `length` the block's words; a word holds `perWord` consecutive values of one column.
    /// Strips are laid out in parallel (each writes its own elements only, so `put` may be
    /// called from several threads at once).
    func layOut(_ put: (_ index: Int, _ element: Int) -> Void) {
        let (nr, per) = (Self.columns, perWord)
        Parallel.forEach(strips) { s in
            for b in 0..<blockStarts.count - 1 {
                let (first, length) = (blockStarts[b], blockStarts[b + 1] - blockStarts[b])
                let block = per * (first * strips + s * length) * nr
                for j in 0..<min(nr, cout - s * nr) {
                    let filter = (s * nr + j) * k
                    for q in per * first..<min(per * (first + length), k) {
                        // Window value q is channel c of tap (di, dj); the weights hold (c, di, dj).
                        let (tap, c) = (q / cin, q % cin)
                        put(block + ((q / per - first) * nr + j) * per + q % per, filter + c * kh * kw + tap)
                    }
                }
            }
        }
    }

    /// Whether the windows over `x` are its own pixels word for word, so that the kernel reads
    /// them in place instead of a gathered copy: a 1×1 of stride 1 without pads over an input
    /// without a border (consecutive output pixels are consecutive input pixels, across rows and
    /// images) that holds its values as the kernel reads them (`perWord` to a 32-bit word: bfloat16
    /// for bf16, bytes for int8), in whole words a pixel.
    func readsInPlace(_ x: any ChannelsLastImage) -> Bool {
        kh == 1 && kw == 1 && window.strides.allSatisfy { $0 == 1 } && x.border == 0 && x.pixels.elementSize * perWord == 4
            && cin % perWord == 0 && outputSize(x.h, x.w).2.allSatisfy { $0 == 0 }
    }

    /// Output height and width for an input of `h`×`w`, and the pads applied.
    func outputSize(_ h: Int, _ w: Int) -> (Int, Int, [Int]) {
        let (out, pads) = window.resolve(input: [h, w])
        return (out[0], out[1], pads)
    }

    /// The tile grid (`CacheBudget.tiles`): a tile's gathered k-block (at most `tileInput`)
    /// stays in L2 while its strips' weights pass over it.
    func tiling(panels: Int) -> TileGrid {
        let widest = zip(blockStarts.dropFirst(), blockStarts).map { $0 - $1 }.max() ?? 1
        return CacheBudget.tiles(panels: panels, strips: strips, rowCount: Self.rowCount,
                                 panelsPerTile: CacheBudget.standard.tileInput / (Self.rowCount * max(widest, 1) * 4), outputChannels: cout)
    }

    /// Gathers `count` pixels' window values `first..<first + length` (windows at `rows`, runs at
    /// `offsets` elements from them) into words at `a`, `pitch` words a pixel.
    typealias Gather = (_ count: Int, _ rows: UnsafePointer<UnsafeRawPointer>, _ offsets: UnsafePointer<Int>,
                        _ first: Int, _ length: Int, _ a: UnsafeMutablePointer<UInt32>, _ pitch: Int) -> Void

    /// One micro-kernel call: `words` k-words of `rows` pixels (at `a`, `pitch` words apart; a
    /// panel of `rowCount` at a time, each fetching ahead its slice of `fetch`) times
    /// the strip's weights at word `weights` (an offset into the packed weights), into `outs` from
    /// `column`, onto the sums at `sums` (the outputs themselves, or for an output of bfloat16 the
    /// float rows its partial sums are kept in; `outs` are those rows too but on the last call);
    /// `first`/`last` say whether the block is the first or last k-block; `residuals` are the
    /// pixels' residual rows (nil where there is no residual); `fetch` where to fetch ahead.
    typealias Product = (_ words: Int, _ a: UnsafePointer<UInt32>, _ pitch: Int, _ weights: Int,
                         _ outs: UnsafePointer<UnsafeMutableRawPointer>, _ sums: UnsafePointer<UnsafeMutableRawPointer>,
                         _ column: Int, _ rows: Int, _ columns: Int,
                         _ first: Bool, _ last: Bool, _ residuals: UnsafePointer<UnsafeRawPointer>?,
                         _ fetch: FetchAhead, _ aheadStep: Int) -> Void

    /// Runs the convolution tile by tile: `x` has a border at least the pads, `y` the output
    /// size (either may hold floats or bytes: the closures know which); `weights` is the packed
    /// weights' base (for fetching ahead).
    func run(_ x: any ChannelsLastImage, into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?, weights: UnsafeRawPointer,
             gather: @escaping Gather, product: @escaping Product) {
        Self.run([Term(product: self, input: x, weights: weights, gather: gather, multiply: product)], into: y, residual: residual)
    }

    /// One convolution of a summed product: its layout, its input, its packed weights' base,
    /// and its kernels.
    struct Term {
        let product: LaneProduct
        let input: any ChannelsLastImage
        let weights: UnsafeRawPointer
        let gather: Gather
        let multiply: Product
    }

    /// `y = Σ conv_t(x_t)` and the epilogue, over `terms` with the same output channels, each
    /// input of the output's size through its window: each tile's k-blocks of one term after the
    /// other's into the same sums (`first` is the first term's first block, `last` the last
    /// term's last), so that the epilogue runs once and no term's output is stored.
    static func run(_ terms: [Term], into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?) {
        let cout = terms[0].product.cout
        let pads = terms.map { term -> [Int] in
            let (oh, ow, pads) = term.product.outputSize(term.input.h, term.input.w)
            let x = term.input
            precondition(x.c == term.product.cin && term.product.cout == cout && y.c == cout && y.h == oh && y.w == ow
                         && x.n == y.n && x.border >= (pads.max() ?? 0))
            return pads
        }
        let (oh, ow) = (y.h, y.w)
        let pixels = y.n * oh * ow
        guard pixels > 0 else { return }
        let (mr, nr) = (rowCount, columns)
        let panels = (pixels + mr - 1) / mr
        // The tiling of the term with the widest k-block (the gathered tile's pitch).
        let widest = terms.max { $0.product.blockWords < $1.product.blockWords }!.product
        let grid = widest.tiling(panels: panels)
        let largestTile = grid.largestPanels * mr
        let pitch = widest.blockWords, strips = widest.strips
        let offsets = terms.map { term in zip(term.product.runRows, term.product.runFloats).map { $0 * term.input.pixels.rowPitch + $1 } }
        let inPlace = terms.map { $0.product.readsInPlace($0.input) }
        let target = y.pixels, added = residual?.pixels
        let termCount = terms.count
        // An output narrower than floats keeps the sums of all but the last call in rows of
        // floats, as wide as the strips a tile's pixels pass under.
        let partial = target.elementSize < 4 && terms.reduce(0, { $0 + $1.product.blockStarts.count - 1 }) > 1
        Parallel.forEachRun(grid.count) { run in
            let pointer = MemoryLayout<UnsafeRawPointer>.stride
            let memory = ScratchMemory([(4, largestTile * pitch), (pointer, (termCount + 1) * largestTile), (pointer, 2 * largestTile),
                                        (4, partial ? largestTile * strips * nr : 1)])
            defer { withExtendedLifetime(memory) {} }
            let (a, rows) = (memory.array(0, of: UInt32.self), memory.array(1, of: UnsafeRawPointer.self))
            let (outs, scratch) = (memory.array(2, of: UnsafeMutableRawPointer.self), memory.array(3, of: Float.self))
            let res = rows + termCount * largestTile, sums = partial ? outs + largestTile : outs
            // The run's tiles of the same pixels (consecutive, strips after strips) together:
            // their pixels are gathered once for all their strips.
            var tile = run.lowerBound
            while tile < run.upperBound {
                let last = min(run.upperBound, (tile / grid.stripTiles + 1) * grid.stripTiles) - 1
                let (p0, p1, s0, _) = grid.bounds(tile), s1 = grid.bounds(last).s1
                tile = last + 1
                let count = min(p1 * mr, pixels) - p0 * mr
                let q = p0 * mr
                if partial {
                    // Row i's columns from s0·64 at scratch + i·(s1 − s0)·64.
                    for i in 0..<count { sums[i] = UnsafeMutableRawPointer(scratch + (i * (s1 - s0) - s0) * nr) }
                }
                // Each term's window corners, the outputs and the residuals of the tile's pixels.
                for (t, term) in terms.enumerated() {
                    let source = term.input.pixels, window = term.product.window, pads = pads[t]
                    let (sh, sw) = (window.strides[0], window.strides[1])
                    let termRows = rows + t * largestTile
                    var (b, oy, ox) = (q / (oh * ow), q % (oh * ow) / ow, q % ow)
                    for i in 0..<count {
                        termRows[i] = UnsafeRawPointer(source.pixel(b, oy * sh - pads[0], ox * sw - pads[1]))
                        if t == 0 {
                            outs[i] = target.pixel(b, oy, ox)
                            res[i] = UnsafeRawPointer(added?.pixel(b, oy, ox) ?? outs[i])
                        }
                        ox += 1
                        if ox == ow { (ox, oy) = (0, oy + 1) }
                        if oy == oh { (oy, b) = (0, b + 1) }
                    }
                }
                for (t, term) in terms.enumerated() {
                    let product = term.product
                    let (k, words, per) = (product.k, product.words, product.perWord)
                    let blockStarts = product.blockStarts, blockCount = blockStarts.count - 1
                    let weightsEnd = strips * words * nr
                    offsets[t].withUnsafeBufferPointer { termOffsets in
                        for block in 0..<blockCount {
                            let (first, length) = (blockStarts[block], blockStarts[block + 1] - blockStarts[block])
                            let (firstBlock, lastBlock) = (t == 0 && block == 0, t == termCount - 1 && block == blockCount - 1)
                            // The block's words: read in place from the tile's first pixel, or gathered.
                            let (words, wordPitch): (UnsafePointer<UInt32>, Int)
                            if inPlace[t] {
                                (words, wordPitch) = (rows[t * largestTile].assumingMemoryBound(to: UInt32.self) + first, product.words)
                            } else {
                                term.gather(count, rows + t * largestTile, termOffsets.baseAddress!, per * first,
                                            min(per * (first + length), k) - per * first, a, pitch)
                                (words, wordPitch) = (UnsafePointer(a), pitch)
                            }
                            for s in s0..<s1 {
                                let column = s * nr
                                let strip = (first * strips + s * length) * nr
                                // The weights the next call reads, a slice per panel: the next block
                                // in memory (another strip's, or the next k-block's).
                                let next = strip + length * nr
                                let fetch = FetchAhead(term.weights + 4 * (next < weightsEnd ? next : strip),
                                                       lines: next < weightsEnd ? min(length * nr, weightsEnd - next) / 16 : 0, calls: p1 - p0)
                                term.multiply(length, words, wordPitch, strip, lastBlock ? outs : sums, sums, column, count, min(nr, cout - column),
                                              firstBlock, lastBlock, added != nil ? UnsafePointer(res) : nil, fetch, fetch.step(length))
                            }
                        }
                    }
                }
            }
        }
    }
}
