import GraftCore
@testable import GraftRuntime
import GraftTestSupport
import XCTest

/// The int8 convolution computes what the reference evaluator's ops compute for the same QDQ
/// pattern (`DequantizeLinear` of the input, the convolution over dequantized weights, the output's
/// `QuantizeLinear → DequantizeLinear`, a residual, ReLU), over ResNet-50's shapes and odd ones.
/// With scales that are powers of two every product and sum is exact in f32 on both sides, so the
/// outputs must agree bit for bit; with arbitrary scales, within one step of the output's grid.
final class Int8ConvTests: XCTestCase {
    var random = SeededGenerator(seed: 8)

    override func setUpWithError() throws {
        try XCTSkipUnless(MicroKernel.supportsVNNI, "the processor lacks AVX512_VNNI")
    }

    /// An integer drawn from `range`.
    func integer(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(random.uniform(in: 0...0.9999) * Double(range.count)) }

    /// A quantized activation: its values `(q − z)·s` for integers q of the type.
    func activation(_ shape: [Int], _ q: Plan.Quantization) -> Tensor {
        let range = q.signed ? -128...127 : 0...255
        return Tensor(shape: shape, floats: (0..<shape.elementCount).map { _ in Float(integer(range) - q.zeroPoint) * q.scale })
    }

    /// Symmetric 8-bit weights with a scale per output channel: `q·s_c`, |q| ≤ 127, each channel
    /// reaching 127 (as a quantizer writes them).
    func weights(_ shape: [Int], scales: [Float]) -> Tensor {
        let per = shape.elementCount / shape[0]
        var values = (0..<shape.elementCount).map { _ in integer(-127...127) }
        for c in 0..<shape[0] { values[c * per + integer(0...per - 1)] = integer(0...1) == 0 ? -127 : 127 }
        return Tensor(shape: shape, floats: values.enumerated().map { Float($0.element) * scales[$0.offset / per] })
    }

    /// `Q → DQ` of `x` by the reference ops.
    func fakeQuantize(_ x: Tensor, _ q: Plan.Quantization) throws -> Tensor {
        let scale = Tensor(scalar: q.scale)
        var zero = Tensor(zeros: [], dtype: q.signed ? .int8 : .uint8)
        zero.withUnsafeMutableBytes { raw in
            if q.signed { raw.storeBytes(of: Int8(q.zeroPoint), as: Int8.self) } else { raw.storeBytes(of: UInt8(q.zeroPoint), as: UInt8.self) }
        }
        let quantized = try Op.quantizeLinear(axis: 1).evaluate([x, scale, zero])[0]
        return try Op.dequantizeLinear(axis: 1).evaluate([quantized, scale, zero])[0]
    }

    func referenceRun(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ attributes: ConvAttributes, residual: Tensor?, relu: Bool,
                      before: Plan.Quantization?, after: Plan.Quantization?) throws -> Tensor {
        var y = try Op.conv(attributes).evaluate([x, weight, bias])[0]
        if let before { y = try fakeQuantize(y, before) }
        if let residual { y = try Op.add.evaluate([y, residual])[0] }
        if relu { y = try Op.relu.evaluate([y])[0] }
        if let after { y = try fakeQuantize(y, after) }
        return y
    }

    /// The int8 kernel's result; with `bytes`, the input, the residual (`residualGrid`) and the
    /// output (where it ends on a grid) held as quantized bytes, as between two int8 steps.
    func int8Run(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ attributes: ConvAttributes, input: Plan.Quantization, residual: Tensor?,
                 residualGrid: Plan.Quantization, relu: Bool, before: Plan.Quantization?, after: Plan.Quantization?, bytes: Bool,
                 floatResidual: Bool = false) throws -> Tensor {
        let grid = try XCTUnwrap(Int8Conv.grid(weight), "the weights are on a grid")
        let conv = try Int8Conv(weight: weight, grid: grid, bias: bias, attributes: attributes, input: input, before: before, after: after)
        let (oh, ow, _) = conv.outputSize(x.shape[2], x.shape[3])
        let source = try ChannelsLast(x, border: conv.border(h: x.shape[2], w: x.shape[3]))
        let floats = try ChannelsLast(n: x.shape[0], h: oh, w: ow, c: weight.shape[0], border: 0)
        let added = try residual.map { try ChannelsLast($0, border: 0) }
        guard bytes else {
            conv.run(source, into: floats, residual: added, relu: relu)
            return floats.tensor()
        }
        let last = after ?? (residual == nil && !relu ? before : nil)
        let output: any ChannelsLastImage = try last.map { try QuantizedActivation(n: x.shape[0], h: oh, w: ow, c: weight.shape[0], border: 1, quantization: $0) } ?? floats
        conv.run(image: try QuantizedActivation(quantizing: source, input), into: output,
                 residual: try added.map { floatResidual ? $0 as any ChannelsLastImage : try QuantizedActivation(quantizing: $0, residualGrid) }, relu: relu)
        return try ((output as? QuantizedActivation)?.floats(border: 0) ?? floats).tensor()
    }

