import GraftCore
import GraftONNX
import GraftPasses
import GraftRuntime
import GraftTestSupport
import XCTest

/// The full-size ResNet-50 exported with explicit BatchNormalization comes out lean and unchanged.
final class ResNet50PassTests: XCTestCase {
    func testBatchNormFoldsAwayAndOutputsStay() throws {
        let g = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        let (optimized, report) = try PassManager().run(g)
        let counts = optimized.nodes.reduce(into: [String: Int]()) { $0[$1.op.name, default: 0] += 1 }
        XCTAssertNil(counts["BatchNormalization"])
        XCTAssertNil(counts["Identity"])
        XCTAssertNil(counts["Dropout"])
        XCTAssertEqual(counts["Conv"], 53)
        XCTAssertEqual(report.counts.first { $0.pass == "batch-norm folded" }?.patches, 53)
        // Folding trades each batch norm's γ and β (2·C) for a conv bias (C).
        let bnChannels = g.nodes.filter { if case .batchNorm = $0.op { return true } else { return false } }
            .map { g.constants[$0.inputs[1]]!.elementCount }.reduce(0, +)
        XCTAssertEqual(report.parametersBefore, 25_557_032)
        XCTAssertEqual(report.parametersAfter, 25_557_032 - bnChannels)
        XCTAssertEqual(optimized.nodes.first { $0.op.name == "Conv" }?.inputs, ["input", "conv1.weight", "conv1.bias"])
        print("ResNet-50 passes:\n\(report)")

        let x = try NPY.read(try Fixtures.materialized("resnet50/input_b2.npy"))
        let reference = try NPY.read(try Fixtures.materialized("resnet50/output_b2.npy"))
        let y = try Interpreter(graph: optimized).run(["input": x])["output"]!
        let c = Closeness(y, reference)
        print("optimized ResNet-50 vs ONNX Runtime: \(c)")
        XCTAssertTrue(c.ok, "\(c)")
    }
}
