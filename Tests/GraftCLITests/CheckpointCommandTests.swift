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
    /// same summary and the same output.
    func testConvertWritesStateDictsPyTorchLoads() throws {
        let dir = try TemporaryDirectory()
        let onnx = Fixtures.tiny("ts_opset17_bn.onnx")
        let input = Fixtures.tiny("input_b1.npy"), reference = Fixtures.tiny("output_b1.npy")
        let summary = try graft(["summary", onnx]).stdout
        for name in ["tiny.pth", "tiny.safetensors", "tiny.h5"] {
            let path = dir.file(name)
            let converted = try graft(["convert", onnx, path])
            XCTAssertTrue(converted.stdout.hasPrefix("wrote \(path): "), converted.stdout)
            if !name.hasSuffix(".h5") {
                try TorchPython.run("check_torch_state_dict.py", [path, "--torchvision-arch", Self.tinyArch, "--input", input, "--expect", reference])
            }
            XCTAssertEqual(try graft(["summary", path]).stdout, summary, name)
            let out = dir.file(name + ".npy")
            _ = try graft(["infer", path, "--input", input, "--output", out])
            assertClose(try NPY.read(out), try NPY.read(reference))
        }
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
        _ = try graft(["infer", grafted, "--input", Fixtures.tiny("input_b3.npy"), "--output", graftOutput])
        let arch = #"{"block": "Bottleneck", "layers": [1, 1, 1, 1], "base": 8, "num_classes": 3, "head": [16, 8]}"#
        try TorchPython.run("check_torch_state_dict.py", [pth, "--torchvision-arch", arch, "--input", Fixtures.tiny("input_b3.npy"),
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
