import GraftCore
@testable import GraftRuntime
import GraftTestSupport
import XCTest

/// The bfloat16 Winograd convolution computes what the f32 reference evaluator does, within the
/// error that rounding its transformed operands to bfloat16 allows, over ResNet-50's 3×3
/// convolutions of stride 1; on a realistic layer its error stays near the bfloat16 direct
/// convolution's; and every thread count gives the same bits.
final class BF16WinogradTests: XCTestCase {
    var random = SeededGenerator(seed: 23)

    override func setUpWithError() throws {
        try XCTSkipUnless(MicroKernel.supportsBF16, "the processor lacks AVX512_BF16")
    }

    static let attributes = ConvAttributes(window: Window(kernel: [3, 3], pads: [1, 1, 1, 1]))

    /// `relu?(conv(x) + bias + residual?)` by the bfloat16 Winograd kernel, over channels-last copies.
    func winogradRun(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, residual: Tensor?, relu: Bool) throws -> Tensor {
        let conv = try BF16WinogradConv(weight: weight, bias: bias)
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let input = try ChannelsLast(x, border: WinogradConv.border(h: h, w: w))
        let output = try ChannelsLast(n: n, h: h, w: w, c: weight.shape[0], border: 0)
        conv.run(input, into: output, residual: try residual.map { try ChannelsLast($0, border: 0) }, relu: relu)
        return output.tensor()
    }

    /// The same by the bfloat16 direct convolution.
    func directRun(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?) throws -> Tensor {
        let conv = try BF16Conv(weight: weight, bias: bias, attributes: Self.attributes)
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let input = try ChannelsLast(x, border: 1)
        let output = try ChannelsLast(n: n, h: h, w: w, c: weight.shape[0], border: 0)
        conv.run(input, into: output, residual: nil, relu: false)
        return output.tensor()
    }

    /// The same by the reference evaluator's ops (in f32).
    func referenceRun(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, residual: Tensor?, relu: Bool) throws -> Tensor {
        var y = try Op.conv(Self.attributes).evaluate([x, weight, bias])[0]
        if let residual { y = try Op.add.evaluate([y, residual])[0] }
        return relu ? try Op.relu.evaluate([y])[0] : y
    }

