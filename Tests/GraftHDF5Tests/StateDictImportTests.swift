import GraftCore
import GraftHDF5
import GraftONNX
import GraftTestSupport
import XCTest

/// PyTorch state_dicts written by h5py: each rebuilds the torchvision ResNet it names, gives
/// PyTorch's output, and is the very graph the ONNX importer makes of the TorchScript export.
final class StateDictImportTests: XCTestCase {
    /// HDF5 file → (ONNX export, PyTorch output) of the same model.
    static let fixtures: [(h5: String, model: String)] = [
        ("basic_flat.h5", "basic"), ("basic_nested.h5", "basic"), ("bottleneck_f16.h5", "bottleneck_f16"),
        ("resnext.h5", "resnext"), ("fc_head.h5", "fc_head"),
    ]

    func testEveryFixtureMatchesPyTorch() throws {
        let input = try HDF5Fixtures.input
        for (h5, model) in Self.fixtures {
            let graph = try HDF5Importer.importModel(at: HDF5Fixtures.path(h5))
            let reference = try NPY.read(HDF5Fixtures.path("\(model).output_b1.npy"))
            let c = Closeness(try runGraph(graph, input), reference)
            print("\(h5) vs PyTorch: \(c)")
            XCTAssertTrue(c.ok, "\(h5): \(c)")
        }
    }

    func testEveryFixtureIsTheGraphTheONNXImporterBuilds() throws {
        for (h5, model) in Self.fixtures {
            let fromHDF5 = try HDF5Importer.importModel(at: HDF5Fixtures.path(h5))
            let fromONNX = try ONNXImporter.importModel(at: HDF5Fixtures.path("\(model).onnx"))
            assertSameModel(fromHDF5, fromONNX, h5)
        }
    }

    func testArchitecturesAreReadFromNamesAndShapes() throws {
        let basic = try HDF5Importer.importModel(at: HDF5Fixtures.path("basic_flat.h5"))
        XCTAssertEqual(opCounts(basic), ["Conv": 20, "BatchNormalization": 20, "Relu": 17, "MaxPool": 1, "Add": 8,
                                         "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1])
        XCTAssertEqual(basic.inputs[0].shape, Shape([.symbol("batch"), .value(3), .value(224), .value(224)]))
        XCTAssertEqual(basic.outputs[0].shape, Shape([.symbol("batch"), .value(10)]))
        XCTAssertEqual(basic.name, "basic_flat")

        let resnext = try HDF5Importer.importModel(at: HDF5Fixtures.path("resnext.h5"))
        let grouped = resnext.nodes.first { $0.name == "/layer1/layer1.0/conv2/Conv" }!
        XCTAssertEqual(grouped.op, .conv(ConvAttributes(window: Window(kernel: [3, 3], pads: [1, 1, 1, 1]), group: 4)))
        let strided = resnext.nodes.first { $0.name == "/layer2/layer2.0/conv2/Conv" }!
        XCTAssertEqual(strided.op, .conv(ConvAttributes(window: Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]), group: 4)))
        XCTAssertEqual(strided.scope, ModuleScope(path: "layer2.0.conv2"))

        let head = try HDF5Importer.importModel(at: HDF5Fixtures.path("fc_head.h5"))
        XCTAssertEqual(head.nodes.suffix(5).map(\.name), ["/fc/fc.1/Gemm", "/fc/fc.2/Relu", "/fc/fc.4/Gemm", "/fc/fc.5/Relu", "/fc/fc.6/Gemm"])
        XCTAssertEqual(head.nodes.last!.outputs, ["output"])
        XCTAssertNil(opCounts(head)["Dropout"])
    }

    func testNestedGroupsReadAsTheFlatKeys() throws {
        let flat = try HDF5Importer.importModel(at: HDF5Fixtures.path("basic_flat.h5"))
        let nested = try HDF5Importer.importModel(at: HDF5Fixtures.path("basic_nested.h5"))
        assertSameModel(flat, nested)
    }

    func testHalfAndDoublePrecisionDatasetsReadAsFloat32() throws {
        let graph = try HDF5Importer.importModel(at: HDF5Fixtures.path("bottleneck_f16.h5"))
        XCTAssertTrue(graph.constants.values.allSatisfy { $0.dtype == .float32 })
        XCTAssertNil(graph.constants["bn1.num_batches_tracked"])
    }

    func testDataParallelPrefixIsDropped() throws {
        let plain = try HDF5Importer.importModel(at: HDF5Fixtures.path("tiny.h5"))
        let prefixed = try HDF5Importer.importModel(at: HDF5Fixtures.path("tiny_module_prefix.h5"))
        assertSameModel(plain, prefixed)
        XCTAssertNotNil(prefixed.constants["layer1.0.conv1.weight"])
    }
}
