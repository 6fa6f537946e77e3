import GraftCore
import GraftONNX
import GraftPasses
import GraftRuntime
import GraftTestSupport
import XCTest

final class PassTests: XCTestCase {
    var random = SeededGenerator(seed: 11)

    func counts(_ g: Graph) -> [String: Int] { g.nodes.reduce(into: [:]) { $0[$1.op.name, default: 0] += 1 } }

    func run(_ g: Graph, _ x: Tensor) throws -> Tensor {
        try Interpreter(graph: g).run([g.inputs[0].name: x])[g.outputs[0].name]!
    }

    /// conv → batch norm → relu on a [N, 3, 8, 8] input, with or without a conv bias.
    func convBatchNorm(bias: Bool, epsilon: Float = 1e-3) -> Graph {
        var constants = ["w": random.tensor([4, 3, 3, 3]), "g": random.tensor([4]), "b": random.tensor([4]),
                         "m": random.tensor([4]), "v": Tensor(shape: [4], floats: [0.5, 1, 1.5, 2])]
        if bias { constants["cb"] = random.tensor([4]) }
        return Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(3), .value(8), .value(8)]))],
                     outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(4), .value(8), .value(8)]))],
                     nodes: [Node(name: "conv", op: .conv(ConvAttributes(window: Window(kernel: [3, 3], pads: [1, 1, 1, 1]))),
                                  inputs: bias ? ["x", "w", "cb"] : ["x", "w"], outputs: ["c"], scope: ModuleScope(path: "conv1")),
                             Node(name: "bn", op: .batchNorm(epsilon: epsilon, momentum: 0.9), inputs: ["c", "g", "b", "m", "v"], outputs: ["n"]),
                             Node(name: "relu", op: .relu, inputs: ["n"], outputs: ["y"])],
                     constants: constants)
    }

    func testConvBatchNormFoldsWithAndWithoutBias() throws {
        for bias in [false, true] {
            let g = convBatchNorm(bias: bias)
            let (optimized, report) = try PassManager().run(g)
            XCTAssertEqual(counts(optimized), ["Conv": 1, "Relu": 1], "bias \(bias)")
            XCTAssertEqual(report.counts.first { $0.pass == "batch-norm folded" }?.patches, 1)
            XCTAssertEqual(optimized.nodes[0].inputs, ["x", "conv1.weight", "conv1.bias"])
            let x = random.tensor([2, 3, 8, 8])
            assertClose(try run(optimized, x), try run(g, x), atol: 1e-5, rtol: 1e-4, "bias \(bias)")
        }
    }

    func testBatchNormNotAfterConvBecomesScaleAndShift() throws {
        var g = convBatchNorm(bias: false)
        g.nodes[1].inputs[0] = "x"  // batch norm straight on the input (3 channels)
        g.constants["g"] = random.tensor([3]); g.constants["b"] = random.tensor([3])
        g.constants["m"] = random.tensor([3]); g.constants["v"] = Tensor(shape: [3], floats: [0.5, 1, 2])
        g.nodes[0].inputs[0] = "n"
        g.nodes[2].inputs[0] = "c"
        g.nodes = [g.nodes[1], g.nodes[0], g.nodes[2]]
        let (optimized, _) = try PassManager().run(g)
        XCTAssertEqual(counts(optimized), ["Mul": 1, "Add": 1, "Conv": 1, "Relu": 1])
        let x = random.tensor([1, 3, 8, 8])
        assertClose(try run(optimized, x), try run(g, x), atol: 1e-5, rtol: 1e-4)
    }

    func testBatchNormWithComputedStatisticsIsLeftAlone() throws {
        var g = convBatchNorm(bias: false)
        g.inputs.append(ValueInfo(name: "gamma", dtype: .float32, shape: [4]))
        g.constants["g"] = nil
        g.constantOrder.removeAll { $0 == "g" }
        g.nodes[1].inputs[1] = "gamma"
        let (optimized, report) = try PassManager().run(g)
        XCTAssertEqual(counts(optimized)["BatchNormalization"], 1)
        XCTAssertEqual(report.counts.first { $0.pass == "batch-norm folded" }?.patches, 0)
    }

    func testShapeArithmeticFoldsAroundASymbolicBatch() throws {
        // x [N, 4, 2, 2] → Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) → [N, 16]
        let g = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(4), .value(2), .value(2)]))],
                      outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(16)]))],
                      nodes: [Node(name: "shape", op: .shape(start: 0, end: nil), inputs: ["x"], outputs: ["s"]),
                              Node(name: "gather", op: .gather(axis: 0), inputs: ["s", "zero"], outputs: ["n"]),
                              Node(name: "gather1", op: .gather(axis: 0), inputs: ["s", "one"], outputs: ["c"]),
                              Node(name: "unsq", op: .unsqueeze(axes: [0]), inputs: ["n"], outputs: ["n1"]),
                              Node(name: "unsq1", op: .unsqueeze(axes: [0]), inputs: ["c"], outputs: ["c1"]),
                              Node(name: "mul", op: .mul, inputs: ["c1", "four"], outputs: ["k"]),
                              Node(name: "concat", op: .concat(axis: 0), inputs: ["n1", "k"], outputs: ["target"]),
                              Node(name: "reshape", op: .reshape(allowZero: false), inputs: ["x", "target"], outputs: ["y"])],
                      constants: ["zero": Tensor(shape: [], int64s: [0]), "one": Tensor(shape: [], int64s: [1]),
                                  "four": Tensor(shape: [1], int64s: [4])])
        let (optimized, _) = try PassManager().run(g)
        // The batch branch stays (N is only known at run time); C·4 = 16 folds to a constant.
        XCTAssertNil(optimized.nodes.first { $0.name == "mul" })
        XCTAssertNil(optimized.nodes.first { $0.name == "gather1" })
        XCTAssertNotNil(optimized.nodes.first { $0.name == "gather" })
        let x = random.tensor([3, 4, 2, 2])
        assertClose(try run(optimized, x), try run(g, x))
        // With a concrete batch the whole chain folds and the reshape reads a constant.
        var fixed = g
        fixed.inputs[0].shape = [3, 4, 2, 2]
        let (folded, _) = try PassManager().run(fixed)
        XCTAssertEqual(counts(folded), ["Reshape": 1])
    }

    func testARuleLooksAgainWhenWhatItReadsUpstreamChanges() throws {
        // The Mul is visited while the Conv's weight is still computed (an Identity of a
        // constant); removing the Identity later makes the Mul foldable, two nodes away.
        var g = convBatchNorm(bias: false)
        g.nodes = [Node(name: "id", op: .identity, inputs: ["w"], outputs: ["wi"]),
                   Node(name: "conv", op: .conv(ConvAttributes(window: Window(kernel: [3, 3], pads: [1, 1, 1, 1]))), inputs: ["x", "wi"], outputs: ["c"]),
                   Node(name: "scale", op: .mul, inputs: ["c", "s"], outputs: ["y"])]
        g.setConstant("s", random.tensor([4, 1, 1]))
        let (optimized, report) = try PassManager(passes: [FoldScaleShiftIntoConv(), EliminateIdentity()]).run(g)
        XCTAssertEqual(counts(optimized), ["Conv": 1])
        XCTAssertEqual(report.counts.map(\.patches), [1, 1])
        let x = random.tensor([1, 3, 8, 8])
        assertClose(try run(optimized, x), try run(g, x), atol: 1e-5, rtol: 1e-4)
    }

    func testPatchLimitStopsEarly() throws {
        let (partial, report) = try PassManager(patchLimit: 1).run(convBatchNorm(bias: false))
        XCTAssertTrue(report.stoppedEarly)
        XCTAssertEqual(report.counts.map(\.patches).reduce(0, +), 1)
        XCTAssertEqual(partial.nodes.count, 4)  // BN became Mul + Add; nothing folded yet
    }

    func testTinyFixturesAgreeOptimizedAndNot() throws {
        let x = try NPY.read(Fixtures.tiny("input_b1.npy")), reference = try NPY.read(Fixtures.tiny("output_b1.npy"))
        for variant in ["ts_opset11_folded", "ts_opset17_bn", "ts_opset11_bn", "ts_opset17_dynamic", "dynamo_opset18", "dynamo_opset18_dynamic"] {
            let g = try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx"))
            let (optimized, report) = try PassManager().run(g)
            XCTAssertEqual(counts(optimized)["BatchNormalization"], nil, variant)
            XCTAssertEqual(counts(optimized)["Conv"], 17, variant)
            assertClose(try run(optimized, x), try run(g, x), variant)
            assertClose(try run(optimized, x), reference, variant)
            if variant.hasSuffix("_bn") {
                XCTAssertEqual(report.counts.first { $0.pass == "batch-norm folded" }?.patches, 17, variant)
            }
        }
    }
}
