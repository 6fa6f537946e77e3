import GraftCore

/// A grouped convolution over channels-last activations (ResNeXt's 3×3, depthwise and other
/// narrow groups) doing only each group's own multiply-adds, prepared once per model.
///
/// The grouped micro-kernel computes a panel of output pixels by a run of units of output
/// channels, each pixel's window read in place from the bordered input (row pointers and tap
/// offsets, as in `ChannelsLastConv`). Groups of at least a vector of outputs broadcast each of
/// the group's inputs against a unit of 1, 2 or 4 vectors of its weights; narrower groups (1, 2,
/// 4 or 8 channels in and out) multiply whole vectors of inputs by weights arranged so that one
/// rotation per accumulator, at the end, brings each product to its output's lane.
final class GroupedConv: ConvolutionKernel {
    let cin, cout, groups: Int
    let window: Window
    let multiplyAdds: Int
    let kernel: MicroKernel
    /// Input and output channels of each group.
    private let inPerGroup, outPerGroup: Int
    /// Output pixels per kernel call, and output channels per unit of packed weights.
    private let rowCount, unit: Int
    /// Units per strip: a strip's weights (within the budget's weight block, one unit at least)
    /// stay in L1 while a tile's panels pass under them.
    private let unitsPerStrip: Int
    /// Each tap's offset from the window's corner: input rows (scaled by the input's row pitch
    /// at run time), and floats along the row.
    private let tapRows, tapFloats: [Int]
    private let weight: Tensor
    private let biasTensor: Tensor?
    /// The packed weights and bias, made on the first run or by `prepare`.
    private var packing: (weights: FloatBuffer, bias: FloatBuffer?) { packed.value { pack() } }
    private let packed = Once<(weights: FloatBuffer, bias: FloatBuffer?)>()

    /// Whether the kernel runs a convolution: float weights `[Cout, Cin/groups, kH, kW]` in
    /// several groups of a shape the kernel set has a variant for (whole vectors of outputs per
    /// group, or 1, 2, 4, 8 channels in and out), and whole units of output channels.
    static func supports(weight: Tensor, bias: Tensor?, attributes: ConvAttributes, kernel: MicroKernel = .active) -> Bool {
        let groups = attributes.group
        guard groups > 1, weight.dtype == .float32, weight.rank == 4, weight.shape[0] >= groups, weight.shape[0] % groups == 0,
              bias.map({ $0.dtype == .float32 && $0.elementCount == weight.shape[0] }) ?? true else { return false }
        guard let shape = kernel.groupedShape(inPerGroup: weight.shape[1], outPerGroup: weight.shape[0] / groups) else { return false }
        return weight.shape[0] % shape.unit == 0
    }

