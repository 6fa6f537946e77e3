import GraftCore
import GraftONNX
import GraftRuntime
import GraftTestSupport
import GraftTorch
import XCTest

/// The full-size torchvision ResNet-50 as PyTorch itself saved it (`make fixtures`: the
/// materialized ONNX model's weights loaded into `torchvision.models.resnet50()` and written by
/// `torch.save` and safetensors), read without Python: the same graph as the ONNX export, and
/// ONNX Runtime's output.
final class ResNet50CheckpointTests: XCTestCase {
    func testEveryFormatGivesTheONNXGraphAndItsOutput() throws {
        let onnx = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        let input = try NPY.read(try Fixtures.materialized("resnet50/input_b1.npy"))
        let reference = try NPY.read(try Fixtures.materialized("resnet50/output_b1.npy"))
        let files: [(String, StateDict)] = [
            ("resnet50.pth", try TorchCheckpoint.read(at: try Fixtures.materialized("resnet50/resnet50.pth"))),
            ("resnet50_legacy.pth", try TorchCheckpoint.read(at: try Fixtures.materialized("resnet50/resnet50_legacy.pth"))),
            ("resnet50_checkpoint.pth", try TorchCheckpoint.read(at: try Fixtures.materialized("resnet50/resnet50_checkpoint.pth"))),
            ("resnet50.safetensors", try Safetensors.read(at: try Fixtures.materialized("resnet50/resnet50.safetensors"))),
        ]
        for (name, stateDict) in files {
            let graph = try stateDict.graph(name: onnx.name)
            assertSameModel(graph, onnx, name)
            let c = Closeness(try Interpreter(graph: graph).run([graph.inputs[0].name: input])[graph.outputs[0].name]!, reference)
            XCTAssertTrue(c.ok, "\(name): \(c)")
        }
        // The training script's checkpoint: the state_dict under model_state_dict, nn.DataParallel's
        // prefixes dropped, the rest set aside.
        XCTAssertEqual(files[2].1.ignored, ["epoch", "optimizer_state_dict"])
        XCTAssertFalse(files[2].1.entries.contains { $0.key.hasPrefix("module.") })
        XCTAssertEqual(files[3].1.metadata["format"], "pt")
    }
}
