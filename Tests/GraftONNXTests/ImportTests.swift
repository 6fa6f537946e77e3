import GraftCore
import GraftONNX
import GraftRuntime
import GraftTestSupport
import XCTest

/// Every PyTorch export variant of the tiny ResNet imports and matches PyTorch's output.
final class ImportTests: XCTestCase {
    static let variants = [
        "ts_opset11_folded", "ts_opset13_folded", "ts_opset17_folded",
        "ts_opset11_bn", "ts_opset17_bn", "ts_opset17_dynamic",
        "dynamo_opset18", "dynamo_opset18_dynamic",
    ]

    func run(_ graph: Graph, _ input: String) throws -> Tensor {
        let outputs = try Interpreter(graph: graph).run([graph.inputs[0].name: try NPY.read(Fixtures.tiny(input))])
        return outputs[graph.outputs[0].name]!
    }

    func testEveryVariantMatchesPyTorchAtBatch1() throws {
        let reference = try NPY.read(Fixtures.tiny("output_b1.npy"))
        for variant in Self.variants {
            let graph = try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx"))
            assertClose(try run(graph, "input_b1.npy"), reference, variant)
        }
    }

    func testDynamicBatchVariantsMatchPyTorchAtBatch3() throws {
        let reference = try NPY.read(Fixtures.tiny("output_b3.npy"))
        for variant in ["ts_opset17_dynamic", "dynamo_opset18_dynamic"] {
            let graph = try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx"))
            XCTAssertEqual(graph.inputs[0].shape.dims[0], .symbol("batch"), variant)
            assertClose(try run(graph, "input_b3.npy"), reference, variant)
            // The same graph runs at batch 1 too.
            assertClose(try run(graph, "input_b1.npy"), try NPY.read(Fixtures.tiny("output_b1.npy")), variant)
        }
    }

    func testExportVariantsHaveTheirOps() throws {
        let bn = opCounts(try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_bn.onnx")))
        XCTAssertEqual(bn["BatchNormalization"], 17)
        XCTAssertEqual(bn["Conv"], 17)
        let folded = opCounts(try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_folded.onnx")))
        XCTAssertNil(folded["BatchNormalization"])
        let dynamo = try ONNXImporter.importModel(at: Fixtures.tiny("dynamo_opset18.onnx"))
        XCTAssertEqual(dynamo.metadata.opset, 18)
        XCTAssertEqual(opCounts(dynamo)["ReduceMean"], 1)
        // Weights from the external data file are memory-mapped, not copied.
        XCTAssertTrue(dynamo.constants["conv1.weight"]!.isMemoryMapped)
    }

    func testModuleScopesFromBothExporters() throws {
        let ts = try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_bn.onnx"))
        let tsScopes = Set(ts.nodes.compactMap { $0.scope?.path })
        XCTAssertTrue(tsScopes.isSuperset(of: ["conv1", "layer1.0.conv1", "layer1.0.relu", "layer1.0.downsample.0", "layer1.0", "fc", ""]))
        XCTAssertFalse(tsScopes.contains("layer1.0.relu_1"))
        let dynamo = try ONNXImporter.importModel(at: Fixtures.tiny("dynamo_opset18.onnx"))
        let conv = dynamo.nodes.first { $0.op.name == "Conv" && $0.inputs[1] == "layer1.0.conv1.weight" }!
        XCTAssertEqual(conv.scope?.path, "layer1.0.conv1")
        XCTAssertEqual(conv.scope?.classNames.last, "torchvision.models.resnet.Bottleneck")
        let relu = dynamo.nodes.filter { $0.op == .relu && $0.scope?.path == "layer1.0.relu" }
        XCTAssertEqual(relu.count, 3)
    }

    func testShapeInferenceKeepsTheSymbolicBatch() throws {
        for variant in ["ts_opset17_dynamic", "dynamo_opset18_dynamic"] {
            let graph = try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx"))
            let facts = try graph.inferShapes()
            XCTAssertEqual(facts[graph.outputs[0].name]?.shape, Shape([.symbol("batch"), .value(10)]), variant)
            let bound = try graph.inferShapes(inputShapes: [graph.inputs[0].name: [4, 3, 64, 64]])
            XCTAssertEqual(bound[graph.outputs[0].name]?.shape, [4, 10], variant)
        }
    }
}
