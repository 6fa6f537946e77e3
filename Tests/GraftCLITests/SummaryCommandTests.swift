import Foundation
import GraftCore
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

    /// torchinfo's default columns (within 90 columns), and all four when asked.
    func testTableOfTheFullResNet50IsTorchinfos() throws {
        let model = try Fixtures.materialized("resnet50/resnet50_bn.onnx")
        let result = try GraftProcess.run(["summary", model, "--format", "table"])
        XCTAssertEqual(result.status, 0, result.stderr)
        assertSameLines(result.stdout, try TextReference.torchinfo("resnet50/reference/torchinfo_default.txt"))
        XCTAssertTrue(result.stdout.contains("Total params: 25,557,032\n"))
        XCTAssertTrue(result.stdout.split(separator: "\n").allSatisfy { $0.count <= 100 })
        let all = try GraftProcess.run(["summary", model, "--format", "table", "--columns", "output_size,num_params,mult_adds,trainable"])
        XCTAssertEqual(all.status, 0, all.stderr)
        assertSameLines(all.stdout, try TextReference.torchinfo("resnet50/reference/torchinfo.txt"))
        let bad = try GraftProcess.run(["summary", model, "--format", "table", "--columns", "output_size,kernel"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.hasPrefix("graft: error: --columns: 'kernel' is not one of output_size, num_params, mult_adds, trainable\n"), bad.stderr)
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

extension SummaryCommandTests {
    /// A grafted model's trunk is frozen: its layers show as not trainable, the head as
    /// trainable, the model as partly so, and the totals count only the head as trainable (as
    /// torchinfo shows a model whose trunk has `requires_grad=False`). `--depth` cuts the table.
    func testAGraftedModelShowsItsFrozenTrunk() throws {
        let dir = try TemporaryDirectory()
        var random = SeededGenerator(seed: 5)
        let features = dir.file("f.npy"), labels = dir.file("l.npy"), grafted = dir.file("g.onnx")
        try NPY.write(random.tensor([20, 256]), to: features)
        try NPY.write(Tensor(shape: [20], int64s: (0..<20).map { Int64($0 % 2) }), to: labels)
        let train = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--features", features, "--labels", labels,
                                          "--out", grafted, "--epochs", "1", "--head", "16"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let table = try GraftProcess.run(["summary", grafted, "--format", "table", "--depth", "1", "--columns", "output_size,num_params,mult_adds,trainable"])
        XCTAssertEqual(table.status, 0, table.stderr)
        let lines = table.stdout.split(separator: "\n").map(String.init)
        func row(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) } }
        XCTAssertTrue(try XCTUnwrap(row("ResNet")).hasSuffix("Partial"), table.stdout)
        XCTAssertTrue(try XCTUnwrap(row("├─Conv2d: 1-1")).hasSuffix("False"), table.stdout)
        XCTAssertTrue(try XCTUnwrap(row("├─Sequential: 1-4")).hasSuffix("False"), table.stdout)
        XCTAssertTrue(try XCTUnwrap(row("├─Sequential: 1-9")).hasSuffix("True"), table.stdout)
        XCTAssertFalse(lines.contains { $0.hasPrefix("│    └─") }, "depth 1 shows no deeper rows")
        // The head: Linear(256, 16) and Linear(16, 2).
        let head = 256 * 16 + 16 + 16 * 2 + 2
        XCTAssertEqual(row("Trainable params: "), "Trainable params: \(head.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))))")
        let total = try XCTUnwrap(row("Total params: ")).dropFirst("Total params: ".count).replacingOccurrences(of: ",", with: "")
        XCTAssertEqual(row("Non-trainable params: "), "Non-trainable params: \((Int(total)! - head).formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))))")
    }
}
