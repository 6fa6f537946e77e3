import GraftCore

/// The tiles of a Winograd F(2×2, 3×3) run (2×2 outputs each) cut into blocks whose transformed
/// inputs and products stay in one core's cache, and the steps the f32 and bfloat16 kernels
/// share: the blocks' size, the loop over the blocks and the one over a block's tiles.
struct WinogradBlocks {
    /// Tile rows and columns per image, and tiles in all.
    let th, tw, tiles: Int
    /// Blocks, and tiles per block (a multiple of the micro-kernel's rows).
    let count, per: Int
    /// With a block for every thread, each thread runs whole blocks on its own (nothing crosses
    /// between the cores' caches); otherwise the threads share each block.
    let ownBlocks: Bool

    /// The blocks of `fit` tiles at most over `n` images of `h`×`w`, for a micro-kernel of `rows` rows.
    init(n: Int, h: Int, w: Int, fit: Int, rows mr: Int) {
        (th, tw) = ((h + 1) / 2, (w + 1) / 2)
        tiles = n * th * tw
        let threads = Parallel.threads
        var blocks = max(1, (tiles + fit - 1) / fit)
        ownBlocks = threads > 1 && blocks >= threads
        if ownBlocks { blocks = (blocks + threads - 1) / threads * threads }
        count = blocks
        per = ((tiles + blocks - 1) / blocks + mr - 1) / mr * mr
    }

    /// Tiles per block, a multiple of `rows`, for tiles whose transformed inputs and products take
    /// `tileBytes` and transformed weights of `weightBytes`: as many as fill `budget` (a core's
    /// L2), or, where the weights are the larger, as many as take twice the weights' bytes. Every
    /// block streams all the weights past its tiles, so where they outweigh a block's tiles (wide
    /// layers on few pixels: ResNet-50's last two stages) they, not the tiles, are what the cache
    /// should be spent on: blocks of 8 tiles under 8 MiB of weights left the products waiting on
    /// L3. Measured on bf16 (2-core Zen 5, ResNet-50): layer4's Winograd steps at batch 8 −33 %,
    /// layer3's −10 %, six of layer3's alone at batch 1 on two threads −27 %; 4× instead of 2×
    /// within the noise, one block for everything slower (layer1 and layer2, whose weights are small).
    static func fit(tileBytes: Int, weightBytes: Int, budget: Int, rows mr: Int) -> Int {
        max(mr, max(budget, 2 * weightBytes) / tileBytes / mr * mr)
    }

    /// Tile `q`'s image, tile row and tile column.
    @inline(__always) func place(_ q: Int) -> (b: Int, ty: Int, tx: Int) {
        let b = q / (th * tw), r = q % (th * tw)
        return (b, r / tw, r % tw)
    }

    /// Runs `body(block, scratch, spread)` for every block, `spread` running a loop of the
    /// block's over the threads or on the thread that has the block: with `ownBlocks` a run of
    /// blocks per thread, each thread its own scratch; otherwise one scratch, the blocks in turn.
    func forEach<Scratch>(scratch: () -> Scratch, _ body: (Int, Scratch, _ spread: (Int, (Int) -> Void) -> Void) -> Void) {
        if ownBlocks {
            Parallel.forEachRun(count) { run in
                let own = scratch()
                for block in run { body(block, own) { count, loop in for i in 0..<count { loop(i) } } }
            }
        } else {
            let shared = scratch()
            for block in 0..<count { body(block, shared) { Parallel.forEach($0, $1) } }
        }
    }

    /// `body(t, image, row, column, rows, columns)` for the `count` tiles from tile `first`: the
    /// tile's index in its block, its first output pixel (its input window starts a pixel up and
    /// left), and its outputs inside the image (of `h`×`w`); 8 tiles an index of `spread`.
    func forEachTile(first: Int, count: Int, height h: Int, width w: Int, spread: (Int, (Int) -> Void) -> Void,
                     _ body: (_ t: Int, _ b: Int, _ y0: Int, _ x0: Int, _ rows: Int, _ columns: Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            spread((count + 7) / 8) { chunk in
                for t in chunk * 8..<min(count, chunk * 8 + 8) {
                    let (b, ty, tx) = place(first + t)
                    let (y0, x0) = (2 * ty, 2 * tx)
                    body(t, b, y0, x0, min(2, h - y0), min(2, w - x0))
                }
            }
        }
    }
}
