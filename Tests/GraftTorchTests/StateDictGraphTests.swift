import GraftCore
import GraftONNX
import GraftTestSupport
import GraftTorch
import XCTest

/// The state_dict of a graph and the graph of a state_dict, against the TorchScript ONNX exports
/// of the same torchvision models.
final class StateDictGraphTests: XCTestCase {
    /// ONNX → state_dict → graph gives back the exporter's graph, node for node.
    func testTheStateDictOfAnONNXExportRebuildsIt() throws {
        for name in ["basic", "bottleneck_f16", "fc_head"] {
            let onnx = try ONNXImporter.importModel(at: Fixtures.path("hdf5/\(name).onnx"))
            let stateDict = try StateDict(graph: onnx)
            let rebuilt = try stateDict.graph(name: onnx.name)
            assertSameModel(rebuilt, onnx, name)
            // One zero num_batches_tracked per batch norm, as model.state_dict() has.
            let counters = stateDict.entries.filter { $0.key.hasSuffix(".num_batches_tracked") }
            XCTAssertEqual(counters.count, onnx.nodes.filter { $0.op.name == "BatchNormalization" }.count, name)
            XCTAssertTrue(counters.allSatisfy { $0.tensor.dtype == .int64 && $0.tensor.shape == [] }, name)
        }
    }

    func testAnOptimizedOrFoldedGraphIsRefused() throws {
        let folded = try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_folded.onnx"))
        XCTAssertThrowsError(try StateDict(graph: folded)) { error in
            XCTAssertEqual("\(error)", "the model has no torchvision state_dict form: its weights are not named by state_dict keys (conv1.weight, layer1.0.bn1.weight, ...); an export with constant folding loses them: export with do_constant_folding=False, or give Graft the .pth")
        }
        // Batch norm removed by hand, as the folding pass does: the keys no longer fit.
        var graph = try ONNXImporter.importModel(at: Fixtures.path("hdf5/basic.onnx"))
        let bn = graph.nodes.firstIndex { $0.op.name == "BatchNormalization" }!
        let output = graph.nodes[bn].outputs[0], input = graph.nodes[bn].inputs[0]
        for key in graph.nodes[bn].inputs.dropFirst() { graph.constants[key] = nil }
        graph.constantOrder.removeAll { graph.constants[$0] == nil }
        graph.nodes.remove(at: bn)
        for i in graph.nodes.indices { graph.nodes[i].inputs = graph.nodes[i].inputs.map { $0 == output ? input : $0 } }
        XCTAssertThrowsError(try StateDict(graph: graph)) { error in
            XCTAssertEqual("\(error)", "the model has no torchvision state_dict form: the state_dict does not match a torchvision ResNet (BasicBlock [2, 2, 2, 2]): missing bn1.bias, bn1.running_mean, bn1.running_var, bn1.weight")
        }
    }
}