    /// (Cin, Cout, kernel, stride, pads, dilation, batch, h, w, residual, relu): the stem, the
    /// bottlenecks' 1×1 and 3×3 at every width, downsampling, a k of 4608 (several k-blocks),
    /// then odd channel counts (k not a whole number of quads, a partial strip), asymmetric pads,
    /// a dilation.
    static let shapes: [(Int, Int, Int, Int, [Int], Int, Int, Int, Int, Bool, Bool)] = [
        (3, 64, 7, 2, [3, 3, 3, 3], 1, 1, 30, 28, false, true),
        (64, 64, 1, 1, [0, 0, 0, 0], 1, 1, 14, 13, false, true),
        (64, 256, 1, 1, [0, 0, 0, 0], 1, 1, 14, 13, true, true),
        (256, 64, 1, 1, [0, 0, 0, 0], 1, 2, 9, 9, false, true),
        (64, 64, 3, 1, [1, 1, 1, 1], 1, 1, 13, 15, false, true),
        (128, 128, 3, 2, [1, 1, 1, 1], 1, 1, 15, 15, false, true),
        (256, 512, 1, 2, [0, 0, 0, 0], 1, 1, 14, 14, false, false),
        (512, 512, 3, 1, [1, 1, 1, 1], 1, 1, 5, 5, true, true),
        (35, 70, 3, 2, [1, 0, 2, 1], 2, 2, 9, 11, true, true),
        (33, 17, 1, 1, [0, 0, 0, 0], 1, 3, 5, 7, false, false),
        (5, 9, 5, 1, [2, 2, 2, 2], 1, 1, 6, 5, false, false),
    ]

    func check(exact: Bool) throws {
        for (number, (cin, cout, kernel, stride, pads, dilation, n, h, w, withResidual, relu)) in Self.shapes.enumerated() {
            let attributes = ConvAttributes(window: Window(kernel: [kernel, kernel], strides: [stride, stride], pads: pads,
                                                           dilations: [dilation, dilation]))
            // Unsigned and signed activations in turn, zero points inside the range; power-of-two
            // scales for the exact test, others for the bounded one.
            let signed = number % 2 == 1
            func scale(_ exponent: Int) -> Float { exact ? Float(sign: .plus, exponent: exponent, significand: 1) : Float(random.uniform(in: 0.3...0.9)) * Float(sign: .plus, exponent: exponent, significand: 1) }
            let input = Plan.Quantization(scale: scale(-5), zeroPoint: signed ? integer(-20...20) : integer(0...40), signed: signed)
            let x = activation([n, cin, h, w], input)
            let weight = weights([cout, cin, kernel, kernel], scales: (0..<cout).map { _ in scale(-integer(7...9)) })
            let bias = Tensor(shape: [cout], floats: (0..<cout).map { _ in Float(integer(-300...300)) * input.scale * 0x1p-8 })
            let before = Plan.Quantization(scale: scale(-1), zeroPoint: integer(100...140), signed: false)
            let after = relu ? Plan.Quantization(scale: scale(-1), zeroPoint: 0, signed: false) : nil
            let shape = try Op.conv(attributes).evaluate([x, weight, bias])[0].shape
            let residualGrid = Plan.Quantization(scale: before.scale, zeroPoint: 128, signed: false)
            let residual = withResidual ? activation(shape, residualGrid) : nil
            let label = "\(cin)→\(cout) \(kernel)×\(kernel)/\(stride) pads \(pads) dilation \(dilation) on \(n)×\(h)×\(w), \(signed ? "s8" : "u8")"
            let expected = try referenceRun(x, weight, bias, attributes, residual: residual, relu: relu, before: before, after: after).floats
            for bytes in [false, true] {
                let label = label + (bytes ? ", bytes in and out" : "")
                let fast = try int8Run(x, weight, bias, attributes, input: input, residual: residual, residualGrid: residualGrid, relu: relu,
                                       before: before, after: after, bytes: bytes).floats
                XCTAssertEqual(fast.count, expected.count, label)
                // Exact: bit for bit. Otherwise one step of the last grid: a sum that lands within
                // rounding of half a step may round either way.
                let step = (after ?? before).scale * (exact ? 0 : 1.001)
                let wrong = zip(fast, expected).enumerated().filter { !(abs($0.element.0 - $0.element.1) <= step) }
                XCTAssert(wrong.isEmpty, "\(label): \(wrong.count) of \(fast.count) outputs differ, the first \(wrong.first.map { "\($0.offset): \($0.element)" } ?? "")")
                if !exact {
                    let off = zip(fast, expected).filter { $0 != $1 }.count
                    XCTAssertLessThan(off, max(2, fast.count / 50), "\(label): \(off) outputs a step off")
                }
            }
        }
    }

