import GraftCore
import GraftONNX
import GraftRuntime
import GraftTestSupport
import GraftTorch
import XCTest

/// `.pth` files as torch.save writes them, each read back as the tensors of the model's ONNX
/// export (the TorchScript exporter names its initializers by state_dict key).
final class CheckpointReadTests: XCTestCase {
    static func path(_ name: String) -> String { Fixtures.path("torch/\(name)") }

    static let models = ["basic", "fc_head"]
    /// Every way the fixtures save a model's state_dict (see fixtures/torch/README.md).
    static let variants = ["", "_legacy", "_protocol4", "_f16", "_bf16", "_checkpoint", "_data_parallel", "_strided"]

    func testEveryFileHoldsTheTensorsOfTheONNXExport() throws {
        for model in Self.models {
            let onnx = try ONNXImporter.importModel(at: Self.path("\(model).onnx"))
            let plain = try TorchCheckpoint.read(at: Self.path("\(model).pth"))
            let floatKeys = plain.entries.filter { $0.tensor.dtype == .float32 }.map(\.key)
            XCTAssertEqual(Set(floatKeys), Set(onnx.constantOrder), model)
            for variant in Self.variants {
                let file = "\(model)\(variant).pth"
                let dict = try TorchCheckpoint.read(at: Self.path(file))
                XCTAssertEqual(dict.entries.map(\.key), plain.entries.map(\.key), file)
                for entry in dict.entries {
                    if entry.key.hasSuffix("num_batches_tracked") {
                        XCTAssertEqual(entry.tensor.dtype, .int64, "\(file): \(entry.key)")
                        XCTAssertEqual(entry.tensor.int64s, [1], "\(file): \(entry.key) after one training step")
                    } else {
                        XCTAssertEqual(entry.tensor, onnx.constants[entry.key], "\(file): \(entry.key)")
                    }
                }
            }
        }
    }

    func testFloat32StoragesAreBorrowedOthersConverted() throws {
        let zip = try TorchCheckpoint.read(at: Self.path("basic.pth"))
        XCTAssertTrue(zip.entries.filter { $0.tensor.dtype == .float32 }.allSatisfy(\.tensor.isMemoryMapped))
        for file in ["basic_f16.pth", "basic_bf16.pth"] {
            let converted = try TorchCheckpoint.read(at: Self.path(file))
            XCTAssertTrue(converted.entries.allSatisfy { !$0.tensor.isMemoryMapped }, file)
            XCTAssertEqual(converted.entries.filter { $0.tensor.dtype == .float32 }.count,
                           zip.entries.filter { $0.tensor.dtype == .float32 }.count, file)
        }
    }

    func testStridedViewsAreCopiedInRowMajorOrder() throws {
        for model in Self.models {
            let plain = try TorchCheckpoint.read(at: Self.path("\(model).pth"))
            let strided = try TorchCheckpoint.read(at: Self.path("\(model)_strided.pth"))
            let last = plain.entries.last { $0.key.hasPrefix("fc") && $0.key.hasSuffix(".weight") }!.key
            let bias = String(last.dropLast("weight".count)) + "bias"
            for key in [last, bias, "conv1.weight"] {
                XCTAssertEqual(strided[key], plain[key], "\(model): \(key)")
            }
            XCTAssertFalse(strided[last]!.isMemoryMapped, "a transposed view is copied")
        }
    }

    func testCheckpointDictGivesItsStateDictAndNamesTheRest() throws {
        let plain = try TorchCheckpoint.read(at: Self.path("basic.pth"))
        XCTAssertEqual(plain.ignored, [])
        let checkpoint = try TorchCheckpoint.read(at: Self.path("basic_checkpoint.pth"))
        XCTAssertEqual(checkpoint.ignored, ["epoch", "optimizer_state_dict"])
        let named = try TorchCheckpoint.read(at: Self.path("basic_checkpoint.pth"), key: "model_state_dict")
        XCTAssertEqual(named.entries.map(\.key), plain.entries.map(\.key))
        XCTAssertEqual(named.ignored, ["epoch", "optimizer_state_dict"])
    }

    func testKeyWithoutTensorsIsRefused() {
        // Adam's state is keyed by parameter number: no tensor has a name there.
        let path = Self.path("basic_checkpoint.pth")
        XCTAssertThrowsError(try TorchCheckpoint.read(at: path, key: "optimizer_state_dict")) {
            XCTAssertEqual("\($0)", "\(path): 'optimizer_state_dict' holds no tensors by name (its keys: 'state', 'param_groups')")
        }
        XCTAssertThrowsError(try TorchCheckpoint.read(at: path, key: "epoch")) {
            XCTAssertEqual("\($0)", "\(path): 'epoch' holds an int, not a state_dict")
        }
    }

