import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// Every command on PyTorch's own files (`.pth`, safetensors), and `convert` writing them for
/// PyTorch to load strictly, checked by PyTorch itself.
final class CheckpointCommandTests: XCTestCase {
    /// torchvision's `ResNet(Bottleneck, [1, 1, 1, 1])` at width 8, 10 classes: the tiny
    /// fixture model (fixtures/tiny/README.md).
    static let tinyArch = #"{"block": "Bottleneck", "layers": [1, 1, 1, 1], "base": 8, "num_classes": 10}"#

    func graft(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> GraftProcess {
        let r = try GraftProcess.run(arguments)
        XCTAssertEqual(r.status, 0, "graft \(arguments.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return r
    }

    /// ONNX → .pth / .safetensors / .h5: PyTorch loads each into torchvision's model with
    /// `strict=True` and computes PyTorch's own reference output; Graft reads each back to the
    /// same summary, and computes what PyTorch computes from the same file.
    func testConvertWritesStateDictsPyTorchLoads() throws {
        let dir = try TemporaryDirectory()
        let onnx = Fixtures.tiny("ts_opset17_bn.onnx")
        let input = Fixtures.tiny("input_b1.npy"), reference = Fixtures.tiny("output_b1.npy")
        // A state_dict records no input size: Graft declares torchvision's 224×224.
        var random = SeededGenerator(seed: 11)
        let large = dir.file("x224.npy")
        try NPY.write(random.tensor([2, 3, 224, 224]), to: large)
        let summary = try graft(["summary", onnx]).stdout
        for name in ["tiny.pth", "tiny.safetensors"] {
            let path = dir.file(name)
            let converted = try graft(["convert", onnx, path])
            XCTAssertTrue(converted.stdout.hasPrefix("wrote \(path): "), converted.stdout)
            try TorchPython.run("check_torch_state_dict.py", [path, "--torchvision-arch", Self.tinyArch, "--input", input, "--expect", reference])
            XCTAssertEqual(try graft(["summary", path]).stdout, summary, name)
            let out = dir.file(name + ".npy")
            _ = try graft(["infer", path, "--input", large, "--output", out])
            try TorchPython.run("check_torch_state_dict.py", [path, "--torchvision-arch", Self.tinyArch, "--input", large, "--expect", out])
        }
        // HDF5 records the graph as imported: its datasets are the state_dict's keys, which
        // PyTorch loads strictly once read with h5py.
        let h5 = dir.file("tiny.h5"), out = dir.file("h5.npy")
        _ = try graft(["convert", onnx, h5])
        try TorchPython.run("check_torch_state_dict.py", [h5, "--torchvision-arch", Self.tinyArch, "--input", input, "--expect", reference])
        XCTAssertEqual(try graft(["summary", h5]).stdout, summary)
        _ = try graft(["infer", h5, "--input", input, "--output", out])
        assertClose(try NPY.read(out), try NPY.read(reference))
    }

    /// A head grafted by `graft train` goes back to a PyTorch user: the `.pth` loads into
    /// torchvision's model with the same Sequential head, and PyTorch computes what Graft does.
    func testAGraftedModelGoesBackToPyTorch() throws {
        let dir = try TemporaryDirectory()
        let trunk = Fixtures.tiny("ts_opset17_bn.onnx")
        var random = SeededGenerator(seed: 5)
        let features = dir.file("f.npy"), labels = dir.file("l.npy"), grafted = dir.file("g.onnx")
        try NPY.write(random.tensor([40, 256]), to: features)
        try NPY.write(Tensor(shape: [40], int64s: (0..<40).map { Int64($0 % 3) }), to: labels)
        _ = try graft(["train", trunk, "--features", features, "--labels", labels, "--out", grafted, "--epochs", "2",
                       "--head", "16,8", "--dropout", "0.5,0.3"])
        let pth = dir.file("g.pth"), graftOutput = dir.file("y.npy")
        _ = try graft(["convert", grafted, pth])
        _ = try graft(["infer", grafted, "--input", Fixtures.tiny("input_b1.npy"), "--output", graftOutput])
        let arch = #"{"block": "Bottleneck", "layers": [1, 1, 1, 1], "base": 8, "num_classes": 3, "head": [16, 8]}"#
        try TorchPython.run("check_torch_state_dict.py", [pth, "--torchvision-arch", arch, "--input", Fixtures.tiny("input_b1.npy"),
                                                          "--expect", graftOutput])
    }

    /// A graph whose batch norm was folded (an export with constant folding) has no state_dict
    /// torchvision could load: refused, nothing written.
    func testAFoldedExportIsRefused() throws {
        let dir = try TemporaryDirectory()
        let r = try GraftProcess.run(["convert", Fixtures.tiny("ts_opset17_folded.onnx"), dir.file("x.pth")])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "graft: error: \(dir.file("x.pth")): the model has no torchvision state_dict form: its weights are not named by state_dict keys (conv1.weight, layer1.0.bn1.weight, ...); an export with constant folding loses them: export with do_constant_folding=False, or give Graft the .pth\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}

extension CheckpointCommandTests {
    /// A training script's checkpoint: the model found under its usual key, the rest mentioned;
    /// `--key` names another; a key that holds no state_dict is refused with the keys there are.
    func testCheckpointsAndKeys() throws {
        let checkpoint = Fixtures.path("torch/basic_checkpoint.pth")
        let summary = try graft(["summary", checkpoint])
        XCTAssertEqual(summary.stdout, try graft(["summary", Fixtures.path("torch/basic.onnx")]).stdout)
        XCTAssertEqual(summary.stderr, "graft: note: \(checkpoint): the checkpoint's epoch, optimizer_state_dict are not part of the model's state_dict and were left out\n")
        _ = try graft(["summary", checkpoint, "--key", "model_state_dict"])
        let wrong = try GraftProcess.run(["summary", checkpoint, "--key", "weights"])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertEqual(wrong.stderr, "graft: error: \(checkpoint): no top-level key 'weights' in the checkpoint (its keys: 'epoch', 'model_state_dict', 'optimizer_state_dict')\n")
    }

    /// Hostile files through the command line: one line naming the file, exit 1, nothing
    /// executed, nothing written.
    func testHostileFilesAreRefusedByEveryCommand() throws {
        let dir = try TemporaryDirectory()
        let marker = "/tmp/graft-pwned-os_system"
        try? FileManager.default.removeItem(atPath: marker)
        for name in ["os_system", "builtins_eval", "deflated", "dotdot_entry", "directory_past_end", "short_storage"] {
            let path = Fixtures.path("torch/bad/\(name).pth")
            for arguments in [["summary", path], ["convert", path, dir.file("out.onnx")], ["infer", path, "--input", Fixtures.tiny("input_b1.npy")]] {
                let r = try GraftProcess.run(arguments)
                XCTAssertEqual(r.status, 1, "\(arguments): \(r.stderr)")
                XCTAssertTrue(r.stderr.hasPrefix("graft: error: \(path): "), r.stderr)
                XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
                XCTAssertEqual(r.stdout, "")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        let script = Fixtures.path("torch/fc_head_torchscript.pt")
        let r = try GraftProcess.run(["summary", script])
        XCTAssertEqual(r.stderr, "graft: error: \(script): a TorchScript archive (code, not just weights): export it with torch.onnx.export, or save its state_dict with torch.save\n")
    }
}

extension CheckpointCommandTests {
    /// `train` takes its trunk straight from a `.pth`, and `bench` times one.
    func testTrainAndBenchFromAPthTrunk() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), out = dir.file("grafted.onnx")
        _ = try graft(["demo-data", data, "--per-class", "12"])
        let trunk = Fixtures.path("torch/basic.pth")
        let train = try graft(["train", trunk, "--data", data, "--out", out, "--epochs", "2", "--head", "8"])
        XCTAssertTrue(train.stdout.contains("model written to \(out)"), train.stdout)
        let summary = try graft(["summary", out]).stdout
        XCTAssertTrue(summary.contains("(fc): Sequential("), summary)
        let bench = try graft(["bench", Fixtures.path("torch/basic_f16.pth"), "--runs", "2", "--warmup", "0", "--json"])
        XCTAssertTrue(bench.stdout.contains("\"model\" : \"\(Fixtures.path("torch/basic_f16.pth"))\""), bench.stdout)
    }
}
