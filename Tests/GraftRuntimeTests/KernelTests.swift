import GraftCore
import GraftRuntime
import GraftTestSupport
import XCTest

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
        let fast = try Interpreter(graph: graph).run([names[0]: inputs[0]])["out"]!
        let reference = try op.evaluate(inputs)[0]
        assertClose(fast, reference, atol: 1e-5, rtol: 1e-4, label, file: file, line: line)
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

    func testGemmAndMatMul() throws {
        for (m, k, n) in [(1, 7, 5), (3, 16, 9), (8, 2048, 10)] {
            try compare(.gemm(GemmAttributes(transB: true)), [random.tensor([m, k]), random.tensor([n, k]), random.tensor([n])], "gemm \(m)x\(k)x\(n)")
            try compare(.gemm(GemmAttributes(alpha: 0.5, beta: 2, transA: true)), [random.tensor([k, m]), random.tensor([k, n]), random.tensor([m, 1])], "gemm transA")
            try compare(.matMul, [random.tensor([m, k]), random.tensor([k, n])], "matmul \(m)x\(k)x\(n)")
        }
    }
}
