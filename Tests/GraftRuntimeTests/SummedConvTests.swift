import GraftCore
@testable import GraftRuntime
import GraftTestSupport
import XCTest

/// Two convolutions summed in one product (a ResNet block's last convolution and its
/// downsampling shortcut, added): the f32 and bf16 kernels give exactly what the reference gives
/// for `relu?(conv(x) + bias + conv'(x') + bias')` where every sum is exact, over windows, strides
/// and pads of either term, a partial strip and several thread counts; and the planner makes one
/// step of `conv → Add ← conv'` only where that is the same computation.
final class SummedConvTests: XCTestCase {
    var random = SeededGenerator(seed: 23)

    /// ±[1, 2) with 7 fraction bits (exact in bfloat16): products are multiples of 2⁻¹⁴ below 4,
    /// so fewer than 256 of them, plus biases of multiples of 2⁻¹⁴ below 1, sum exactly in f32.
    func operand() -> Float {
        let magnitude = 1 + Float(Int(random.uniform(in: 0...127.99))) / 128
        return random.uniform(in: 0...1) < 0.5 ? -magnitude : magnitude
    }

    func operands(_ shape: [Int]) -> Tensor { Tensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in operand() }) }

    func lattice(_ count: Int) -> Tensor {
        Tensor(shape: [count], floats: (0..<count).map { _ in Float(Int(random.uniform(in: -16384...16383.99))) * 0x1p-14 })
    }

    /// (Cin, kernel, stride, pad) of each term, Cout, batch, and each input's height and width:
    /// layer1's shape (two 1×1 of stride 1), layer2's (the shortcut of stride 2 over a larger
    /// input) with a partial strip of 70 outputs, a 3×3 of stride 2 beside a 1×1 of stride 2, and
    /// the stem's fused 7-wide window rows beside a 3×3 of pad 1.
    static let cases: [(first: (Int, Int, Int, Int), second: (Int, Int, Int, Int), cout: Int, n: Int, x: (Int, Int), x2: (Int, Int))] = [
        ((64, 1, 1, 0), (64, 1, 1, 0), 256, 1, (6, 7), (6, 7)),
        ((40, 1, 1, 0), (70, 1, 2, 0), 70, 2, (5, 6), (9, 11)),
        ((5, 3, 2, 1), (7, 1, 2, 0), 17, 1, (9, 11), (10, 12)),
        ((3, 7, 2, 3), (9, 3, 1, 1), 64, 1, (11, 13), (6, 7)),
    ]

    func attributes(_ term: (Int, Int, Int, Int)) -> ConvAttributes {
        ConvAttributes(window: Window(kernel: [term.1, term.1], strides: [term.2, term.2], pads: Array(repeating: term.3, count: 4)))
    }

    /// Runs every case through kernels made by `make(weight, bias, attributes)` (the first term
    /// with both biases, the second with none) on 1, 2 and 3 threads, against the reference.
    func check(_ name: String, make: (Tensor, Tensor?, ConvAttributes) throws -> any ConvolutionKernel) throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for c in Self.cases {
            let (a1, a2) = (attributes(c.first), attributes(c.second))
            let x = operands([c.n, c.first.0, c.x.0, c.x.1]), x2 = operands([c.n, c.second.0, c.x2.0, c.x2.1])
            let w = operands([c.cout, c.first.0, c.first.1, c.first.1]), w2 = operands([c.cout, c.second.0, c.second.1, c.second.1])
            let (b, b2) = (lattice(c.cout), lattice(c.cout))
            let sum = try Op.add.evaluate([try Op.conv(a1).evaluate([x, w, b])[0], try Op.conv(a2).evaluate([x2, w2, b2])[0]])[0]
            XCTAssertEqual(sum.shape, [c.n, c.cout] + Array(try Op.conv(a1).evaluate([x, w, nil])[0].shape[2...]))
            let first = try make(w, Tensor(shape: [c.cout], floats: zip(b.floats, b2.floats).map { $0 + $1 }), a1)
            let second = try make(w2, nil, a2)
            XCTAssertTrue(first.sums(with: second))
            XCTAssertFalse(first.sums(with: try make(w2, b2, a2)), "a second term with a bias of its own")
            let input = try ChannelsLast(x, border: first.border(h: c.x.0, w: c.x.1))
            let input2 = try ChannelsLast(x2, border: second.border(h: c.x2.0, w: c.x2.1))
            for relu in [false, true] {
                let reference = relu ? try Op.relu.evaluate([sum])[0] : sum
                for threads in [1, 2, 3] {
                    Parallel.threads = threads
                    let y = try ChannelsLast(n: c.n, h: sum.shape[2], w: sum.shape[3], c: c.cout, border: 0)
                    first.run(input, plus: second, input2, into: y, relu: relu)
                    let label = "\(name): \(c.first) + \(c.second) → \(c.cout), relu \(relu), \(threads) threads"
                    let wrong = zip(y.tensor().floats, reference.floats).enumerated().filter { $0.element.0 != $0.element.1 }
                    XCTAssert(wrong.isEmpty, "\(label): \(wrong.count) outputs differ, the first \(wrong.first.map { "\($0.offset): \($0.element)" } ?? "")")
                }
            }
        }
    }

    func testF32SumsBothProductsExactly() throws {
        try check("f32") { ChannelsLastConv(weight: $0, bias: $1, attributes: $2) }
    }

    func testBF16SumsBothProductsExactly() throws {
        try XCTSkipUnless(MicroKernel.supportsBF16, "the processor lacks AVX512_BF16")
        try check("bf16") { try BF16Conv(weight: $0, bias: $1, attributes: $2) }
    }

    func testKernelsOfAnotherKindOrWidthAreNotSummed() throws {
        let w = random.tensor([32, 8, 1, 1]), pointwise = ConvAttributes(window: Window(kernel: [1, 1]))
        let f32 = ChannelsLastConv(weight: w, bias: nil, attributes: pointwise)
        XCTAssertFalse(f32.sums(with: ChannelsLastConv(weight: random.tensor([16, 8, 1, 1]), bias: nil, attributes: pointwise)), "other output channels")
        let grouped = (weight: random.tensor([32, 8, 3, 3]), attributes: ConvAttributes(window: Window(kernel: [3, 3]), group: 4))
        XCTAssertTrue(GroupedConv.supports(weight: grouped.weight, bias: nil, attributes: grouped.attributes))
        XCTAssertFalse(f32.sums(with: GroupedConv(weight: grouped.weight, bias: nil, attributes: grouped.attributes)), "a grouped convolution")
        if MicroKernel.supportsBF16 {
            XCTAssertFalse(f32.sums(with: try BF16Conv(weight: w, bias: nil, attributes: pointwise)), "another precision")
        }
    }

    /// `x → conv (3×3) → relu → conv (1×1)` added to a shortcut convolution of `x`, then ReLU.
    func block(shortcut: ConvAttributes, shortcutKernel: Int, shortcutRead: Bool = false) -> Graph {
        let x = ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(16), .value(10), .value(10)]))
        let stride = shortcut.window.strides[0]
        let size = (10 + 2 * shortcut.window.pads[0] - shortcutKernel) / stride + 1
        var outputs = [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(48), .value(size), .value(size)]))]
        if shortcutRead { outputs.append(ValueInfo(name: "d", dtype: .float32, shape: outputs[0].shape)) }
        let first = ConvAttributes(window: Window(kernel: [3, 3], strides: [stride, stride], pads: [1, 1, 1, 1]))
        return Graph(inputs: [x], outputs: outputs, nodes: [
            Node(name: "conv1", op: .conv(first), inputs: ["x", "w1", "b1"], outputs: ["a"]),
            Node(name: "relu1", op: .relu, inputs: ["a"], outputs: ["r"]),
            Node(name: "conv2", op: .conv(ConvAttributes(window: Window(kernel: [1, 1]))), inputs: ["r", "w2", "b2"], outputs: ["c"]),
            Node(name: "downsample", op: .conv(shortcut), inputs: ["x", "w3", "b3"], outputs: ["d"]),
            Node(name: "add", op: .add, inputs: ["c", "d"], outputs: ["s"]),
            Node(name: "relu2", op: .relu, inputs: ["s"], outputs: ["y"]),
        ], constants: ["w1": random.tensor([24, 16, 3, 3]), "b1": random.tensor([24]), "w2": random.tensor([48, 24, 1, 1]), "b2": random.tensor([48]),
                       "w3": random.tensor([48, 16, shortcutKernel, shortcutKernel]), "b3": random.tensor([48])])
    }

    func testThePlannerSumsAShortcutOnlyWhereItIsTheSameComputation() throws {
        let x = random.tensor([2, 16, 10, 10])
        let downsample = ConvAttributes(window: Window(kernel: [1, 1], strides: [2, 2]))
        // (graph, summed?): a 1×1 shortcut of stride 2 (ResNet's downsampling); a 3×3 of stride 1
        // (Winograd's method may run it: a step of its own); a shortcut the graph also outputs.
        let cases: [(String, Graph, Bool)] = [
            ("1×1 stride 2", block(shortcut: downsample, shortcutKernel: 1), true),
            ("3×3 stride 1", block(shortcut: ConvAttributes(window: Window(kernel: [3, 3], pads: [1, 1, 1, 1])), shortcutKernel: 3), false),
            ("read elsewhere", block(shortcut: downsample, shortcutKernel: 1, shortcutRead: true), false),
        ]
        for (label, graph, summed) in cases {
            let reference = try referenceRun(graph, ["x": x])
            for precision in [Plan.Precision.f32, .bf16] where precision == .f32 || MicroKernel.supportsBF16 {
                let interpreter = try Interpreter(graph: graph, options: Planner.Options(precision: precision))
                let steps = interpreter.plan.steps.filter { $0.summed != nil }
                XCTAssertEqual(steps.count, summed ? 1 : 0, "\(label), \(precision)")
                if summed {
                    XCTAssertEqual(steps[0].nodes.map { graph.nodes[$0].name }, ["conv2", "downsample", "add", "relu2"])
                    XCTAssertEqual(steps[0].input, "r")
                    XCTAssertEqual(steps[0].summed?.input, "x")
                }
                let outputs = try interpreter.run(["x": x])
                for (name, r) in reference {
                    // f32: the reference's sums in another order; bf16: 8 significant bits.
                    let y = try XCTUnwrap(outputs[name])
                    assertClose(y, r, atol: (precision == .f32 ? 1e-4 : 0.03) * r.floats.map(abs).max()!, rtol: 0, "\(label), \(precision): \(name)")
                }
            }
        }
    }

    /// Sizes that shape inference leaves symbolic (an input of any height and width) can come
    /// out different for the two terms of an `Add` that broadcasts one over the other: a
    /// convolution's output of 2×2 and a shortcut's of 1×1 are added as the ops define it, at
    /// either precision, whichever term the planner takes as the residual; neither is summed.
    func testTermsOfSizesKnownOnlyAtRunTimeAreAddedAsTheOpsDefine() throws {
        let x = ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(8), .symbol("H"), .symbol("W")]))
        let y = ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(16), .symbol("H"), .symbol("W")]))
        let pointwise = ConvAttributes(window: Window(kernel: [1, 1]))
        let stride2 = ConvAttributes(window: Window(kernel: [1, 1], strides: [2, 2]))
        for order in [["a", "b"], ["b", "a"]] {
            let nodes = ["a": Node(name: "a", op: .conv(pointwise), inputs: ["x", "wa", "ba"], outputs: ["ya"]),
                         "b": Node(name: "b", op: .conv(stride2), inputs: ["x", "wb", "bb"], outputs: ["yb"])]
            let graph = Graph(inputs: [x], outputs: [y], nodes: order.map { nodes[$0]! } + [
                Node(name: "add", op: .add, inputs: ["ya", "yb"], outputs: ["s"]),
                Node(name: "relu", op: .relu, inputs: ["s"], outputs: ["y"]),
            ], constants: ["wa": random.tensor([16, 8, 1, 1]), "ba": random.tensor([16]), "wb": random.tensor([16, 8, 1, 1]), "bb": random.tensor([16])])
            let input = random.tensor([2, 8, 2, 2])
            let reference = try XCTUnwrap(try referenceRun(graph, ["x": input])["y"])
            XCTAssertEqual(reference.shape, [2, 16, 2, 2])
            for precision in [Plan.Precision.f32, .bf16] where precision == .f32 || MicroKernel.supportsBF16 {
                let interpreter = try Interpreter(graph: graph, options: Planner.Options(precision: precision))
                XCTAssertTrue(interpreter.plan.steps.allSatisfy { $0.summed == nil })
                XCTAssertEqual(interpreter.plan.steps.filter { $0.epilogue?.residual != nil }.count, 1, "the second convolution takes the first as its residual")
                let output = try XCTUnwrap(try interpreter.run(["x": input])["y"])
                assertClose(output, reference, atol: (precision == .f32 ? 1e-5 : 0.03) * reference.floats.map(abs).max()!, rtol: 0,
                            "\(order), \(precision)")
            }
        }
    }
}
