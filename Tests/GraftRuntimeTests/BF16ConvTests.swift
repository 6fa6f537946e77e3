import GraftCore
@testable import GraftRuntime
import GraftTestSupport
import XCTest

/// The bfloat16 convolution computes what the f32 reference evaluator does, within the error
/// bfloat16's 8-bit significands allow, over ResNet-50's convolution shapes; and where every sum
/// is exact in f32, exactly what the reference computes from the operands rounded to bfloat16
/// by round-to-nearest-even, so that a wrong rounding shows as such and not as a tolerance miss.
final class BF16ConvTests: XCTestCase {
    var random = SeededGenerator(seed: 16)

    override func setUpWithError() throws {
        try XCTSkipUnless(MicroKernel.supportsBF16, "the processor lacks AVX512_BF16")
    }

    /// `relu?(conv(x) + bias + residual?)` by the bfloat16 kernel, over channels-last copies of the tensors.
    func bf16Run(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ attributes: ConvAttributes, residual: Tensor?, relu: Bool) throws -> Tensor {
        let conv = try BF16Conv(weight: weight, bias: bias, attributes: attributes)
        let (oh, ow, _) = conv.outputSize(x.shape[2], x.shape[3])
        let input = try ChannelsLast(x, border: conv.border(h: x.shape[2], w: x.shape[3]))
        let output = try ChannelsLast(n: x.shape[0], h: oh, w: ow, c: weight.shape[0], border: 0)
        conv.run(input, into: output, residual: try residual.map { try ChannelsLast($0, border: 0) }, relu: relu)
        return output.tensor()
    }

    /// The same by the reference evaluator's ops (in f32).
    func referenceRun(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ attributes: ConvAttributes, residual: Tensor?, relu: Bool) throws -> Tensor {
        var y = try Op.conv(attributes).evaluate([x, weight, bias])[0]
        if let residual { y = try Op.add.evaluate([y, residual])[0] }
        return relu ? try Op.relu.evaluate([y])[0] : y
    }

    /// `f` cut to bfloat16 by dropping its low 16 bits: the wrong rounding the exact test must tell apart.
    func truncated(_ f: Float) -> Float { Float(bitPattern: f.bitPattern & 0xFFFF_0000) }

    func testResNet50ShapesAgreeWithTheReferenceWithinBF16Error() throws {
        // (Cin, Cout, kernel, stride, pads [top, left, bottom, right], dilation, batch, h, w,
        // residual, relu): the stem (7×7/2 over 3 channels), the bottlenecks' 1×1 (narrowing,
        // widening with the residual, downsampling with stride 2), their 3×3 of stride 1 and 2
        // with the widths of every layer, at smaller sizes; then odd channel counts and sizes,
        // asymmetric pads and a dilation (a partial strip of outputs, odd window lengths).
        let cases: [(Int, Int, Int, Int, [Int], Int, Int, Int, Int, Bool, Bool)] = [
            (3, 64, 7, 2, [3, 3, 3, 3], 1, 1, 40, 38, false, true),
            (64, 64, 1, 1, [0, 0, 0, 0], 1, 1, 14, 13, false, true),
            (64, 256, 1, 1, [0, 0, 0, 0], 1, 1, 14, 13, true, true),
            (256, 64, 1, 1, [0, 0, 0, 0], 1, 2, 9, 9, false, true),
            (64, 64, 3, 1, [1, 1, 1, 1], 1, 1, 13, 15, false, true),
            (128, 128, 3, 2, [1, 1, 1, 1], 1, 1, 15, 15, false, true),
            (256, 512, 1, 2, [0, 0, 0, 0], 1, 1, 14, 14, false, false),
            (256, 256, 3, 1, [1, 1, 1, 1], 1, 1, 7, 7, false, true),
            (512, 512, 3, 1, [1, 1, 1, 1], 1, 1, 5, 5, true, true),
            (1024, 2048, 1, 2, [0, 0, 0, 0], 1, 1, 6, 6, false, false),
            (35, 70, 3, 2, [1, 0, 2, 1], 2, 2, 9, 11, true, true),
            (33, 17, 1, 1, [0, 0, 0, 0], 1, 3, 5, 7, false, false),
            (5, 9, 5, 1, [2, 2, 2, 2], 1, 1, 6, 5, false, false),
        ]
        for (cin, cout, kernel, stride, pads, dilation, n, h, w, withResidual, relu) in cases {
            let attributes = ConvAttributes(window: Window(kernel: [kernel, kernel], strides: [stride, stride], pads: pads,
                                                           dilations: [dilation, dilation]))
            let x = random.tensor([n, cin, h, w]), weight = random.tensor([cout, cin, kernel, kernel]), bias = random.tensor([cout])
            let outputShape = try Op.conv(attributes).evaluate([x, weight, bias])[0].shape
            let residual = withResidual ? random.tensor(outputShape) : nil
            let label = "\(cin)→\(cout) \(kernel)×\(kernel)/\(stride) pads \(pads) dilation \(dilation) on \(n)×\(h)×\(w)"
            let fast = try bf16Run(x, weight, bias, attributes, residual: residual, relu: relu)
            let reference = try referenceRun(x, weight, bias, attributes, residual: residual, relu: relu)
            XCTAssertEqual(fast.shape, reference.shape, label)
            // Each product's factors are off by 2⁻⁸ of themselves at most, so the product by
            // 2⁻⁷ + 2⁻¹⁶ of |a·w|; the f32 sums of both sides (k products, the bias, the residual)
            // by (k + 3)·2⁻²⁴ of what they add, each; ReLU takes nothing away from the bound.
            let magnitudes = try Op.conv(attributes).evaluate([mapped(x, abs), mapped(weight, abs), nil])[0].floats
            let k = Float(cin * kernel * kernel)
            let (rounding, summing) = (Float(0x1p-7) + 0x1p-16, 2 * (k + 3) * 0x1p-24 * 1.01)
            let extra = zip(residual?.floats ?? Array(repeating: 0, count: magnitudes.count), 0..<magnitudes.count).map { r, i in
                abs(r) + abs(bias.floats[i / (outputShape[2] * outputShape[3]) % cout])
            }
            for (i, (f, r)) in zip(fast.floats, reference.floats).enumerated() {
                let bound = (rounding + summing) * magnitudes[i] * 1.01 + summing * extra[i]
                if !(abs(f - r) <= bound) {
                    XCTFail("\(label): output \(i) is \(f), the reference \(r), beyond the bound \(bound)")
                    break
                }
            }
        }
    }

