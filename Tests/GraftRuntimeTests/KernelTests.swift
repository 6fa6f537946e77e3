import GraftCore
import GraftRuntime
import GraftTestSupport
import XCTest

/// The micro-kernel sets this processor runs: each test runs once per set.
func eachKernel(_ body: () throws -> Void) rethrows {
    let saved = MicroKernel.active
    defer { MicroKernel.active = saved }
    for kernel in MicroKernel.allCases where kernel != .avx512 || MicroKernel.supportsAVX512 {
        MicroKernel.active = kernel
        try body()
    }
}

/// The interpreter's fast kernels agree with the reference evaluator on odd shapes.
final class KernelTests: XCTestCase {
    var random = SeededGenerator(seed: 7)

    /// Runs `op` on `inputs` through the interpreter (fast kernels) and through `Op.evaluate`.
    func compare(_ op: Op, _ inputs: [Tensor], _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = inputs.indices.map { "in\($0)" }
        let graph = Graph(inputs: [ValueInfo(name: names[0], dtype: .float32, shape: Shape(inputs[0].shape))],
                          outputs: [ValueInfo(name: "out", dtype: .float32, shape: Shape([Dim]()))],
                          nodes: [Node(name: "n", op: op, inputs: names, outputs: ["out"])],
                          constants: Dictionary(uniqueKeysWithValues: zip(names.dropFirst(), inputs.dropFirst())))
        let reference = try op.evaluate(inputs)[0]
        try eachKernel {
            let fast = try Interpreter(graph: graph).run([names[0]: inputs[0]])["out"]!
            assertClose(fast, reference, atol: 1e-5, rtol: 1e-4, "\(label) [\(MicroKernel.active)]", file: file, line: line)
        }
    }

    func testConvolutionOnOddShapes() throws {
        // (batch, cin, cout, h, w, kernel, stride, pad, dilation, group)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (1, 3, 5, 9, 7, 3, 1, 1, 1, 1),
            (3, 6, 4, 10, 11, 3, 2, 1, 1, 2),
            (2, 5, 7, 8, 8, 1, 1, 0, 1, 1),
            (1, 4, 6, 13, 9, 1, 2, 0, 1, 1),
            (1, 3, 8, 17, 15, 7, 2, 3, 1, 1),
            (2, 6, 6, 7, 9, 3, 1, 2, 2, 3),
            (1, 8, 8, 6, 6, 3, 1, 1, 1, 8),
        ]
        for (n, cin, cout, h, w, k, s, p, d, g) in cases {
            let attributes = ConvAttributes(window: Window(kernel: [k, k], strides: [s, s], pads: [p, p, p, p], dilations: [d, d]), group: g)
            let x = random.tensor([n, cin, h, w]), weight = random.tensor([cout, cin / g, k, k])
            try compare(.conv(attributes), [x, weight, random.tensor([cout])], "conv \(n)x\(cin)x\(h)x\(w) k\(k) s\(s) p\(p) d\(d) g\(g)")
            try compare(.conv(attributes), [x, weight], "conv without bias k\(k) g\(g)")
        }
    }

    func testAsymmetricPaddingAndAutoPad() throws {
        let x = random.tensor([1, 3, 8, 7]), w = random.tensor([4, 3, 3, 3])
        try compare(.conv(ConvAttributes(window: Window(kernel: [3, 3], strides: [2, 2], pads: [0, 1, 2, 0]))), [x, w], "asymmetric pads")
        try compare(.conv(ConvAttributes(window: Window(kernel: [3, 3], strides: [2, 2], autoPad: .sameUpper))), [x, w], "SAME_UPPER")
        try compare(.conv(ConvAttributes(window: Window(kernel: [3, 3], strides: [2, 2], autoPad: .sameLower))), [x, w], "SAME_LOWER")
    }

    func testMaxPool() throws {
        for (k, s, p, d, ceil) in [(3, 2, 1, 1, false), (2, 2, 0, 1, true), (3, 1, 1, 2, false), (5, 3, 2, 1, true)] {
            let window = Window(kernel: [k, k], strides: [s, s], pads: [p, p, p, p], dilations: [d, d], ceilMode: ceil)
            try compare(.maxPool(window), [random.tensor([2, 3, 13, 11])], "maxpool k\(k) s\(s) p\(p) d\(d) ceil \(ceil)")
        }
    }

    func testGemmAndMatMul() throws {
        for (m, k, n) in [(1, 7, 5), (3, 16, 9), (8, 2048, 10)] {
            try compare(.gemm(GemmAttributes(transB: true)), [random.tensor([m, k]), random.tensor([n, k]), random.tensor([n])], "gemm \(m)x\(k)x\(n)")
            try compare(.gemm(GemmAttributes(alpha: 0.5, beta: 2, transA: true)), [random.tensor([k, m]), random.tensor([k, n]), random.tensor([m, 1])], "gemm transA")
            try compare(.matMul, [random.tensor([m, k]), random.tensor([k, n])], "matmul \(m)x\(k)x\(n)")
            // Constant B [K, N] and a bias row [1, N]: the channels-last product.
            try compare(.gemm(GemmAttributes()), [random.tensor([m, k]), random.tensor([k, n]), random.tensor([1, n])], "gemm B [K, N]")
            try compare(.gemm(GemmAttributes(transB: true)), [random.tensor([m, k]), random.tensor([n, k])], "gemm without C")
        }
    }
}

