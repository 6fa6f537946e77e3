import Foundation
import GraftTestSupport
import XCTest

/// Every bad model gets one line on stderr naming the file and the problem, and exit status 1.
final class BadInputTests: XCTestCase {
    let input = Fixtures.tiny("input_b1.npy")

    func expectError(_ model: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try GraftProcess.run(["infer", model, "--input", input])
        XCTAssertEqual(result.status, 1, file: file, line: line)
        XCTAssertEqual(result.stderr, "graft: error: \(model): \(message)\n", file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
    }

    func testCorpusOfBadModels() throws {
        let bad = { (name: String) in Fixtures.path("bad/\(name)") }
        try expectError(bad("unsupported_op.onnx"), "node 'mix' (Einsum): op Einsum is not supported (opset 17)")
        try expectError(bad("unsupported_attribute.onnx"), "node 'act' (Relu): attribute 'alpha' is not supported (opset 17)")
        try expectError(bad("future_opset.onnx"), "opset 99 is not supported (Graft reads opsets 1 to 23)")
        try expectError(bad("dangling_input.onnx"), "node 'add' (Add): tensor 'ghost': the input is not produced by any node, graph input or constant")
        try expectError(bad("cycle.onnx"), "node 'first' (Add): the graph has a cycle through this node")
        try expectError(bad("short_raw_data.onnx"), "tensor 'w': raw_data holds 8 bytes; float32 [1, 4] needs 16")
        try expectError(bad("string_initializer.onnx"), "tensor 'names': data type 8 (STRING) is not supported")
        try expectError(bad("escaping_external_data.onnx"), "tensor 'w': external data location '../../etc/passwd' escapes the model's folder")
    }

    func testNotAnONNXFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("image.onnx")
        // JPEG magic then text: bytes that are not a valid protobuf message.
        try Data([0xFF, 0xD8, 0xFF, 0xE0] + Array("not a model at all".utf8)).write(to: URL(fileURLWithPath: path))
        try expectError(path, "not an ONNX model: the protobuf does not parse (truncated or another format)")
        try Data().write(to: URL(fileURLWithPath: path))
        try expectError(path, "the file is empty, not an ONNX model")
    }

    func testTruncatedModelsFailCleanly() throws {
        let dir = try TemporaryDirectory()
        let original = try Data(contentsOf: URL(fileURLWithPath: Fixtures.tiny("ts_opset17_folded.onnx")))
        for fraction in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999] {
            let path = dir.file("cut.onnx")
            try original.prefix(Int(Double(original.count) * fraction)).write(to: URL(fileURLWithPath: path))
            let result = try GraftProcess.run(["infer", path, "--input", input])
            XCTAssertEqual(result.status, 1, "cut at \(fraction)")
            XCTAssertTrue(result.stderr.hasPrefix("graft: error: \(path): "), result.stderr)
            XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, result.stderr)
        }
    }

    func testMissingAndShortExternalData() throws {
        let dir = try TemporaryDirectory()
        let model = dir.file("dynamo_opset18.onnx")
        try FileManager.default.copyItem(atPath: Fixtures.tiny("dynamo_opset18.onnx"), toPath: model)
        try expectError(model, "tensor 'conv1.weight': external data file 'dynamo_opset18.onnx.data' is missing (No such file or directory)")
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.tiny("dynamo_opset18.onnx.data")))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: dir.file("dynamo_opset18.onnx.data")))
        let result = try GraftProcess.run(["infer", model, "--input", input])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("graft: error: \(model): tensor '"), result.stderr)
        XCTAssertTrue(result.stderr.hasSuffix("but 'dynamo_opset18.onnx.data' has \(data.count - 100)\n"), result.stderr)
    }

    func testExternalDataSymlinkOutOfTheFolderIsRefused() throws {
        let outside = try TemporaryDirectory(), dir = try TemporaryDirectory()
        try FileManager.default.copyItem(atPath: Fixtures.tiny("dynamo_opset18.onnx.data"), toPath: outside.file("weights"))
        try FileManager.default.copyItem(atPath: Fixtures.tiny("dynamo_opset18.onnx"), toPath: dir.file("m.onnx"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("dynamo_opset18.onnx.data"), withDestinationPath: outside.file("weights"))
        let result = try GraftProcess.run(["infer", dir.file("m.onnx"), "--input", input])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("external data location 'dynamo_opset18.onnx.data' escapes the model's folder"), result.stderr)
    }

    func testWrongInputShapeAndBadNPY() throws {
        let dir = try TemporaryDirectory()
        let model = Fixtures.tiny("ts_opset17_folded.onnx")
        let wrong = try GraftProcess.run(["infer", model, "--input", Fixtures.tiny("input_b3.npy")])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertEqual(wrong.stderr, "graft: error: \(Fixtures.tiny("input_b3.npy")): tensor 'input': input 'input' must have shape [1, 3, 64, 64], got [3, 3, 64, 64]\n")
        let npy = dir.file("x.npy")
        try Data("not numpy".utf8).write(to: URL(fileURLWithPath: npy))
        let bad = try GraftProcess.run(["infer", model, "--input", npy])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "graft: error: \(npy): not a NumPy .npy file (bad magic)\n")
    }

    func testUsageErrorsExitWith2() throws {
        let missing = try GraftProcess.run(["infer", "/nonexistent/model.onnx", "--input", input])
        XCTAssertEqual(missing.status, 1, "a missing file is bad input, not bad usage")
        XCTAssertEqual(missing.stderr, "graft: error: /nonexistent/model.onnx: no such file\n")
        let topK = try GraftProcess.run(["infer", Fixtures.tiny("ts_opset17_folded.onnx"), "--input", input, "--top-k", "0"])
        XCTAssertEqual(topK.status, 2)
    }
}