    func testExactSumsMatchRoundToNearestEvenBitForBit() throws {
        // Operands ±[1, 2) round to multiples of 2⁻⁷ below 2, so their products are multiples of
        // 2⁻¹⁴ below 4 and every partial sum of fewer than 256 of them, plus a bias and a residual
        // of multiples of 2⁻¹⁴ below 2, is exact in f32: the order of the sums does not matter,
        // and the kernel must give exactly the reference over the rounded operands. Ties (odd
        // multiples of 2⁻⁸) round down or up by the parity of the bit above.
        func operand() -> Float {
            let magnitude = random.uniform(in: 0...1) < 0.25 ? 1 + Float(2 * Int(random.uniform(in: 0...63.99)) + 1) * 0x1p-8
                                                             : Float(random.uniform(in: 1...1.99))
            return random.uniform(in: 0...1) < 0.5 ? -magnitude : magnitude
        }
        func lattice(_ count: Int) -> [Float] { (0..<count).map { _ in Float(Int(random.uniform(in: -16384...16383.99))) * 0x1p-14 } }
        // (Cin, Cout, kernel, stride, pad, batch, h, w): an odd window of 45 (a zero pairs the
        // last value) with a partial strip of 70 outputs; the stem's fused 7-wide window rows.
        for (cin, cout, kernel, stride, pad, n, h, w) in [(5, 70, 3, 1, 1, 2, 5, 6), (3, 64, 7, 2, 3, 1, 11, 13), (9, 16, 1, 2, 0, 1, 7, 7)] {
            let attributes = ConvAttributes(window: Window(kernel: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad]))
            let x = Tensor(shape: [n, cin, h, w], floats: (0..<n * cin * h * w).map { _ in operand() })
            let weight = Tensor(shape: [cout, cin, kernel, kernel], floats: (0..<cout * cin * kernel * kernel).map { _ in operand() })
            let bias = Tensor(shape: [cout], floats: lattice(cout))
            let shape = try Op.conv(attributes).evaluate([x, weight, bias])[0].shape
            let residual = Tensor(shape: shape, floats: lattice(shape.elementCount))
            let label = "\(cin)→\(cout) \(kernel)×\(kernel)/\(stride)"
            let fast = try bf16Run(x, weight, bias, attributes, residual: residual, relu: true).floats
            let nearestEven = try referenceRun(mapped(x, bfloat16), mapped(weight, bfloat16), bias, attributes, residual: residual, relu: true).floats
            let cut = try referenceRun(mapped(x, truncated), mapped(weight, truncated), bias, attributes, residual: residual, relu: true).floats
            XCTAssertNotEqual(nearestEven, cut, "\(label): the operands do not tell the roundings apart")
            let wrong = zip(fast, nearestEven).enumerated().filter { $0.element.0 != $0.element.1 }
            XCTAssert(wrong.isEmpty, "\(label): \(wrong.count) outputs differ from round-to-nearest-even's, the first \(wrong.first.map { "\($0.offset): \($0.element)" } ?? "")")
        }
    }

    func testEveryThreadCountGivesTheSameBits() throws {
        // Tiles split the pixels or the strips differently, never an output's sum: a 3×3 over
        // 198 pixels (tiles of pixels), a 1×1 to 5 strips over 9 pixels (tiles of strips, a
        // thread's run of them over the same pixels converting them once).
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for (n, cin, cout, kernel, h, w) in [(2, 96, 160, 3, 11, 9), (1, 64, 320, 1, 3, 3)] {
            let attributes = ConvAttributes(window: Window(kernel: [kernel, kernel], pads: Array(repeating: kernel / 2, count: 4)))
            let x = random.tensor([n, cin, h, w]), weight = random.tensor([cout, cin, kernel, kernel]), bias = random.tensor([cout])
            Parallel.threads = 1
            let one = try bf16Run(x, weight, bias, attributes, residual: nil, relu: true).floats
            for threads in [2, 3, 5] {
                Parallel.threads = threads
                XCTAssertEqual(try bf16Run(x, weight, bias, attributes, residual: nil, relu: true).floats, one, "\(cin)→\(cout), \(threads) threads")
            }
        }
    }

    func testBFloat16ActivationsGiveTheFloatRunsOutputRounded() throws {
        // A product reads bfloat16 windows as the float kernel reads floats that are bfloat16
        // already, and stores its f32 result rounded to bfloat16: so with inputs and residuals
        // on bfloat16's grid, the bfloat16 run is the float run's output rounded, bit for bit.
        // (Cin, Cout, kernel, stride, pad, batch, h, w, residual): one k-block; 300 channels in
        // two k-blocks (the partial sums kept in floats) with a partial strip and a residual;
        // the stem's 21-value window rows; an odd window of 45; three k-blocks over 5 strips
        // that threads split into tiles of strips; 33 channels, which a 1×1 cannot read in place
        // (half a word a pixel; the others' bfloat16 inputs are read in place).
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Bool)] = [
            (256, 64, 1, 1, 0, 2, 7, 6, false), (300, 70, 1, 1, 0, 1, 5, 7, true), (3, 64, 7, 2, 3, 1, 11, 13, false),
            (5, 70, 3, 1, 1, 2, 5, 6, true), (600, 320, 1, 1, 0, 1, 3, 3, true), (33, 20, 1, 1, 0, 2, 4, 5, true),
        ]
        for (cin, cout, kernel, stride, pad, n, h, w, withResidual) in cases {
            let attributes = ConvAttributes(window: Window(kernel: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad]))
            let conv = try BF16Conv(weight: random.tensor([cout, cin, kernel, kernel]), bias: random.tensor([cout]), attributes: attributes)
            let (oh, ow, _) = conv.outputSize(h, w)
            let x = try ChannelsLast(mapped(random.tensor([n, cin, h, w]), bfloat16), border: pad)
            let residual = withResidual ? try ChannelsLast(mapped(random.tensor([n, cout, oh, ow]), bfloat16), border: 0) : nil
            let (x16, residual16) = (try halves(x), try residual.map(halves))
            for threads in [1, 2, 3] {
                Parallel.threads = threads
                let label = "\(cin)→\(cout) \(kernel)×\(kernel)/\(stride), \(threads) threads"
                let floats = try ChannelsLast(n: n, h: oh, w: ow, c: cout, border: 0)
                conv.run(x, into: floats, residual: residual, relu: true)
                let y = try BF16Activation(n: n, h: oh, w: ow, c: cout, border: 1)
                conv.run(image: x16, into: y, residual: residual16, relu: true)
                let rounded = mapped(floats.tensor(), bfloat16).floats, got = try y.floats(border: 0).tensor().floats
                let wrong = zip(got, rounded).enumerated().filter { $0.element.0 != $0.element.1 }
                XCTAssert(wrong.isEmpty, "\(label): \(wrong.count) outputs differ, the first \(wrong.first.map { "\($0.offset): \($0.element)" } ?? "")")
                // Mixed: floats in, bfloat16 out; bfloat16 in, floats out.
                let y2 = try BF16Activation(n: n, h: oh, w: ow, c: cout, border: 0)
                conv.run(image: x, into: y2, residual: residual, relu: true)
                XCTAssertEqual(try y2.floats(border: 0).tensor().floats, rounded, label)
                let floats2 = try ChannelsLast(n: n, h: oh, w: ow, c: cout, border: 0)
                conv.run(image: x16, into: floats2, residual: residual16, relu: true)
                XCTAssertEqual(floats2.tensor().floats, floats.tensor().floats, label)
            }
            // The border of a bfloat16 output stays zero (the padding of its readers).
            let y = try BF16Activation(n: n, h: oh, w: ow, c: cout, border: 1)
            conv.run(image: x16, into: y, residual: residual16, relu: false)
            XCTAssertTrue((0..<y.rowPitch).allSatisfy { y.data[$0] == 0 } && (0..<y.c).allSatisfy { y.data[y.rowPitch + $0] == 0 }, "border")
        }
    }

    func testSummedProductsOfBFloat16ActivationsGiveTheFloatRunsOutputRounded() throws {
        // A block's last 1×1 (64 → 256 on 8×8) and its stride-2 shortcut (32 → 256 from 16×16),
        // both inputs bfloat16, into bfloat16: the float run's sums, rounded.
        let last = try BF16Conv(weight: random.tensor([256, 64, 1, 1]), bias: random.tensor([256]),
                                attributes: ConvAttributes(window: Window(kernel: [1, 1])))
        let shortcut = try BF16Conv(weight: random.tensor([256, 32, 1, 1]), bias: nil,
                                    attributes: ConvAttributes(window: Window(kernel: [1, 1], strides: [2, 2])))
        let x = try ChannelsLast(mapped(random.tensor([2, 64, 8, 8]), bfloat16), border: 0)
        let x2 = try ChannelsLast(mapped(random.tensor([2, 32, 16, 16]), bfloat16), border: 0)
        let floats = try ChannelsLast(n: 2, h: 8, w: 8, c: 256, border: 0)
        last.run(x, plus: shortcut as any ConvolutionKernel, x2, into: floats, relu: true)
        let y = try BF16Activation(n: 2, h: 8, w: 8, c: 256, border: 0)
        last.run(try halves(x), plus: shortcut as any ConvolutionKernel, try halves(x2), into: y, relu: true)
        XCTAssertEqual(try y.floats(border: 0).tensor().floats, mapped(floats.tensor(), bfloat16).floats)
    }

    func testAnNCHWImageInBFloat16IsEachValueRounded() throws {
        // A graph input that only bf16 steps read is converted once: RGB (two permutations per
        // 16 pixels), 5 channels and 70 (over 64 at a time), rows of 21 (a partial 16), a
        // subnormal (to zero) and a tie (to even) among them.
        for c in [3, 5, 70] {
            var values = random.tensor([2, c, 3, 21]).floats
            values[4] = Float(bitPattern: 0x0000_1234)
            values[7] = Float(bitPattern: 0x3F81_8000)
            let t = Tensor(shape: [2, c, 3, 21], floats: values)
            let y = try BF16Activation(t, border: 3)
            XCTAssertEqual(try y.floats(border: 0).tensor().floats.map(\.bitPattern), values.map { bfloat16($0).bitPattern }, "\(c) channels")
            XCTAssertTrue((0..<3 * y.rowPitch).allSatisfy { y.data[$0] == 0 }, "\(c) channels: the border stays zero")
        }
    }

    func testMaxPoolOverBFloat16IsTheFloatPool() throws {
        // The stem's 3×3/2 pool with pad 1, 70 channels (a partial vector), a NaN that must
        // propagate and negative values that must not lose to the padding; a 2×2 window of
        // dilation 2 and a pad of 2 besides.
        for window in [Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]), Window(kernel: [2, 2], pads: [2, 2, 0, 0], dilations: [2, 2])] {
            var values = mapped(random.tensor([2, 70, 9, 8]), bfloat16).floats
            values[5 * 72 + 3] = .nan
            let x = try ChannelsLast(Tensor(shape: [2, 70, 9, 8], floats: values), border: 0)
            let (out, _) = window.resolve(input: [9, 8])
            let floats = try ChannelsLast(n: 2, h: out[0], w: out[1], c: 70, border: 0)
            ChannelsLastPool.max(x, window: window, into: floats)
            let y = try BF16Activation(n: 2, h: out[0], w: out[1], c: 70, border: 1)
            ChannelsLastPool.max(try halves(x), window: window, into: y)
            let (got, want) = (try y.floats(border: 0).tensor().floats, floats.tensor().floats)
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(window)")
            XCTAssertTrue(want.contains { $0.isNaN } && want.contains { $0 < 0 }, "the values try what they should")
        }
    }

    func testRefusalsAreErrorsNotIllegalInstructions() {
        let weight = random.tensor([8, 4, 3, 3]), attributes = ConvAttributes(window: Window(kernel: [3, 3]))
        XCTAssertThrowsError(try BF16Conv(weight: weight, bias: nil, attributes: attributes, processorHasBF16: false)) { error in
            XCTAssertEqual((error as? GraftError)?.description,
                           "op Conv: bf16 convolutions need a processor with AVX512_BF16 (avx512_bf16 in /proc/cpuinfo's flags), which this one lacks: run in f32")
        }
        XCTAssertThrowsError(try BF16Conv(weight: weight, bias: nil, attributes: ConvAttributes(window: attributes.window, group: 2))) { error in
            XCTAssertEqual((error as? GraftError)?.description, "op Conv: bf16 convolutions are ungrouped, this one has 2 groups")
        }
    }
}
