import CKernels
import GraftCore

/// A convolution of a quantized model computed in 8-bit integers (AVX512_VNNI's `vpdpbusd`): the
/// `DequantizeLinear → Conv → QuantizeLinear → DequantizeLinear` of a QDQ model as one step.
///
/// An input of floats (the values a `DequantizeLinear` makes, or a `QuantizeLinear`'s input) is
/// quantized once, border included (`u = round(x / s) + z`, to u8: an s8 input is shifted by
/// 128, its zero point with it); an input of bytes (another int8 step's output on this grid) is
/// read as it is; a tile's windows are gathered from those bytes, so the products are exact
/// sums of `u · w` in int32 over s8 weights, all of k in one block. The epilogue subtracts the zero
/// point's share (`z · Σw` per output channel: border pixels gather to `z`, so padding needs no
/// other care), scales by `s · s_w`, adds the bias, and then applies what the step absorbed:
/// the output's `QuantizeLinear → DequantizeLinear` (rounding to the output's grid), a residual,
/// ReLU, another quantization. The window's order and the tile loop are `LaneProduct`'s, four
/// values to a word.
final class Int8Conv {
    let product: LaneProduct
    /// The input's quantization, and the grids the epilogue rounds to before and after the residual.
    let input: Plan.Quantization
    let before, after: Plan.Quantization?
    /// The s8 weights in `LaneProduct`'s order, four k values of one column to a word.
    private let weights: UnsafeMutablePointer<UInt32>
    /// Per output channel, padded to whole strips: `−z·Σw`, `s·s_w` and the bias (the last two
    /// divided by `before`'s scale where there is one: the epilogue rounds them to its steps).
    private let correction: UnsafeMutablePointer<Int32>
    private let scale: FloatBuffer
    private let bias: FloatBuffer?

    /// Output channels per strip and output pixels per kernel call.
    static let columns = LaneProduct.columns, rowCount = LaneProduct.rowCount

    /// Weights on an 8-bit grid with zero points of 0: the integers (−128…127; −127…127 where
    /// found again from floats) and each output channel's scale.
    struct WeightGrid {
        let values: [Int8]
        let scales: [Float]
    }

    /// The 8-bit integers and scales that `weight` (float, `[Cout, …]`) is made of, as a
    /// `DequantizeLinear` of symmetric int8 weights makes them (ONNX Runtime's and `graft
    /// quantize`'s): per output channel (each channel's largest magnitude is 127 steps), or one
    /// scale for the tensor. Nil where the weights lie on neither grid (then they are not 8-bit
    /// weights, and the convolution stays in f32).
    static func grid(_ weight: Tensor) -> WeightGrid? {
        guard weight.dtype == .float32, weight.rank >= 1, weight.shape[0] > 0 else { return nil }
        let cout = weight.shape[0], per = weight.elementCount / cout
        return weight.withUnsafeBufferPointer(as: Float.self) { w -> WeightGrid? in
            // Each value within a thousandth of a step of an integer of at most 127 steps: a
            // folded DequantizeLinear's floats are q·s rounded (a relative 6e-8), and the scale
            // found again from the largest is within that of its own, so real 8-bit weights sit
            // within 1e-5 of a step; floats off the grid by more are not 8-bit weights. Channel
            // by channel, in parallel (ResNet-50 has 25 million weights).
            func fit(_ scales: [Float]) -> WeightGrid? {
                var values = [Int8](repeating: 0, count: w.count)
                var fits = [Bool](repeating: true, count: cout)
                values.withUnsafeMutableBufferPointer { values in
                    fits.withUnsafeMutableBufferPointer { fits in
                        Parallel.forEachRun(cout) { channels in
                            for c in channels {
                                let s = scales[c], range = c * per..<(c + 1) * per
                                guard s > 0 else { fits[c] = !range.contains { w[$0] != 0 }; continue }
                                // No early exit: the loop vectorizes; off-grid values clear the flag.
                                var onGrid = true
                                for i in range {
                                    let t = w[i] / s, q = t.rounded(.toNearestOrEven)
                                    onGrid = onGrid && abs(t - q) <= 0.001 && abs(q) <= 127
                                    values[i] = Int8(truncatingIfNeeded: Int32(max(-127, min(127, q.isFinite ? q : 0))))
                                }
                                fits[c] = onGrid
                            }
                        }
                    }
                }
                return fits.allSatisfy { $0 } ? WeightGrid(values: values, scales: scales) : nil
            }
            var perChannel = [Float](repeating: 0, count: cout)
            perChannel.withUnsafeMutableBufferPointer { largest in
                Parallel.forEachRun(cout) { channels in
                    for c in channels {
                        var m: Float = 0
                        for i in c * per..<(c + 1) * per { let a = abs(w[i]); m = a > m ? a : m }
                        largest[c] = m / 127
                    }
                }
            }
            if let grid = fit(perChannel) { return grid }
            let whole = perChannel.max() ?? 0
            return fit([Float](repeating: whole, count: cout))
        }
    }

