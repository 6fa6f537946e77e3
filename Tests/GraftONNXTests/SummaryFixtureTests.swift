import Foundation
import GraftCore
import GraftSummary
import GraftONNX
import GraftTestSupport
import XCTest

/// `ModelSummary` of the imported PyTorch exports against what `print(model)` and torchinfo 1.8
/// print for the models they were exported from (`tools/make_summary_references.py`).
final class SummaryFixtureTests: XCTestCase {
    func testBatchNormExportsPrintAndTabulateLikePyTorch() throws {
        for variant in ["ts_opset11_bn", "ts_opset17_bn"] {
            let summary = try ModelSummary(graph: try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx")))
            assertSameLines(summary.renderTorch(), try TextReference.read("tiny/reference/print_bn.txt"), variant)
            assertSameLines(summary.renderTable(columns: SummaryColumn.allCases), try TextReference.torchinfo("tiny/reference/torchinfo_bn.txt"), variant)
        }
    }

    /// Both exporters' folded graphs describe the PyTorch model with every batch norm fused into
    /// the convolution before it and then removed.
    func testFoldedExportsPrintLikeTheFusedPyTorchModel() throws {
        for variant in ["ts_opset11_folded", "ts_opset13_folded", "ts_opset17_folded", "ts_opset17_dynamic",
                        "dynamo_opset18", "dynamo_opset18_dynamic"] {
            let summary = try ModelSummary(graph: try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx")))
            assertSameLines(summary.renderTorch(), try TextReference.read("tiny/reference/print_folded.txt"), variant)
        }
    }

    func testResNet50PrintsAndTabulatesLikePyTorch() throws {
        let graph = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        let summary = try ModelSummary(graph: graph)
        assertSameLines(summary.renderTorch(), try TextReference.read("resnet50/reference/print.txt"), "resnet50")
        assertSameLines(summary.renderTable(columns: SummaryColumn.allCases), try TextReference.torchinfo("resnet50/reference/torchinfo.txt"), "resnet50")
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(summary.renderJSON().utf8)) as? [String: Any])
        XCTAssertEqual((document["totals"] as? [String: Any])?["params"] as? Int, 25_557_032)
    }



}
