import GraftCore
import GraftHDF5
import GraftRuntime
import GraftTestSupport
import XCTest

/// A Keras ResNet50 (keras.applications' topology, few filters) saved with `model.save()`:
/// Graft's NCHW graph gives Keras's output on the same image.
final class KerasImportTests: XCTestCase {
    func model() throws -> Graph { try HDF5Importer.importModel(at: HDF5Fixtures.path("keras_resnet50.h5")) }

    func testMatchesKeras() throws {
        let reference = try NPY.read(HDF5Fixtures.path("keras_resnet50.output_b1.npy"))
        // Keras got this input transposed to NHWC; Graft takes NCHW.
        let c = Closeness(try runGraph(try model(), try HDF5Fixtures.input), reference)
        print("keras_resnet50.h5 vs Keras: \(c)")
        XCTAssertTrue(c.ok, "\(c)")
    }

    func testKerasResNet50Topology() throws {
        let graph = try model()
        XCTAssertEqual(opCounts(graph), ["Pad": 2, "Conv": 53, "BatchNormalization": 53, "Relu": 49, "MaxPool": 1, "Add": 16,
                                         "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1, "Softmax": 1])
        XCTAssertEqual(graph.inputs[0].shape, Shape([.symbol("batch"), .value(3), .value(224), .value(224)]))
        XCTAssertEqual(graph.outputs[0].shape, Shape([.symbol("batch"), .value(10)]))

        func node(_ name: String) -> Node { graph.nodes.first { $0.name == name }! }
        XCTAssertEqual(graph.constants["conv1_pad.pads"]!.int64s, [0, 0, 3, 3, 0, 0, 3, 3])
        XCTAssertEqual(graph.constants["pool1_pad.pads"]!.int64s, [0, 0, 1, 1, 0, 0, 1, 1])
        XCTAssertEqual(node("/pool1_pool/MaxPool").op, .maxPool(Window(kernel: [3, 3], strides: [2, 2])))
        // The stride is on the first 1x1 convolution of a stage (and its shortcut), not the 3x3.
        XCTAssertEqual(node("/conv3_block1_1_conv/Conv").op, .conv(ConvAttributes(window: Window(kernel: [1, 1], strides: [2, 2]))))
        XCTAssertEqual(node("/conv3_block1_0_conv/Conv").op, .conv(ConvAttributes(window: Window(kernel: [1, 1], strides: [2, 2]))))
        XCTAssertEqual(node("/conv3_block1_2_conv/Conv").op, .conv(ConvAttributes(window: Window(kernel: [3, 3], autoPad: .sameUpper))))
        XCTAssertEqual(node("/conv1_bn/BatchNormalization").op, .batchNorm(epsilon: 1.001e-5, momentum: 0.99))
        XCTAssertEqual(node("/predictions/Softmax").op, .softmax(axis: -1, coerce2D: false))
        XCTAssertEqual(node("/conv2_block1_add/Add").scope, ModuleScope(path: "conv2_block1_add"))
        // Kernels in Graft's [cout, cin, kh, kw] layout, conv biases kept, Dense as [out, in].
        XCTAssertEqual(graph.constants["conv1_conv.weight"]!.shape, [64, 3, 7, 7])
        XCTAssertEqual(graph.constants["conv1_conv.bias"]!.shape, [64])
        XCTAssertEqual(graph.constants["predictions.weight"]!.shape, [10, 64])
        XCTAssertEqual(graph.nodes.last!.outputs, ["output"])
    }
}
