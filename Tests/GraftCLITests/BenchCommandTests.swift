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
