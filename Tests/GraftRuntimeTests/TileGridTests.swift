import GraftCore
@testable import GraftRuntime
import XCTest

/// How a product's output is cut into tiles for the threads: at least four tiles a thread, and a
/// whole number of them a thread. Each thread runs one run of consecutive tiles, so a tile more
/// than the threads share evenly leaves every other thread waiting for it (nine tiles on two
/// threads: a ninth of the layer).
final class TileGridTests: XCTestCase {
    /// (pixels, input channels, output channels): ResNet-50's 1×1 products at batch 1 (layer3's
    /// 1024 → 256 and 256 → 1024 on 14×14, layer4's 2048 → 512 on 7×7), layer1's at batch 1 and 8,
    /// and the stem's window of 147 values.
    static let shapes = [(196, 1024, 256), (196, 256, 1024), (49, 2048, 512), (3136, 64, 256), (25088, 256, 64), (12544, 147, 64)]

    func testTheFloatKernelsTilesShareEvenlyOverTheThreads() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let kernel = MicroKernel.active
        for threads in [2, 3, 4] {
            Parallel.threads = threads
            for (pixels, cin, cout) in Self.shapes {
                let panels = (pixels + kernel.rowCount - 1) / kernel.rowCount
                let strips = (cout + kernel.rowColumns - 1) / kernel.rowColumns
                let grid = CacheBudget.standard.tiles(panels: panels, strips: strips, rowCount: kernel.rowCount, inputChannels: cin, outputChannels: cout)
                let label = "\(pixels) pixels, \(cin) → \(cout), \(threads) threads: \(grid.panelTiles) × \(grid.stripTiles) tiles"
                XCTAssertGreaterThanOrEqual(grid.count, 4 * threads, label)
                XCTAssertEqual(grid.count % threads, 0, label)
            }
        }
    }

    func testTheReducedPrecisionTilesShareEvenlyOverTheThreads() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for threads in [2, 3, 4] {
            Parallel.threads = threads
            for (pixels, cin, cout) in Self.shapes {
                for (perWord, precision) in [(2, "bf16"), (4, "int8")] {
                    let product = try LaneProduct(weight: Tensor(zeros: [cout, cin, 1, 1]), attributes: ConvAttributes(window: Window(kernel: [1, 1])),
                                                  perWord: perWord, precision: precision)
                    let tiles = product.tiling(panels: (pixels + LaneProduct.rowCount - 1) / LaneProduct.rowCount)
                    let (count, label) = (tiles.panelTiles * tiles.stripTiles, "\(precision), \(pixels) pixels, \(cin) → \(cout), \(threads) threads")
                    XCTAssertGreaterThanOrEqual(count, 4 * threads, label)
                    XCTAssertEqual(count % threads, 0, label)
                }
            }
        }
    }
}
