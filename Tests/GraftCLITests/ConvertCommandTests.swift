import Foundation
import GraftCore
import GraftTestSupport
import XCTest

final class ConvertCommandTests: XCTestCase {
    func testReportShowsTheFoldsAndTheResultRunsTheSame() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.materialized("resnet50/resnet50_bn.onnx")
        let output = dir.file("lean.onnx")
        let result = try GraftProcess.run(["convert", model, output, "--report"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("batch-norm folded: 53\n"), result.stdout)
        XCTAssertTrue(result.stdout.contains("parameters: 25,557,032 -> 25,530,472"), result.stdout)
        // The converted model is plain ONNX: 53 convolutions, no batch norm, same answers.
        let summary = try GraftProcess.run(["summary", output])
        XCTAssertFalse(summary.stdout.contains("BatchNorm2d"))
        XCTAssertEqual(summary.stdout.components(separatedBy: "Conv2d(").count - 1, 53)
        let input = try Fixtures.materialized("resnet50/input_b1.npy")
        for (m, out) in [(model, dir.file("a.npy")), (output, dir.file("b.npy"))] {
            let r = try GraftProcess.run(["infer", m, "--input", input, "--output", out, "--no-optimize"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        // Both against ONNX Runtime's output for the original model.
        let reference = try NPY.read(try Fixtures.materialized("resnet50/output_b1.npy"))
        assertClose(try NPY.read(dir.file("a.npy")), reference)
        assertClose(try NPY.read(dir.file("b.npy")), reference)
    }

    func testExternalDataAndOpset() throws {
        let dir = try TemporaryDirectory()
        let output = dir.file("m.onnx")
        let result = try GraftProcess.run(["convert", Fixtures.tiny("ts_opset17_bn.onnx"), output, "--external-data", "--opset", "13"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: output + ".data"))
        let infer = try GraftProcess.run(["infer", output, "--input", Fixtures.tiny("input_b1.npy")])
        XCTAssertEqual(infer.status, 0, infer.stderr)
    }

    func testAnUnwritablePathLeavesNothing() throws {
        let dir = try TemporaryDirectory()
        let target = dir.file("missing/out.onnx")
        let result = try GraftProcess.run(["convert", Fixtures.tiny("ts_opset17_bn.onnx"), target])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("graft: error: \(target): cannot write"), result.stderr)
        XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        // An existing file is left as it was when the conversion fails.
        let existing = dir.file("keep.onnx")
        try Data("old".utf8).write(to: URL(fileURLWithPath: existing))
        let bad = try GraftProcess.run(["convert", Fixtures.path("bad/unsupported_op.onnx"), existing])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "old")
        let usage = try GraftProcess.run(["convert", Fixtures.tiny("ts_opset17_bn.onnx"), dir.file("x.onnx"), "--opset", "3"])
        XCTAssertEqual(usage.status, 2)
    }
}