    /// Weights are taken as 8-bit only where they are: a folded per-channel or per-tensor
    /// DequantizeLinear's floats give back their integers and scales; random floats, and 8-bit
    /// weights moved by a hundredth of a step, are not on a grid (they stay f32).
    func testWeightGridsAreFoundOnlyWhereTheWeightsLie() throws {
        let scales: [Float] = [0.0123, 0.5, 3e-4, 0.07]
        let perChannel = weights([4, 3, 3, 3], scales: scales)
        let grid = try XCTUnwrap(Int8Conv.grid(perChannel))
        for (c, scale) in scales.enumerated() { XCTAssertEqual(grid.scales[c], scale, accuracy: scale * 1e-6) }
        for (i, w) in perChannel.floats.enumerated() { XCTAssertEqual(Float(grid.values[i]) * grid.scales[i / 27], w, accuracy: abs(w) * 1e-6 + 1e-12) }
        // One scale for the tensor: the channels whose largest weight is under 127 steps too.
        var values = (0..<4 * 27).map { _ in integer(-60...60) }
        values[5] = 127
        let perTensor = Tensor(shape: [4, 3, 3, 3], floats: values.map { Float($0) * 0.02 })
        XCTAssertEqual(try XCTUnwrap(Int8Conv.grid(perTensor)).values.map(Int.init), values)
        XCTAssertNil(Int8Conv.grid(random.tensor([4, 3, 3, 3])))
        var moved = perChannel.floats
        moved[7] += scales[0] * 0.01
        XCTAssertNil(Int8Conv.grid(Tensor(shape: perChannel.shape, floats: moved)))
        // A channel of zeros is on every grid.
        var zeros = perChannel.floats
        for i in 27..<54 { zeros[i] = 0 }
        XCTAssertEqual(try XCTUnwrap(Int8Conv.grid(Tensor(shape: perChannel.shape, floats: zeros))).values[27..<54].allSatisfy { $0 == 0 }, true)
    }

    /// Residuals far outside the output's range (±3e9, ±infinity, NaN) saturate to its ends
    /// (NaN to the zero point) as the reference's QuantizeLinear does, whether the output is
    /// stored as floats or as bytes.
    func testExtremeResidualsSaturateAsTheReferenceDoes() throws {
        let attributes = ConvAttributes(window: Window(kernel: [1, 1]))
        let input = Plan.Quantization(scale: 0.25, zeroPoint: 3, signed: false)
        let x = activation([1, 8, 2, 3], input)
        let weight = weights([16, 8, 1, 1], scales: (0..<16).map { _ in 0x1p-7 })
        let extremes: [Float] = [3e9, -3e9, .infinity, -.infinity, .nan, 1e30]
        let residual = Tensor(shape: [1, 16, 2, 3], floats: (0..<96).map { extremes[$0 % extremes.count] })
        for after in [Plan.Quantization(scale: 0.5, zeroPoint: 0, signed: true), Plan.Quantization(scale: 0.5, zeroPoint: 0, signed: false)] {
            let before = Plan.Quantization(scale: 0.5, zeroPoint: 7, signed: false)
            let expected = try referenceRun(x, weight, nil, attributes, residual: residual, relu: false, before: before, after: after).floats
            for bytes in [false, true] {
                let got = try int8Run(x, weight, nil, attributes, input: input, residual: residual, residualGrid: before, relu: false,
                                      before: before, after: after, bytes: bytes, floatResidual: true).floats
                XCTAssertEqual(got, expected, "\(after.signed ? "s8" : "u8") output, \(bytes ? "bytes" : "floats")")
            }
        }
    }

    func testPowerOfTwoScalesAgreeBitForBit() throws { try check(exact: true) }

    /// Max pooling over bytes is the reference's max pooling of their values, exactly (the
    /// grid keeps the values' order): the stem's 3×3/2 pad 1, an asymmetric pad with a dilation,
    /// channels that are not a whole vector of bytes.
    func testMaxPoolOverBytesIsTheReferencesOverTheirValues() throws {
        for (c, h, w, window, signed) in [(64, 17, 15, Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]), false),
                                          (70, 9, 8, Window(kernel: [2, 3], strides: [1, 2], pads: [0, 1, 1, 0], dilations: [2, 1]), true)] {
            let grid = Plan.Quantization(scale: 0.37, zeroPoint: signed ? -5 : 7, signed: signed)
            let x = activation([2, c, h, w], grid)
            let expected = try Op.maxPool(window).evaluate([x])[0]
            let source = try QuantizedActivation(quantizing: try ChannelsLast(x, border: 1), grid)
            let (out, _) = window.resolve(input: [h, w])
            let y = try QuantizedActivation(n: 2, h: out[0], w: out[1], c: c, border: 0, quantization: grid)
            ChannelsLastPool.max(source, window: window, into: y)
            let got = try y.floats(border: 0).tensor()
            XCTAssertEqual(got.shape, expected.shape)
            XCTAssertEqual(got.floats, expected.floats, "\(c) channels, \(window.kernel) window")
        }
    }

    func testAnyScalesAgreeWithinOneStep() throws { try check(exact: false) }
}
