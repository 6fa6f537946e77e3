import Foundation
import GraftTestSupport
import XCTest

/// The transfer-learning flow through the `graft` binary: train, evaluate, infer on images, export.
final class TrainCommandTests: XCTestCase {
    func testTrainEvaluateInferOnSyntheticImages() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), out = dir.file("grafted.onnx")
        XCTAssertEqual(try GraftProcess.run(["demo-data", data, "--per-class", "40"]).status, 0)
        let train = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", data, "--out", out,
                                          "--epochs", "15", "--head", "64,32"])
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stderr.contains("epoch 1: train loss"), train.stderr)
        for file in [out, out + ".history.csv", out + ".history.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: file), file)
        }
        let evaluate = try GraftProcess.run(["evaluate", out, "--data", data, "--format", "json"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as? [String: Any])
        let accuracy = try XCTUnwrap((report["report"] as? [String: Any])?["accuracy"] as? Double)
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
        let infer = try GraftProcess.run(["infer", out, data + "/train/cat.1.jpg", data + "/train/dog.2.jpg"])
        XCTAssertEqual(infer.status, 0, infer.stderr)
        XCTAssertTrue(infer.stdout.contains("cat.1.jpg: cat "), infer.stdout)
        XCTAssertTrue(infer.stdout.contains("dog.2.jpg: dog "), infer.stdout)
        // The grafted model exports to HDF5 and reads back with its class names.
        let h5 = dir.file("grafted.h5")
        XCTAssertEqual(try GraftProcess.run(["convert", out, h5]).status, 0)
        let again = try GraftProcess.run(["infer", h5, data + "/train/cat.1.jpg", "--json"])
        XCTAssertTrue(again.stdout.contains("\"class\" : \"cat\""), again.stdout)
    }

    func testBadDataFolders() throws {
        let dir = try TemporaryDirectory()
        let empty = dir.file("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let result = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", empty, "--out", dir.file("m.onnx")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("graft: error: "), result.stderr)
        XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, result.stderr)
        let usage = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", empty, "--out", dir.file("m.txt")])
        XCTAssertEqual(usage.status, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("m.onnx")))
    }
}
