import GraftCore

/// Where the micro-kernel's B comes from.
enum MatrixB {
    /// Packed in strips of the kernel's width n: column j of row kk at `b + (j/n)·n·depth + n·kk + j%n`.
    case strips(UnsafePointer<Float>)
    /// Row kk is `base + rows[kk]` (shifted windows of a padded input, or the input channels): each
    /// tile copies the k-block of a strip into a small buffer as it needs it. With `paddedEnd`
    /// false, the last strip may not read past `columns` (the caller's tensor ends there).
    case rows(base: UnsafePointer<Float>, offsets: UnsafePointer<Int>, paddedEnd: Bool)
}

/// A matrix A `[rows, depth]` packed once into ⌈rows/6⌉ panels of 6 rows, k-major (for each k,
/// the panel's 6 values), as the micro-kernel reads it; and the tiled product with B.
final class PackedMatrix {
    let rows: Int
    let depth: Int
    let panelCount: Int
    private let panels: UnsafeMutablePointer<Float>
    static let kBlock = 256

    /// Packs `value(row, k)` for every row and k; rows past the end of the last panel are zero.
    init(rows: Int, depth: Int, _ value: (Int, Int) -> Float) {
        self.rows = rows
        self.depth = depth
        panelCount = (rows + 5) / 6
        let count = panelCount * 6 * depth
        panels = .allocate(capacity: count)
        panels.initialize(repeating: 0, count: count)
        for r in 0..<rows {
            let dst = panels + (r / 6) * 6 * depth + r % 6
            for kk in 0..<depth { dst[kk * 6] = value(r, kk) }
        }
    }

    deinit { panels.deallocate() }

    /// The tile grid (panels × strips per tile) that moves the least memory: B is read once per
    /// row of tiles and A once per column of tiles, so the larger operand gets the long side;
    /// a tile's block of A stays within L2; and there are enough tiles for every thread.
    func tiling(strips: Int, nr: Int) -> (panels: Int, strips: Int) {
        let aBytes = rows * depth, bBytes = strips * nr * depth
        let maxPanels = max(1, (256 * 1024) / (6 * Self.kBlock * 4))  // A block ≤ 256 KiB
        var panelTile = min(panelCount, maxPanels)
        var stripTile = max(1, 128 / nr)
        if aBytes > bBytes {
            // Weights dominate (small images, many channels): all columns in one tile row.
            stripTile = strips
            panelTile = min(panelTile, 8)
        }
        let wanted = 4 * Parallel.threads
        while ((panelCount + panelTile - 1) / panelTile) * ((strips + stripTile - 1) / stripTile) < wanted {
            if stripTile > 1 && (stripTile >= panelTile || panelTile == 1) { stripTile = (stripTile + 1) / 2 }
            else if panelTile > 1 { panelTile = (panelTile + 1) / 2 }
            else { break }
        }
        return (panelTile, stripTile)
    }

    /// `C[rows, columns] = A·B + bias, + residual, ReLU`, tiles spread over the threads. C and the
    /// residual have row stride `ldc` (default `columns`); when `ldc` covers whole strips, the
    /// last strip is stored whole too (its extra columns are scratch). `afterTile(rows, columns)`
    /// runs on each finished tile while it is still in cache (to move it where it belongs).
    func multiply(_ b: MatrixB, columns: Int, ldc: Int? = nil, into c: UnsafeMutablePointer<Float>,
                  bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool,
                  afterTile: ((Range<Int>, Range<Int>) -> Void)? = nil) {
        let kernel = MicroKernel.active, nr = kernel.columns
        let strips = (columns + nr - 1) / nr
        let ldc = ldc ?? columns
        let wholeStrips = ldc >= strips * nr
        let (panelTile, stripTile) = tiling(strips: strips, nr: nr)
        let rowTiles = (panelCount + panelTile - 1) / panelTile
        let columnTiles = (strips + stripTile - 1) / stripTile
        let a = UnsafePointer(panels)
        let (depth, rows, panelCount) = (self.depth, self.rows, self.panelCount)
        // Even k-blocks of at most kBlock (576 → 3 × 192, not 256 + 256 + 64).
        let blocks = (depth + Self.kBlock - 1) / Self.kBlock
        let blockDepth = (depth + blocks - 1) / blocks
        Parallel.forEach(rowTiles * columnTiles) { tile in
            let rt = tile / columnTiles, ct = tile % columnTiles
            let p0 = rt * panelTile, p1 = min(p0 + panelTile, panelCount)
            let s0 = ct * stripTile, s1 = min(s0 + stripTile, strips)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.kBlock * nr) { spare in
                let copy = spare.baseAddress!
                var k0 = 0
                while k0 < depth {
                    let kb = min(blockDepth, depth - k0)
                    let last = k0 + kb == depth
                    for s in s0..<s1 {
                        let column = s * nr
                        let columnsValid = min(nr, columns - column)
                        let bStrip: UnsafePointer<Float>
                        switch b {
                        case .strips(let packed):
                            bStrip = packed + s * depth * nr + k0 * nr
                        case .rows(let base, let offsets, let paddedEnd):
                            if columnsValid < nr && !paddedEnd {
                                for kk in 0..<kb {
                                    let src = base + offsets[k0 + kk] + column, d = copy + kk * nr
                                    for j in 0..<nr { d[j] = j < columnsValid ? src[j] : 0 }
                                }
                            } else {
                                for kk in 0..<kb { (copy + kk * nr).update(from: base + offsets[k0 + kk] + column, count: nr) }
                            }
                            bStrip = UnsafePointer(copy)
                        }
                        for p in p0..<p1 {
                            let row = p * 6
                            let store = MicroKernel.Store(accumulate: k0 > 0, bias: k0 == 0 ? bias.map { $0 + row } : nil,
                                                          residual: last ? residual.map { $0 + row * ldc + column } : nil,
                                                          relu: last && relu)
                            kernel.run(kb, a + p * 6 * depth + k0 * 6, bStrip, c + row * ldc + column, ldc,
                                       rowsValid: min(6, rows - row), columnsValid: wholeStrips ? nr : columnsValid, store: store)
                        }
                    }
                    k0 += kb
                }
            }
            afterTile?(p0 * 6..<min(p1 * 6, rows), s0 * nr..<min(s1 * nr, columns))
        }
    }
}