    /// Packs the weights `grid` (of weights `[Cout, Cin, kH, kW]`) for the kernel.
    /// - Throws: `GraftError` where the processor lacks AVX512_VNNI (the kernels would stop it
    ///   with an illegal instruction), for a grouped convolution, or a bias that is not Cout floats.
    init(weight: Tensor, grid: WeightGrid, bias: Tensor?, attributes: ConvAttributes, input: Plan.Quantization,
         before: Plan.Quantization?, after: Plan.Quantization?, processorHasVNNI: Bool = MicroKernel.supportsVNNI) throws {
        try Self.requireVNNI(processorHasVNNI)
        precondition(Int(GRAFT_AVX512VNNI_ROW_COLUMNS) == LaneProduct.columns && Int(GRAFT_AVX512VNNI_ROW_COUNT) == LaneProduct.rowCount)
        // One k-block of all of k: the sums never leave the registers (an output of bytes has no room
        // for partial ones), the weights stream from L2 (measured as fast as 128-word blocks in L1).
        let product = try LaneProduct(weight: weight, attributes: attributes, perWord: 4, precision: "int8", blockWords: Int.max)
        self.product = product
        let (cout, k) = (product.cout, product.k)
        guard grid.values.count == cout * k, bias.map({ $0.dtype == .float32 && $0.elementCount == cout }) ?? true else {
            throw GraftError(.badInput, "expected weights [Cout, Cin, kH, kW] on an 8-bit grid and a bias of Cout floats, got \(weight.shape)", op: "Conv")
        }
        (self.input, self.before, self.after) = (input, before, after)
        let padded = product.strips * Self.columns
        let inverse = before.map { 1 / $0.scale } ?? 1
        self.bias = bias.map { bias in
            let buffer = FloatBuffer(bias, paddedTo: padded)
            for c in 0..<cout { buffer.base[c] *= inverse }
            return buffer
        }
        let count = product.packedCount
        let packed = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        packed.initializeMemory(as: Int8.self, repeating: 0, count: count)
        let bytes = packed.bindMemory(to: Int8.self, capacity: count)
        grid.values.withUnsafeBufferPointer { values in product.layOut { bytes[$0] = values[$1] } }
        weights = packed.bindMemory(to: UInt32.self, capacity: count / 4)
        correction = .allocate(capacity: padded)
        correction.initialize(repeating: 0, count: padded)
        scale = FloatBuffer(zeros: padded)
        let zero = input.zeroPoint + (input.signed ? 128 : 0)
        for c in 0..<cout {
            let sum = grid.values[c * k..<(c + 1) * k].reduce(0) { $0 + Int($1) }
            correction[c] = Int32(-zero * sum)
            scale.base[c] = input.scale * grid.scales[c] * inverse
        }
    }

    deinit {
        weights.deallocate()
        correction.deallocate()
    }

    /// - Throws: `GraftError` unless the processor has AVX512_VNNI.
    static func requireVNNI(_ processorHasVNNI: Bool) throws {
        guard processorHasVNNI else {
            throw GraftError(.invalidArgument, "int8 convolutions need a processor with AVX512_VNNI (avx512_vnni in /proc/cpuinfo's flags), which this one lacks: run in f32", op: "Conv")
        }
    }

