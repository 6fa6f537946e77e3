import GraftCore
import GraftRuntime
import GraftTestSupport
import XCTest

/// The one way every caller prepares a model: passes (or not), plan, errors that name the file.
final class CompiledModelTests: XCTestCase {
    /// A torchvision-style graph: Conv → BatchNormalization → Relu, which the passes fold.
    func graph() -> Graph {
        var g = Graph(name: "tiny")
        g.inputs = [ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("batch"), .value(2), .value(4), .value(4)]))]
        g.outputs = [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("batch"), .value(3), .value(4), .value(4)]))]
        var random = SeededGenerator(seed: 3)
        g.setConstant("w", random.tensor([3, 2, 3, 3]))
        for (name, base) in [("scale", 1.0), ("bias", 0.0), ("mean", 0.1), ("var", 1.5)] as [(String, Float)] {
            g.setConstant(name, Tensor(shape: [3], floats: (0..<3).map { _ in base + Float(random.uniform(in: 0...0.5)) }))
        }
        let window = Window(kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1])
        g.nodes = [
            Node(name: "conv", op: .conv(ConvAttributes(window: window, group: 1)), inputs: ["x", "w"], outputs: ["c"]),
            Node(name: "bn", op: .batchNorm(epsilon: 1e-5, momentum: 0.9), inputs: ["c", "scale", "bias", "mean", "var"], outputs: ["b"]),
            Node(name: "relu", op: .relu, inputs: ["b"], outputs: ["y"]),
        ]
        return g
    }

    func testThePassesRunUnlessTurnedOff() throws {
        let optimized = try CompiledModel(graph())
        XCTAssertFalse(optimized.graph.nodes.contains { $0.op.name == "BatchNormalization" })
        XCTAssertNotNil(optimized.passReport)
        let plain = try CompiledModel(graph(), optimize: false)
        XCTAssertEqual(plain.graph, graph())
        XCTAssertNil(plain.passReport)
        // Both compute the same thing.
        var random = SeededGenerator(seed: 4)
        let x = random.tensor([2, 2, 4, 4])
        let c = Closeness(try optimized.run(x), try plain.run(x), atol: 1e-5, rtol: 1e-5)
        XCTAssertTrue(c.ok, "\(c)")
    }

    func testAnInputThatDoesNotFitIsNamedAndTheModelFileIsNot() throws {
        let model = try CompiledModel(graph(), file: "tiny.onnx")
        XCTAssertThrowsError(try model.run(["x": Tensor(zeros: [1, 3, 4, 4])])) { error in
            let e = error as? GraftError
            XCTAssertEqual(e?.tensor, "x")
            XCTAssertNil(e?.file)
        }
        XCTAssertThrowsError(try model.run(["z": Tensor(zeros: [1, 2, 4, 4])])) { error in
            XCTAssertEqual("\(error)", "tensor 'x': no value given for input 'x'")
        }
    }
}