    init(weight: Tensor, bias: Tensor?, attributes: ConvAttributes, kernel: MicroKernel = .active) {
        let (cout, inPerGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        groups = attributes.group
        (self.cout, self.inPerGroup, outPerGroup) = (cout, inPerGroup, cout / groups)
        cin = inPerGroup * groups
        var w = attributes.window
        w.kernel = [kh, kw]
        window = w
        multiplyAdds = inPerGroup * kh * kw
        self.kernel = kernel
        let shape = kernel.groupedShape(inPerGroup: inPerGroup, outPerGroup: outPerGroup)!
        (rowCount, unit) = shape
        unitsPerStrip = max(1, CacheBudget.standard.weightBlock / (multiplyAdds * shape.unit * 4))
        let taps = (0..<kh).flatMap { di in (0..<kw).map { dj in (di, dj) } }
        tapRows = taps.map { $0.0 * w.dilations[0] }
        tapFloats = taps.map { $0.1 * w.dilations[1] * inPerGroup * attributes.group }
        self.weight = weight
        biasTensor = bias
    }

    /// Packs the weights now (at load).
    func prepare() { _ = packing }

    /// Unit by unit, tap by tap: a wide unit (a group's outputs, `unit` of them) as [input
    /// channel of the group][unit's outputs]; a narrow one (a vector of groups of g) as
    /// [rotation d][lane p], lane p holding the weight of input p % g for output
    /// (p − p mod g) + (p mod g − d) mod g, which the kernel's rotation by d brings back to it.
    private func pack() -> (weights: FloatBuffer, bias: FloatBuffer?) {
        let (taps, unit, inPerGroup, outPerGroup, cout) = (window.kernel[0] * window.kernel[1], unit, inPerGroup, outPerGroup, cout)
        let perOutput = inPerGroup * taps
        let buffer = FloatBuffer(zeros: cout * perOutput)
        let packed = buffer.base
        weight.withUnsafeBufferPointer(as: Float.self) { src in
            let w = src.baseAddress!
            for u in 0..<cout / unit {
                let to = packed + u * perOutput * unit
                for t in 0..<taps {
                    for j in 0..<inPerGroup {
                        for p in 0..<unit {
                            if unit <= outPerGroup {
                                to[(t * inPerGroup + j) * unit + p] = w[(u * unit + p) * perOutput + j * taps + t]
                            } else {
                                // j is the rotation d here; the input is p's own lane.
                                let g = outPerGroup, lane = p % g
                                let o = u * unit + p - lane + (lane - j + g) % g
                                to[(t * g + j) * unit + p] = w[o * perOutput + lane * taps + t]
                            }
                        }
                    }
                }
            }
        }
        return (buffer, biasTensor.map { FloatBuffer($0, paddedTo: cout) })
    }

    func border(h: Int, w: Int) -> Int { outputSize(h, w).2.max() ?? 0 }

    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        let (oh, ow, pads) = outputSize(x.h, x.w)
        precondition(x.c == cin && y.c == cout && y.h == oh && y.w == ow && x.border >= (pads.max() ?? 0))
        let pixels = x.n * oh * ow
        guard pixels > 0 else { return }
        let mr = rowCount
        let panels = (pixels + mr - 1) / mr
        let units = cout / unit
        let grid = CacheBudget.standard.tiles(panels: panels, strips: (units + unitsPerStrip - 1) / unitsPerStrip, rowCount: mr,
                                              inputChannels: cin, outputChannels: cout)
        let offsets = zip(tapRows, tapFloats).map { $0 * x.rowPitch + $1 }
        // Plain values only inside the parallel loop: no reference counting per tile.
        let packing = self.packing
        let (kernel, packed, bias) = (self.kernel, UnsafePointer(packing.weights.base), packing.bias.map { UnsafePointer($0.base) })
        let (unit, unitsPerStrip, inPerGroup, outPerGroup, cout) = (unit, unitsPerStrip, inPerGroup, outPerGroup, cout)
        let unitFloats = multiplyAdds * unit
        let pixelPointers = OutputPixels(x, y, residual: residual, window: window, pads: pads)
        let hasResidual = residual != nil
        offsets.withUnsafeBufferPointer { offsetBuffer in
            let offsets = offsetBuffer.baseAddress!
            Parallel.forEachRun(grid.count) { run in for tile in run {
                let (p0, p1, s0, s1) = grid.bounds(tile)
                let capacity = (p1 - p0) * mr
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 2 * capacity) { rowBuffer in
                    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: capacity) { outBuffer in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: cout) { spare in
                            let rows = rowBuffer.baseAddress!, res = rows + capacity, outs = outBuffer.baseAddress!
                            let valid = min(capacity, pixels - p0 * mr)
                            pixelPointers.fill(from: p0 * mr, count: valid, rows: rows, outs: outs, residuals: res)
                            // The kernel computes whole panels: a last partial one reads its last
                            // pixel again and stores the extra rows in scratch.
                            for i in valid..<capacity {
                                (rows[i], res[i], outs[i]) = (rows[valid - 1], res[valid - 1], spare.baseAddress!)
                            }
                            // Strip by strip: a strip's weights stay in L1 while the tile's panels
                            // pass under them.
                            for s in s0..<s1 {
                                let u0 = s * unitsPerStrip
                                for p in p0..<p1 {
                                    let i = (p - p0) * mr
                                    kernel.runGrouped(inPerGroup: inPerGroup, outPerGroup: outPerGroup, taps: offsetBuffer.count, offsets,
                                                      rows + i, packed + u0 * unitFloats, outs + i, column: u0 * unit,
                                                      units: min(unitsPerStrip, units - u0), bias: bias,
                                                      residual: hasResidual ? UnsafePointer(res + i) : nil, relu: relu)
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}