    /// Per output `[N, Cout, H, W]`, `Σ_ξ |A_ξ| Σ_c |V_ξc|·|U_ξc|` where `|V| = |Bᵀ| |d| |B|` and
    /// `|U| = |G| |g| |Gᵀ|`: the size of what the kernel's rounded products add up, bounding
    /// each transformed value by the same transform over absolute values. Computed here from the
    /// matrices, independently of the kernel's transforms.
    func transformedMagnitudes(_ x: Tensor, _ weight: Tensor) -> [Float] {
        let bt: [[Float]] = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        let g: [[Float]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let at: [[Float]] = [[1, 1, 1, 0], [0, 1, -1, -1]]
        let (n, cin, h, w, cout) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], weight.shape[0])
        let (xs, ws) = (x.floats, weight.floats)
        // |U|, [ξ][o][c].
        var u = [Float](repeating: 0, count: 16 * cout * cin)
        for o in 0..<cout {
            for c in 0..<cin {
                for r in 0..<4 {
                    for s in 0..<4 {
                        var sum: Float = 0
                        for i in 0..<3 { for j in 0..<3 { sum += abs(g[r][i]) * abs(ws[((o * cin + c) * 3 + i) * 3 + j]) * abs(g[s][j]) } }
                        u[((r * 4 + s) * cout + o) * cin + c] = sum
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: n * cout * h * w)
        var v = [Float](repeating: 0, count: 16 * cin)
        for b in 0..<n {
            for ty in 0..<(h + 1) / 2 {
                for tx in 0..<(w + 1) / 2 {
                    // |V| of the tile's 4×4 pixels from (2ty − 1, 2tx − 1), zero outside the image.
                    func d(_ c: Int, _ i: Int, _ j: Int) -> Float {
                        let (y, x) = (2 * ty - 1 + i, 2 * tx - 1 + j)
                        return y < 0 || y >= h || x < 0 || x >= w ? 0 : abs(xs[((b * cin + c) * h + y) * w + x])
                    }
                    for c in 0..<cin {
                        for r in 0..<4 {
                            for s in 0..<4 {
                                var sum: Float = 0
                                for i in 0..<4 { for j in 0..<4 { sum += abs(bt[r][i]) * d(c, i, j) * abs(bt[s][j]) } }
                                v[(r * 4 + s) * cin + c] = sum
                            }
                        }
                    }
                    for o in 0..<cout {
                        var m = [Float](repeating: 0, count: 16)
                        for xi in 0..<16 {
                            for c in 0..<cin { m[xi] += v[xi * cin + c] * u[(xi * cout + o) * cin + c] }
                        }
                        for p in 0..<2 where 2 * ty + p < h {
                            for q in 0..<2 where 2 * tx + q < w {
                                var sum: Float = 0
                                for xi in 0..<16 { sum += abs(at[p][xi / 4]) * abs(at[q][xi % 4]) * m[xi] }
                                out[((b * cout + o) * h + 2 * ty + p) * w + 2 * tx + q] = sum
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    func testResNet50ShapesAgreeWithTheReferenceWithinBF16Error() throws {
        // (Cin, Cout, batch, h, w, residual, relu): the 3×3 of stride 1 of every ResNet-50 layer
        // (64, 128, 256, 512 channels) at smaller sizes, odd sizes (tiles overhanging the edge),
        // a batch of 3, a residual; channels that are not a whole strip (80) and differ (48→96).
        let cases: [(Int, Int, Int, Int, Int, Bool, Bool)] = [
            (64, 64, 1, 14, 14, false, true),
            (128, 128, 2, 7, 9, true, true),
            (256, 256, 1, 6, 5, false, true),
            (512, 512, 1, 4, 3, true, true),
            (48, 96, 3, 5, 7, true, false),
            (80, 80, 1, 9, 1, false, false),
        ]
        for (cin, cout, n, h, w, withResidual, relu) in cases {
            let x = random.tensor([n, cin, h, w]), weight = random.tensor([cout, cin, 3, 3]), bias = random.tensor([cout])
            let residual = withResidual ? random.tensor([n, cout, h, w]) : nil
            let label = "\(cin)→\(cout) on \(n)×\(h)×\(w)"
            let fast = try winogradRun(x, weight, bias, residual: residual, relu: relu)
            let reference = try referenceRun(x, weight, bias, residual: residual, relu: relu)
            XCTAssertEqual(fast.shape, reference.shape, label)
            // Each transformed factor, V and U, is off by 2⁻⁸ of itself once rounded to bfloat16,
            // so each product by (2⁻⁷ + 2⁻¹⁶)·|V·U|; the output transform adds the products with
            // weights ±1 and 0, so the rounding moves an output by (2⁻⁷ + 2⁻¹⁶)·Σ_ξ |A_ξ| Σ_c |V|·|U|
            // at most. The f32 arithmetic adds, on both sides, (number of terms + 3)·2⁻²⁴ of what
            // its sums add: 9·Cin + 24 terms bound the longest of them (the transforms' sums of
            // 4 and 9, the Cin products, the direct sum of 9·Cin), of magnitudes bounded by the
            // transformed magnitudes, the direct ones, and the bias and residual.
            let transformed = transformedMagnitudes(x, weight)
            let direct = try Op.conv(Self.attributes).evaluate([mapped(x, abs), mapped(weight, abs), nil])[0].floats
            let (rounding, summing) = (Float(0x1p-7) + 0x1p-16, 2 * Float(9 * cin + 24) * 0x1p-24 * 1.01)
            let plane = h * w
            for (i, (f, r)) in zip(fast.floats, reference.floats).enumerated() {
                let extra = abs(residual?.floats[i] ?? 0) + abs(bias.floats[i / plane % cout])
                let bound = rounding * transformed[i] * 1.01 + summing * (transformed[i] + direct[i] + extra)
                if !(abs(f - r) <= bound) {
                    XCTFail("\(label): output \(i) is \(f), the reference \(r), beyond the bound \(bound)")
                    break
                }
            }
        }
    }

    func testErrorStaysNearTheDirectBF16Convolutions() throws {
        // A realistic layer: activations after a ReLU (half zero, the rest uniform in [0, 1)),
        // He-scaled weights (uniform of variance 2 / (9·Cin)). The bound above grows with Winograd's transforms, loose enough to
        // hide a transform that is slightly wrong; here the root-mean-square error against the
        // reference must stay within 3× the direct bfloat16 convolution's on the same operands
        // (measured: 1.5× over these shapes).
        for (cin, cout, n, h, w) in [(64, 64, 1, 16, 16), (256, 256, 2, 7, 7), (512, 512, 1, 5, 6)] {
            let x = Tensor(shape: [n, cin, h, w], floats: (0..<n * cin * h * w).map { _ in max(0, Float(random.uniform(in: -1...1))) })
            let scale = (Float(6) / Float(9 * cin)).squareRoot()
            let weight = mapped(random.tensor([cout, cin, 3, 3])) { $0 * scale }
            let bias = mapped(random.tensor([cout])) { $0 * 0.1 }
            let reference = try referenceRun(x, weight, bias, residual: nil, relu: false).floats
            func rms(_ y: Tensor) -> Double {
                var sum: Double = 0
                for (a, b) in zip(y.floats, reference) { sum += Double(a - b) * Double(a - b) }
                return (sum / Double(reference.count)).squareRoot()
            }
            let winograd = rms(try winogradRun(x, weight, bias, residual: nil, relu: false))
            let direct = rms(try directRun(x, weight, bias))
            let label = "\(cin)→\(cout) on \(n)×\(h)×\(w): error \(winograd), direct's \(direct)"
            XCTAssertGreaterThan(direct, 0, label)
            XCTAssertLessThanOrEqual(winograd, 3 * direct, label)
        }
    }

    func testEveryThreadCountGivesTheSameBits() throws {
        // Blocks split the tiles, never a tile's sums: 2×64×18×18 makes several blocks (a run of
        // them per thread), 1×256×6×6 one block whose steps the threads share.
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for (n, c, h, w) in [(2, 64, 18, 18), (1, 256, 6, 6)] {
            let x = random.tensor([n, c, h, w]), weight = random.tensor([c, c, 3, 3]), bias = random.tensor([c])
            let residual = random.tensor([n, c, h, w])
            Parallel.threads = 1
            let one = try winogradRun(x, weight, bias, residual: residual, relu: true).floats
            for threads in [2, 3, 5] {
                Parallel.threads = threads
                XCTAssertEqual(try winogradRun(x, weight, bias, residual: residual, relu: true).floats, one, "\(c) channels, \(threads) threads")
            }
        }
    }

    func testBFloat16ActivationsGiveTheFloatRunsOutputRounded() throws {
        // Bfloat16 in, out and as the residual: the input is widened exactly and transformed as
        // floats are, so with inputs and residuals on bfloat16's grid the bfloat16 run is the
        // float run's output rounded, bit for bit; each mix of floats and bfloat16 too. An odd
        // size (tiles overhanging, a border of 2) over several blocks, and one block the threads share.
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for (cin, cout, n, h, w) in [(64, 48, 2, 9, 11), (256, 64, 1, 6, 6)] {
            let conv = try BF16WinogradConv(weight: random.tensor([cout, cin, 3, 3]), bias: random.tensor([cout]))
            let border = WinogradConv.border(h: h, w: w)
            let x = try ChannelsLast(mapped(random.tensor([n, cin, h, w]), bfloat16), border: border)
            let residual = try ChannelsLast(mapped(random.tensor([n, cout, h, w]), bfloat16), border: 0)
            let (x16, residual16) = (try halves(x), try halves(residual))
            for threads in [1, 2] {
                Parallel.threads = threads
                let label = "\(cin)→\(cout) on \(n)×\(h)×\(w), \(threads) threads"
                let floats = try ChannelsLast(n: n, h: h, w: w, c: cout, border: 0)
                conv.run(x, into: floats, residual: residual, relu: true)
                let rounded = mapped(floats.tensor(), bfloat16).floats
                for (input, added) in [(x16, residual16), (x, residual16), (x16, residual)] as [(any ChannelsLastImage, any ChannelsLastImage)] {
                    let y = try BF16Activation(n: n, h: h, w: w, c: cout, border: 1)
                    conv.run(image: input, into: y, residual: added, relu: true)
                    XCTAssertEqual(try y.floats(border: 0).tensor().floats, rounded, "\(label), \(type(of: input)) in, \(type(of: added)) added")
                    XCTAssertTrue((0..<y.rowPitch).allSatisfy { y.data[$0] == 0 }, "\(label): the border stays zero")
                }
                let floats2 = try ChannelsLast(n: n, h: h, w: w, c: cout, border: 0)
                conv.run(image: x16, into: floats2, residual: residual16, relu: true)
                XCTAssertEqual(floats2.tensor().floats, floats.tensor().floats, label)
            }
        }
    }

    func testRefusalsAreErrorsNotIllegalInstructions() {
        XCTAssertThrowsError(try BF16WinogradConv(weight: random.tensor([16, 16, 3, 3]), bias: nil, processorHasBF16: false)) { error in
            XCTAssertEqual((error as? GraftError)?.description,
                           "op Conv: bf16 convolutions need a processor with AVX512_BF16 (avx512_bf16 in /proc/cpuinfo's flags), which this one lacks: run in f32")
        }
        XCTAssertThrowsError(try BF16WinogradConv(weight: random.tensor([16, 8, 3, 3]), bias: nil)) { error in
            XCTAssertEqual((error as? GraftError)?.description,
                           "op Conv: expected float32 3×3 weights [Cout, Cin, 3, 3] over multiples of 16 channels and a bias of Cout floats, got float32 [16, 8, 3, 3]")
        }
    }
}
