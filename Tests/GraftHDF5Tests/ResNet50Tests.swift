import GraftCore
import GraftHDF5
import GraftONNX
import GraftTestSupport
import XCTest

/// The full-size torchvision ResNet-50 through HDF5, without downloading weights: the ONNX graph
/// `make fixtures` materializes is written as a plain state_dict (the datasets h5py writes from
/// `model.state_dict()`, no Graft attributes), rebuilt from its names and shapes, and run
/// against ONNX Runtime's output for the same weights.
final class ResNet50Tests: XCTestCase {
    func testStateDictRebuildsTheONNXGraphAndMatchesONNXRuntime() throws {
        let onnx = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        let dir = try TemporaryDirectory()
        let path = dir.file("resnet50.h5")
        try HDF5Exporter.export(onnx, to: path, recordingTopology: false)
        let graph = try HDF5Importer.importModel(at: path)
        assertSameModel(graph, onnx, "ResNet-50")
        XCTAssertEqual(graph.parameterCount, 25_557_032)
        XCTAssertEqual(opCounts(graph)["Conv"], 53)

        let input = try NPY.read(try Fixtures.materialized("resnet50/input_b1.npy"))
        let reference = try NPY.read(try Fixtures.materialized("resnet50/output_b1.npy"))
        let c = Closeness(try runGraph(graph, input), reference)
        print("ResNet-50 from HDF5 vs ONNX Runtime: \(c)")
        XCTAssertTrue(c.ok, "\(c)")
    }

    func testRecordedTopologyRoundTripsAtFullSize() throws {
        let onnx = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        let dir = try TemporaryDirectory()
        let path = dir.file("resnet50.h5")
        try HDF5Exporter.export(onnx, to: path)
        XCTAssertEqual(try HDF5Importer.importModel(at: path), onnx)
    }
}
