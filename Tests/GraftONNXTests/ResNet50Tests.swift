import GraftCore
import GraftONNX
import GraftRuntime
import GraftTestSupport
import XCTest

/// The full-size torchvision ResNet-50 exported with its BatchNormalization nodes, weights
/// materialized by `make fixtures`, checked against ONNX Runtime's outputs.
final class ResNet50Tests: XCTestCase {
    static var graph: Graph?

    func model() throws -> Graph {
        if let g = Self.graph { return g }
        let g = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        Self.graph = g
        return g
    }

    func testStructureAndParameterCount() throws {
        let graph = try model()
        let counts = graph.nodes.reduce(into: [String: Int]()) { $0[$1.op.name, default: 0] += 1 }
        XCTAssertEqual(counts["Conv"], 53)
        XCTAssertEqual(counts["BatchNormalization"], 53)
        XCTAssertEqual(counts["Gemm"], 1)
        // torchvision's resnet50: sum(p.numel() for p in model.parameters()).
        XCTAssertEqual(graph.parameterCount, 25_557_032)
        XCTAssertEqual(graph.inputs[0].shape.dims[0], .symbol("batch"))
    }

    func testLogitsMatchONNXRuntimeAtBatch1And2() throws {
        let graph = try model()
        let interpreter = try Interpreter(graph: graph)
        for batch in [1, 2] {
            let x = try NPY.read(try Fixtures.materialized("resnet50/input_b\(batch).npy"))
            let reference = try NPY.read(try Fixtures.materialized("resnet50/output_b\(batch).npy"))
            let y = try interpreter.run([graph.inputs[0].name: x])[graph.outputs[0].name]!
            let c = Closeness(y, reference)
            print("ResNet-50 batch \(batch) vs ONNX Runtime: \(c)")
            XCTAssertTrue(c.ok, "batch \(batch): \(c)")
        }
    }
}
