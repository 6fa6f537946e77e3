import Foundation
import GraftCore

/// A convolution over channels-last activations, prepared once per model (its weights packed
/// for its micro-kernel): everything `Session` needs to run one, whichever method it uses. A new
/// method is a new conforming type and the planner's rule that picks it.
protocol ConvolutionKernel: AnyObject {
    /// Input channels (the input's pixel pitch) and output channels.
    var cin: Int { get }
    var cout: Int { get }
    /// The window with the weights' kernel size.
    var window: Window { get }
    /// Multiply-adds per output value that the convolution needs (what a profile counts).
    var multiplyAdds: Int { get }
    /// The zero border the input of an `h`×`w` image needs (the pads, read in place).
    func border(h: Int, w: Int) -> Int
    /// `y = relu?(conv(x) + bias + residual?)`; `y` has the output size and `x` at least the border.
    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool)
    /// The same over values of any element type the kernel takes (floats, unless it says otherwise).
    func run(image x: any ChannelsLastImage, into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?, relu: Bool)
    /// Packs the weights now, where a kernel packs them on first use (the planner calls it for
    /// the sizes it expects, in parallel).
    func prepare()
    /// Whether `run(_:plus:_:into:relu:)` takes `other`'s products into this one's sums: a
    /// kernel of the same kind and micro-kernel, ungrouped, with the same output channels and no
    /// bias of its own.
    func sums(with other: any ConvolutionKernel) -> Bool
    /// `y = relu?(conv(x) + other(x2) + bias)`, `other` one that `sums(with:)` takes, `x2` of
    /// the output's size through `other`'s window: one product and one epilogue, neither
    /// convolution's output stored on its own (a ResNet block's last convolution and its
    /// downsampling shortcut, added).
    func run(_ x: any ChannelsLastImage, plus other: any ConvolutionKernel, _ x2: any ChannelsLastImage, into y: any ChannelsLastImage, relu: Bool)
}

extension ConvolutionKernel {
    func prepare() {}

    func sums(with other: any ConvolutionKernel) -> Bool { false }

    func run(_ x: any ChannelsLastImage, plus other: any ConvolutionKernel, _ x2: any ChannelsLastImage, into y: any ChannelsLastImage, relu: Bool) {
        preconditionFailure("\(type(of: self)) does not sum another convolution's products")
    }

    func run(image x: any ChannelsLastImage, into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?, relu: Bool) {
        guard let x = x as? ChannelsLast, let y = y as? ChannelsLast else { preconditionFailure("a float kernel given bytes") }
        run(x, into: y, residual: residual.map { $0 as! ChannelsLast }, relu: relu)
    }

    /// Output height and width for an input of `h`×`w`, and the pads applied.
    func outputSize(_ h: Int, _ w: Int) -> (Int, Int, [Int]) {
        let (out, pads) = window.resolve(input: [h, w])
        return (out[0], out[1], pads)
    }
}

/// The cache sizes the kernels' tiles are planned around (one core's share of a Zen-class
/// processor: 48 KiB of L1 data, 1 MiB of L2), with room left for what else passes through.
public struct CacheBudget {
    /// Bytes of input a tile's output pixels read, kept in L2 while its strips of weights pass
    /// over them.
    var tileInput = 96 << 10
    /// Bytes of a block of weights that stays in L1 while a tile's pixels stream past it.
    var weightBlock = 32 << 10
    /// Weights up to this size stay in L2 from one tile to the next, so a product limited by its
    /// activations fetches those ahead instead.
    var weightsInL2 = 256 << 10
    /// Bytes of the transformed inputs and products of a block of Winograd tiles, kept in L2.
    var winogradBlock = 2 << 20
    /// Bytes of activations a run keeps alive at once, at most, where it can split a batch: three
    /// quarters of the last-level cache (`/sys`'s L3, else 32 MiB).
    public var activations = Self.lastLevelCache * 3 / 4

    /// The L3 size the kernel reports for CPU 0, in bytes.
    static let lastLevelCache: Int = {
        let path = "/sys/devices/system/cpu/cpu0/cache/index3/size"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
              let number = Int(text.filter(\.isNumber)) else { return 32 << 20 }
        return text.hasSuffix("M") ? number << 20 : text.hasSuffix("K") ? number << 10 : number
    }()

    /// The budget every kernel plans with.
    public static let standard = CacheBudget()

    /// The tile grid of a product over `cin` input channels a pixel: its pixels' windows (about
    /// `tileInput` of input, at least 96 pixels) stay in L2 while its strips of weights pass over
    /// them (`tiles(panels:strips:rowCount:panelsPerTile:outputChannels:)`).
    func tiles(panels: Int, strips: Int, rowCount mr: Int, inputChannels cin: Int, outputChannels cout: Int) -> TileGrid {
        Self.tiles(panels: panels, strips: strips, rowCount: mr, panelsPerTile: max(96 / mr, tileInput / (mr * cin * 4)), outputChannels: cout)
    }

