import Foundation
import GraftCore
import GraftONNX
import GraftTestSupport
import XCTest

/// ONNX's checker accepts what Graft writes, ONNX Runtime runs it, and the outputs match PyTorch's.
final class ExportONNXRuntimeTests: XCTestCase {
    /// Exports each `(fixture, opset, external)` and runs them all in ONNX Runtime on `input_b1.npy`,
    /// comparing with PyTorch's `output_b1.npy`.
    func assertRunLikePyTorch(_ cases: [(variant: String, opset: Int?, external: Bool)], file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = try TemporaryDirectory()
        var jobs: [ONNXRuntime.Job] = []
        for (i, c) in cases.enumerated() {
            let graph = try ONNXImporter.importModel(at: Fixtures.tiny("\(c.variant).onnx"))
            try FileManager.default.createDirectory(atPath: folder.file("\(i)"), withIntermediateDirectories: false)
            let model = folder.file("\(i)/\(c.variant).onnx")
            try ONNXExporter.export(graph, to: model, opset: c.opset, externalData: c.external)
            jobs.append(ONNXRuntime.Job(model: model, inputs: [Fixtures.tiny("input_b1.npy")], output: folder.file("\(i)/output.npy")))
        }
        let complaints = try ONNXRuntime.check(jobs.map(\.model), file: file, line: line)
        let failures = try ONNXRuntime.run(jobs, file: file, line: line)
        let reference = try NPY.read(Fixtures.tiny("output_b1.npy"))
        for (i, c) in cases.enumerated() {
            let label = "\(c.variant) at opset \(c.opset.map(String.init) ?? "as imported")\(c.external ? " with external data" : "")"
            XCTAssertNil(complaints[i], "onnx.checker on \(label)", file: file, line: line)
            if let failure = failures[i] {
                XCTFail("ONNX Runtime cannot run \(label): \(failure)", file: file, line: line)
                continue
            }
            let output = try NPY.read(jobs[i].output)
            let closeness = Closeness(output, reference)
            print("ONNX Runtime on the exported \(label) vs PyTorch: \(closeness)")
            assertClose(output, reference, label, file: file, line: line)
        }
    }

    func testExportedTinyFixturesRunInONNXRuntime() throws {
        try assertRunLikePyTorch(ExportRoundTripTests.variants.flatMap { [($0, nil, false), ($0, nil, true)] })
    }

    func testExportsAtAnotherOpsetRunInONNXRuntime() throws {
        try assertRunLikePyTorch([
            ("ts_opset17_bn", 13, false),
            ("ts_opset11_bn", 18, false),
            // ReduceMean's axes input becomes an attribute, Reshape's allowzero is dropped.
            ("dynamo_opset18", 13, true),
            ("dynamo_opset18_dynamic", 11, false),
            ("ts_opset11_folded", 7, false),
            ("ts_opset17_folded", 23, false),
        ])
    }

    func testExportedResNet50MatchesONNXRuntimeOnTheOriginal() throws {
        let graph = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        let folder = try TemporaryDirectory()
        try ONNXExporter.export(graph, to: folder.file("resnet50.onnx"), externalData: true)
        let input = try NPY.read(try Fixtures.materialized("resnet50/input_b1.npy"))
        let reference = try NPY.read(try Fixtures.materialized("resnet50/output_b1.npy"))
        let output = try ONNXRuntime.output(of: folder.file("resnet50.onnx"), input: input)
        print("ONNX Runtime on the exported ResNet-50 vs on the original: \(Closeness(output, reference))")
        assertClose(output, reference, "resnet50")
    }
}