    func testRarerFormsReadAsTheToyStateDict() throws {
        for file in ["toy.pth", "toy_big_endian.pth", "toy_zip64.pth", "toy_protocol1.pth", "toy_legacy_protocol1.pth"] {
            let dict = try TorchCheckpoint.read(at: Self.path(file))
            XCTAssertEqual(dict.entries.map(\.key), ["fc.weight", "fc.bias", "steps"], file)
            XCTAssertEqual(dict["fc.weight"], Tensor(shape: [3, 2], floats: [0, 1, 2, 3, 4, 5]), file)
            XCTAssertEqual(dict["fc.bias"], Tensor(shape: [3], floats: [1, 1, 1]), file)
            XCTAssertEqual(dict["steps"], Tensor(shape: [3], int64s: [1, 2, -3]), file)
        }
    }

    func testMissingCheckpointKeyListsTheTopLevelKeys() {
        let path = Self.path("basic_checkpoint.pth")
        XCTAssertThrowsError(try TorchCheckpoint.read(at: path, key: "weights")) {
            XCTAssertEqual("\($0)", "\(path): no top-level key 'weights' in the checkpoint (its keys: 'epoch', 'model_state_dict', 'optimizer_state_dict')")
        }
    }

    func testDataParallelPrefixIsDropped() throws {
        let plain = try TorchCheckpoint.read(at: Self.path("fc_head.pth"))
        let prefixed = try TorchCheckpoint.read(at: Self.path("fc_head_data_parallel.pth"))
        XCTAssertEqual(prefixed.entries.map(\.key), plain.entries.map(\.key))
        XCTAssertTrue(prefixed.entries.map(\.key).contains("fc.6.weight"))
    }

    func testTorchScriptArchiveIsRefused() {
        let path = Self.path("fc_head_torchscript.pt")
        XCTAssertTrue(TorchCheckpoint.isCheckpoint(at: path))
        XCTAssertThrowsError(try TorchCheckpoint.read(at: path)) {
            XCTAssertEqual("\($0)", "\(path): a TorchScript archive (code, not just weights): export it with torch.onnx.export, "
                + "or save its state_dict with torch.save")
        }
    }

    func testOtherFilesAreNotCheckpoints() {
        XCTAssertTrue(TorchCheckpoint.isCheckpoint(at: Self.path("basic.pth")))
        XCTAssertTrue(TorchCheckpoint.isCheckpoint(at: Self.path("basic_legacy.pth")))
        let onnx = Self.path("basic.onnx")
        XCTAssertFalse(TorchCheckpoint.isCheckpoint(at: onnx))
        XCTAssertThrowsError(try TorchCheckpoint.read(at: onnx)) {
            XCTAssertEqual("\($0)", "\(onnx): not a PyTorch checkpoint: neither a zip archive nor a legacy torch.save file")
        }
    }

    /// The exports the tensors are compared with are PyTorch's models: each gives PyTorch's
    /// output (the fixture script has no ONNX Runtime to check them with).
    func testONNXExportsGivePyTorchsOutputs() throws {
        let input = try NPY.read(Fixtures.path("hdf5/input_b1.npy"))
        for model in Self.models {
            let graph = try ONNXImporter.importModel(at: Self.path("\(model).onnx"))
            let output = try Interpreter(graph: graph).run([graph.inputs[0].name: input])[graph.outputs[0].name]!
            let c = Closeness(output, try NPY.read(Self.path("\(model).output_b1.npy")))
            XCTAssertTrue(c.ok, "\(model): \(c)")
        }
    }

    /// The graph the state_dict builder makes of each file gives PyTorch's output. (`fc_head`
    /// ends in a LogSoftmax, which no state_dict key shows.)
    func testGraphFromEveryBasicFileMatchesPyTorch() throws {
        let input = try NPY.read(Fixtures.path("hdf5/input_b1.npy"))
        let reference = try NPY.read(Self.path("basic.output_b1.npy"))
        for variant in Self.variants {
            let file = "basic\(variant).pth"
            let dict = try TorchCheckpoint.read(at: Self.path(file))
            let weights = dict.entries.filter { !$0.key.hasSuffix("num_batches_tracked") }
            let model = try TorchvisionResNet.infer(from: Dictionary(uniqueKeysWithValues: weights.map { ($0.key, $0.tensor.shape) }))
            let graph = try model.graph(name: "basic") { key, _ in dict[key]! }
            let output = try Interpreter(graph: graph).run([graph.inputs[0].name: input])[graph.outputs[0].name]!
            let c = Closeness(output, reference)
            XCTAssertTrue(c.ok, "\(file): \(c)")
        }
    }
}