    /// The step's output: the quantized convolution plus bias, through `before`, the residual,
    /// ReLU and `after`; `y` has the output size and `x` a border at least the pads. `x` is
    /// floats (quantized here, once) or bytes of the input's quantization; `y` floats, or bytes
    /// of the last grid's quantization; the residual either.
    func run(image x: any ChannelsLastImage, into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?, relu: Bool) {
        let source: QuantizedActivation
        if let bytes = x as? QuantizedActivation {
            precondition(bytes.quantization == input, "an input of bytes on another grid")
            source = bytes
        } else {
            // swiftlint:disable:next force_try
            source = try! QuantizedActivation(quantizing: x as! ChannelsLast, input)
        }
        let outputBytes = (y as? QuantizedActivation)?.quantization
        precondition(outputBytes == nil || outputBytes == (after ?? before), "an output of bytes on another grid than the last")
        let residualBytes = (residual as? QuantizedActivation)?.quantization
        let weights = UnsafePointer(self.weights)
        let runLength = product.runLength
        // The unit of the rounded sums (`before`'s steps, or 1) and of what is stored (the last
        // grid's steps, or 1 for floats that end on no grid).
        let unitA = before?.scale ?? 1
        let unit = after?.scale ?? (outputBytes != nil ? unitA : 1)
        let (low, high) = ((before ?? input).steps, (after ?? input).steps)
        var epilogue = graft_int8_epilogue(
            correction: correction, scale: scale.base, bias: bias.map { UnsafePointer($0.base) },
            before: before != nil, before_low: low.lowerBound, before_high: low.upperBound, factor: unitA / unit,
            residual_bytes: residualBytes != nil, residual_zero: Int32(residualBytes?.zeroByte ?? 0),
            residual_factor: (residualBytes?.scale ?? 1) / unit, relu: relu,
            after: after != nil, after_low: high.lowerBound, after_high: high.upperBound, unit: unit,
            output_bytes: outputBytes != nil, output_zero: Int32(outputBytes?.zeroByte ?? 0))
        withUnsafePointer(to: &epilogue) { base in
            let base = UnsafeRawPointer(base)
            product.run(source, into: y, residual: residual, weights: UnsafeRawPointer(weights), gather: { count, rows, offsets, first, length, a, pitch in
                a.withMemoryRebound(to: UInt8.self, capacity: 4 * count * pitch) {
                    graft_avx512vnni_gather(count, UnsafeRawPointer(rows).assumingMemoryBound(to: UnsafePointer<UInt8>.self), offsets,
                                            runLength, first, length, $0, 4 * pitch)
                }
            }, product: { words, a, pitch, strip, outs, _, column, rows, columns, _, _, residuals, fetch, step in
                // The epilogue's per-channel arrays from this strip's first column.
                var e = base.load(as: graft_int8_epilogue.self)
                e.correction += column
                e.scale += column
                e.bias = e.bias.map { $0 + column }
                let b = UnsafeRawPointer(weights + strip).assumingMemoryBound(to: Int32.self)
                let outs = UnsafeRawPointer(outs).assumingMemoryBound(to: UnsafeMutableRawPointer.self)
                graft_avx512vnni_rows(words, a, pitch, b, outs, column, rows, columns, &e,
                                      residuals.map { UnsafeRawPointer($0).assumingMemoryBound(to: UnsafeRawPointer.self) }, fetch.base, fetch.perCall, step)
            })
        }
    }
}

extension Int8Conv: ConvolutionKernel {
    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        run(image: x, into: y, residual: residual, relu: relu)
    }

    var cin: Int { product.cin }
    var cout: Int { product.cout }
    var window: Window { product.window }
    var multiplyAdds: Int { product.k }
    func border(h: Int, w: Int) -> Int { product.outputSize(h, w).2.max() ?? 0 }
}

extension Plan.Quantization {
    /// The steps of the grid that the type's range allows: its integers less the zero point.
    var steps: ClosedRange<Float> {
        let range = Reference.quantizedRange(signed ? .int8 : .uint8)!
        return (range.lowerBound - Float(zeroPoint))...(range.upperBound - Float(zeroPoint))
    }
}
