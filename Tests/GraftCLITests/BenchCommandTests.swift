import Foundation
import GraftTestSupport
import XCTest

/// `graft bench` reports its figures (their values are for `make bench`, never asserted here).
final class BenchCommandTests: XCTestCase {
    func testJSONHasTheSchemaKeys() throws {
        let result = try GraftProcess.run(["bench", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--batch", "3", "--runs", "2", "--warmup", "1", "--json", "--profile"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let schema = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.root.appendingPathComponent("schemas/bench.schema.json"))) as? [String: Any])
        for key in try XCTUnwrap(schema["required"] as? [String]) { XCTAssertNotNil(json[key], key) }
        XCTAssertEqual(json["batch"] as? Int, 3)
        let profile = try XCTUnwrap(json["profile"] as? [[String: Any]])
        XCTAssertTrue(profile.contains { ($0["op"] as? String)?.hasPrefix("Conv") == true })
        let latency = try XCTUnwrap(json["latency_ms"] as? [String: Double])
        let latencyKeys = try XCTUnwrap(((schema["properties"] as? [String: Any])?["latency_ms"] as? [String: Any])?["required"] as? [String])
        XCTAssertEqual(Set(latency.keys), Set(latencyKeys))
        XCTAssertLessThanOrEqual(latency["min"]!, latency["p50"]!)
        XCTAssertLessThanOrEqual(latency["p99"]!, latency["max"]!)
        XCTAssertEqual(json["precision"] as? String, "f32")
        XCTAssertEqual(json["optimized"] as? Bool, true)
        XCTAssertFalse(result.stdout.contains("\\/"), "slashes are not escaped")
    }

    /// `--time` runs until the time is up; `--input` times the model on the array given, whose
    /// batch sets the batch; `--no-optimize` runs the graph as imported.
    func testTimeInputAndNoOptimize() throws {
        let model = Fixtures.tiny("ts_opset17_dynamic.onnx")
        let result = try GraftProcess.run(["bench", model, "--time", "0.3", "--warmup", "0", "--input", Fixtures.tiny("input_b3.npy"),
                                           "--no-optimize", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["batch"] as? Int, 3)
        XCTAssertEqual(json["optimized"] as? Bool, false)
        let runs = try XCTUnwrap(json["runs"] as? Int)
        let mean = try XCTUnwrap((json["latency_ms"] as? [String: Double])?["mean"])
        // As many runs as fit in 0.3 s (the last one may end after it).
        XCTAssertGreaterThanOrEqual(Double(runs) * mean, 300 - mean)
        let bad = try GraftProcess.run(["bench", model, "--input", Fixtures.path("bad/wrong_shape_input.npy")])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("graft: error: \(Fixtures.path("bad/wrong_shape_input.npy")): "), bad.stderr)
    }

    /// `--input IMAGE` times the model on the image, transformed for it and repeated to the
    /// batch; a file that is not an image is refused naming it.
    func testImageInput() throws {
        let model = Fixtures.tiny("ts_opset17_dynamic.onnx")
        let result = try GraftProcess.run(["bench", model, "--input", Fixtures.path("images/gray_123x77.jpg"), "--batch", "2",
                                           "--runs", "1", "--warmup", "0", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["batch"] as? Int, 2)
        let notImage = Fixtures.tiny("ts_opset17_dynamic.onnx")
        let bad = try GraftProcess.run(["bench", model, "--input", notImage])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("graft: error: \(notImage): "), bad.stderr)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1, bad.stderr)
    }

    func testBadSettings() throws {
        let threads = try GraftProcess.run(["bench", Fixtures.tiny("ts_opset17_folded.onnx"), "--threads", "0"])
        XCTAssertEqual(threads.status, 2)
        XCTAssertTrue(threads.stderr.contains("--threads must be between 1 and 1024"), threads.stderr)
        let batch = try GraftProcess.run(["bench", Fixtures.tiny("ts_opset17_folded.onnx"), "--batch", "4"])
        XCTAssertEqual(batch.status, 1)
        XCTAssertEqual(batch.stderr, "graft: error: \(Fixtures.tiny("ts_opset17_folded.onnx")): the model's batch dimension is fixed at 1; --batch 4 does not fit\n")
    }
}