/// Convolutions that absorb the residual add and ReLU after them compute what the unfused graph does.
final class FusionTests: XCTestCase {
    var random = SeededGenerator(seed: 5)

    /// x → conv a → relu → conv b; x → conv c (downsample); add(b, c) → relu, at batch `n`.
    func block(channels: Int, group: Int) -> Graph {
        let window3 = Window(kernel: [3, 3], pads: [1, 1, 1, 1])
        let c = channels
        return Graph(
            inputs: [ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(c), .value(9), .value(7)]))],
            outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(2 * c), .value(9), .value(7)]))],
            nodes: [Node(name: "a", op: .conv(ConvAttributes(window: window3, group: group)), inputs: ["x", "wa", "ba"], outputs: ["ya"]),
                    Node(name: "ra", op: .relu, inputs: ["ya"], outputs: ["za"]),
                    Node(name: "b", op: .conv(ConvAttributes(window: Window(kernel: [1, 1]))), inputs: ["za", "wb"], outputs: ["yb"]),
                    Node(name: "c", op: .conv(ConvAttributes(window: Window(kernel: [1, 1]))), inputs: ["x", "wc", "bc"], outputs: ["yc"]),
                    Node(name: "add", op: .add, inputs: ["yb", "yc"], outputs: ["s"]),
                    Node(name: "relu", op: .relu, inputs: ["s"], outputs: ["y"])],
            constants: ["wa": random.tensor([c, c / group, 3, 3]), "ba": random.tensor([c]), "wb": random.tensor([2 * c, c, 1, 1]),
                        "wc": random.tensor([2 * c, c, 1, 1]), "bc": random.tensor([2 * c])])
    }

    func testResidualBlockMatchesTheReference() throws {
        for (channels, group, batch) in [(4, 1, 1), (7, 1, 3), (6, 3, 2), (300, 1, 1)] {
            let g = block(channels: channels, group: group)
            let x = random.tensor([batch, channels, 9, 7])
            let reference = try referenceRun(g, ["x": x])["y"]!
            // Sums over K = 2,700 terms differ by rounding: allow 1e-5 of the largest value.
            let scale = reference.floats.map(abs).max()!
            try eachKernel {
                let fast = try Interpreter(graph: g).run(["x": x])["y"]!
                assertClose(fast, reference, atol: 1e-5 * scale, rtol: 1e-4, "c\(channels) g\(group) n\(batch) [\(MicroKernel.active)]")
            }
        }
    }

    func testAValueReadTwiceIsNotFusedAway() throws {
        // The conv output feeds both the add and the graph output: the add must not be absorbed.
        var g = block(channels: 4, group: 1)
        g.outputs.append(ValueInfo(name: "yb", dtype: .float32, shape: Shape([.symbol("N"), .value(8), .value(9), .value(7)])))
        let x = random.tensor([2, 4, 9, 7])
        let fast = try Interpreter(graph: g).run(["x": x]), reference = try referenceRun(g, ["x": x])
        assertClose(fast["y"]!, reference["y"]!, atol: 1e-4, rtol: 1e-4)
        assertClose(fast["yb"]!, reference["yb"]!, atol: 1e-4, rtol: 1e-4)
    }
}
