import Foundation
import GraftCore
import GraftONNX
import GraftTestSupport
import XCTest

/// The ONNX project's PyTorch conformance cases that Graft imports (`pass` in the manifest),
/// exported at the nearest opset Graft writes and at 13 and 18, must run in ONNX Runtime to the
/// reference outputs: many ops and attribute forms, checked against tools Graft did not write.
final class ExportConformanceTests: XCTestCase {
    func testPassingCasesExportAndRunInONNXRuntimeAtSeveralOpsets() throws {
        guard let root = Fixtures.onnxBackendData() else {
            XCTFail("the onnx wheel's backend test data is not found: run `make test` (it sets up .venv)")
            return
        }
        let folder = try TemporaryDirectory()
        var jobs: [ONNXRuntime.Job] = []
        var references: [Tensor] = []
        var unexpressible: [String] = []
        for (key, entry) in try ConformanceTests.manifest().sorted(by: { $0.key < $1.key }) where entry.expectPass {
            let source = root.appendingPathComponent(key)
            let graph = try ONNXImporter.importModel(at: source.appendingPathComponent("model.onnx").path)
            let data = source.appendingPathComponent("test_data_set_0")
            let caseFolder = folder.file(key.replacingOccurrences(of: "/", with: "_"))
            try FileManager.default.createDirectory(atPath: caseFolder, withIntermediateDirectories: false)
            var inputs: [String] = []
            for i in graph.inputs.indices {
                let path = caseFolder + "/input_\(i).npy"
                try NPY.write(try ONNXImporter.readTensor(at: data.appendingPathComponent("input_\(i).pb").path), to: path)
                inputs.append(path)
            }
            let reference = try ONNXImporter.readTensor(at: data.appendingPathComponent("output_0.pb").path)
            let nearest = max(graph.metadata.opset, ONNXExporter.opsets.lowerBound)
            for opset in Set([nearest, 13, 18]).sorted() {
                let model = caseFolder + "/opset\(opset).onnx"
                do {
                    try ONNXExporter.export(graph, to: model, opset: opset)
                } catch let error as GraftError where opset != nearest && error.message.hasPrefix("cannot be written at opset") {
                    // Some forms exist only at some opsets (the legacy 2-D softmax); the error must say so.
                    unexpressible.append("\(key) at opset \(opset): \(error)")
                    continue
                }
                jobs.append(ONNXRuntime.Job(model: model, inputs: inputs, output: caseFolder + "/output\(opset).npy"))
                references.append(reference)
            }
        }
        var passed = 0
        for (i, failure) in try ONNXRuntime.run(jobs).enumerated() {
            if let failure {
                XCTFail("ONNX Runtime cannot run \(jobs[i].model): \(failure)")
                continue
            }
            let output = try NPY.read(jobs[i].output)
            let c = Closeness(output.dtype == references[i].dtype ? output : output.converted(to: references[i].dtype), references[i])
            XCTAssertTrue(c.ok, "\(jobs[i].model): \(c)")
            if c.ok { passed += 1 }
        }
        print("conformance exports: \(passed) of \(jobs.count) ran in ONNX Runtime to the reference outputs; \(unexpressible.count) not expressible:")
        unexpressible.forEach { print("  \($0)") }
        XCTAssertGreaterThan(passed, 150)
    }
}
