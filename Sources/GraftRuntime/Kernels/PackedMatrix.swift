/// A matrix A `[rows, depth]` packed once into ⌈rows/6⌉ panels of 6 rows, k-major (for each k,
/// the panel's 6 values), as the micro-kernel reads it; and the tiled product with B packed in
/// strips of the kernel's width.
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

    /// `C[rows, columns] = A·B + bias, + residual, ReLU`, tiles spread over the threads.
    ///
    /// B is packed in strips of the active kernel's width n: column j of row kk at
    /// `b + (j/n)·n·depth + n·kk + j%n`. C and the residual have row stride `columns`.
    func multiply(_ b: UnsafePointer<Float>, columns: Int, into c: UnsafeMutablePointer<Float>,
                  bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool) {
        let kernel = MicroKernel.active, nr = kernel.columns
        let strips = (columns + nr - 1) / nr
        // Tiles of up to 8 panels (48 rows) by 128 columns: a 48×256 block of A and a 256-deep
        // strip of B stay in L2 and L1 while a tile is computed.
        let panelTile = 8, stripTile = max(1, 128 / nr)
        let rowTiles = (panelCount + panelTile - 1) / panelTile
        let columnTiles = (strips + stripTile - 1) / stripTile
        let a = UnsafePointer(panels)
        let (depth, rows, panelCount) = (self.depth, self.rows, self.panelCount)
        Parallel.forEach(rowTiles * columnTiles) { tile in
            let rt = tile / columnTiles, ct = tile % columnTiles
            let p0 = rt * panelTile, p1 = min(p0 + panelTile, panelCount)
            let s0 = ct * stripTile, s1 = min(s0 + stripTile, strips)
            var k0 = 0
            while k0 < depth {
                let kb = min(Self.kBlock, depth - k0)
                let last = k0 + kb == depth
                for s in s0..<s1 {
                    let column = s * nr
                    let columnsValid = min(nr, columns - column)
                    let bStrip = b + s * depth * nr + k0 * nr
                    for p in p0..<p1 {
                        let row = p * 6
                        let store = MicroKernel.Store(accumulate: k0 > 0, bias: k0 == 0 ? bias.map { $0 + row } : nil,
                                                      residual: last ? residual.map { $0 + row * columns + column } : nil,
                                                      relu: last && relu)
                        kernel.run(kb, a + p * 6 * depth + k0 * 6, bStrip, c + row * columns + column, columns,
                                   rowsValid: min(6, rows - row), columnsValid: columnsValid, store: store)
                    }
                }
                k0 += kb
            }
        }
    }
}