    /// The tile grid of a product: panels of `rowCount` output pixels × strips of output
    /// channels, as counts of tiles along each (tile t of n covers `t·panels/n ..< (t+1)·panels/n`:
    /// sizes differ by one at most), tiles of `panelsPerTile` panels at most. With several
    /// threads there are at least four tiles per thread and a whole number of them (2-core Zen 5,
    /// f32 ResNet-50 at batch 1 on two threads: layer3's 1×1 products, 9 tiles before, 0.26 →
    /// 0.225 ms, the whole run 5 % faster), split first along the side that costs fewer
    /// extra reads: a split of the pixels reads the weights once more, a split of the strips the
    /// activations (or gathers them again).
    static func tiles(panels: Int, strips: Int, rowCount mr: Int, panelsPerTile: Int, outputChannels cout: Int) -> TileGrid {
        let perTile = max(1, min(panels, panelsPerTile))
        var panelTiles = (panels + perTile - 1) / perTile, stripTiles = 1
        let wanted = Parallel.threads > 1 ? 4 * Parallel.threads : 1
        let pixelsFirst = panels * mr >= cout
        // At least `wanted` tiles, and a whole number of them per thread (each takes a run of
        // consecutive tiles: 9 tiles on two threads left one waiting for a ninth of the work).
        let threads = Parallel.threads
        while (panelTiles * stripTiles < wanted || (panelTiles * stripTiles) % threads != 0) && (panelTiles < panels || stripTiles < strips) {
            if (pixelsFirst || stripTiles == strips) && panelTiles < panels { panelTiles += 1 } else { stripTiles += 1 }
        }
        return TileGrid(panels: panels, strips: strips, panelTiles: panelTiles, stripTiles: stripTiles)
    }
}

/// A product's tiles: `panelTiles` × `stripTiles` of `panels` panels of output pixels and
/// `strips` strips of output channels.
struct TileGrid {
    let panels, strips, panelTiles, stripTiles: Int

    var count: Int { panelTiles * stripTiles }

    /// The panels of the largest tile.
    var largestPanels: Int { (panels + panelTiles - 1) / panelTiles }

    /// Tile t's panels and strips (strips after strips of the same pixels, in order).
    @inline(__always)
    func bounds(_ t: Int) -> (p0: Int, p1: Int, s0: Int, s1: Int) {
        let (pt, st) = (t / stripTiles, t % stripTiles)
        return (pt * panels / panelTiles, (pt + 1) * panels / panelTiles, st * strips / stripTiles, (st + 1) * strips / stripTiles)
    }
}

/// A convolution's output pixels (numbered image by image, row by row) and where each one's
/// window, output and residual are, as a plain value for the kernels' tile loops.
struct OutputPixels {
    let source, target: ChannelsLast.Geometry
    let residual: ChannelsLast.Geometry?
    let height, width: Int
    /// Strides, and the pads before the first row and column.
    let strideY, strideX, top, left: Int

    init(_ x: ChannelsLast, _ y: ChannelsLast, residual: ChannelsLast?, window: Window, pads: [Int]) {
        (source, target, self.residual) = (x.geometry, y.geometry, residual?.geometry)
        (height, width) = (y.h, y.w)
        (strideY, strideX, top, left) = (window.strides[0], window.strides[1], pads[0], pads[1])
    }

    /// Output pixel q: image, row, column.
    @inline(__always)
    func place(_ q: Int) -> (Int, Int, Int) { (q / (height * width), q % (height * width) / width, q % width) }

    /// For the `count` pixels from `first`: the corner of each one's window in the input, its
    /// output, and its residual (the output itself where there is none).
    @inline(__always)
    func fill(from first: Int, count: Int, rows: UnsafeMutablePointer<UnsafePointer<Float>>,
              outs: UnsafeMutablePointer<UnsafeMutablePointer<Float>>, residuals: UnsafeMutablePointer<UnsafePointer<Float>>) {
        var (b, oy, ox) = place(first)
        for i in 0..<count {
            rows[i] = UnsafePointer(source.pixel(b, oy * strideY - top, ox * strideX - left))
            outs[i] = target.pixel(b, oy, ox)
            residuals[i] = UnsafePointer(residual?.pixel(b, oy, ox) ?? outs[i])
            ox += 1
            if ox == width {
                ox = 0
                oy += 1
                if oy == height { (oy, b) = (0, b + 1) }
            }
        }
    }
}
