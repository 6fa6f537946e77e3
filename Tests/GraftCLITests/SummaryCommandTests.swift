import Foundation
import GraftTestSupport
import XCTest

/// `graft summary` prints what PyTorch and torchinfo print, word for word.
final class SummaryCommandTests: XCTestCase {
    func testTorchFormatIsPrintModel() throws {
        let result = try GraftProcess.run(["summary", Fixtures.tiny("ts_opset17_bn.onnx")])
        XCTAssertEqual(result.status, 0, result.stderr)
        assertSameLines(result.stdout, try TextReference.read("tiny/reference/print_bn.txt"))
        // --optimize shows the graph after batch-norm folding: the fused PyTorch model.
        let optimized = try GraftProcess.run(["summary", Fixtures.tiny("ts_opset17_bn.onnx"), "--optimize"])
        assertSameLines(optimized.stdout, try TextReference.read("tiny/reference/print_folded.txt"))
    }

    func testTableOfTheFullResNet50IsTorchinfos() throws {
        let model = try Fixtures.materialized("resnet50/resnet50_bn.onnx")
        let result = try GraftProcess.run(["summary", model, "--format", "table"])
        XCTAssertEqual(result.status, 0, result.stderr)
        assertSameLines(result.stdout, try TextReference.torchinfo("resnet50/reference/torchinfo.txt"))
        XCTAssertTrue(result.stdout.contains("Total params: 25,557,032\n"))
    }

    func testJSONWithAnInputShape() throws {
        let result = try GraftProcess.run(["summary", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--format", "json", "--input-shape", "4,3,64,64"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.first?["output_shape"] as? [Int], [4, 10])
    }

    func testBadInputShapes() throws {
        let usage = try GraftProcess.run(["summary", Fixtures.tiny("ts_opset17_bn.onnx"), "--input-shape", "1,x,64"])
        XCTAssertEqual(usage.status, 2)
        XCTAssertTrue(usage.stderr.contains("'1,x,64' is not a shape like 1,3,224,224"), usage.stderr)
        let rank = try GraftProcess.run(["summary", Fixtures.tiny("ts_opset17_bn.onnx"), "--input-shape", "1,3,64"])
        XCTAssertEqual(rank.status, 1)
        XCTAssertTrue(rank.stderr.hasPrefix("graft: error: \(Fixtures.tiny("ts_opset17_bn.onnx")): "), rank.stderr)
    }
}
