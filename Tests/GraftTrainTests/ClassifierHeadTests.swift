import Foundation
import GraftCore
import GraftSummary
import GraftHDF5
import GraftONNX
import GraftRuntime
import GraftTestSupport
@testable import GraftTrain
import XCTest

/// The head as graph nodes: where it goes, how `summary` prints it, how it initializes, and
/// that the exporters write it.
final class ClassifierHeadTests: XCTestCase {
    /// The tiny torchvision ResNet (256 features, 10 classes), batch dynamic.
    static func tinyTrunk() throws -> Graph {
        try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_dynamic.onnx"))
    }

    static let smallHead = ClassifierHead(classNames: ["a", "b", "c"], hidden: [64, 32, 16], dropout: [0.2, 0.0, 0.125])

    /// The `(fc): ...` block of a `print(model)` text.
    static func fcBlock(_ text: String) -> String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("  (fc): ") }) else { return "" }
        var end = start
        while end + 1 < lines.count && lines[end] != "  )" && lines[start].hasSuffix("(") { end += 1 }
        return lines[start...end].map { String($0.dropFirst(2)) }.joined(separator: "\n")
    }

    func testSummaryPrintsTheHeadAsPyTorchPrintsIt() throws {
        let grafted = try Self.smallHead.graft(onto: try Self.tinyTrunk())
        let printed = Self.fcBlock(try ModelSummary(graph: grafted).renderTorch())
        let reference = "(fc): " + (try TextReference.read("train/head_print_small.txt"))
        assertSameLines(printed, reference, "fc")
    }

    func testTheReferenceHeadOnResNet50() throws {
        let trunk = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        let grafted = try ClassifierHead(classNames: ["cat", "dog"]).graft(onto: trunk, seed: 7)
        let printed = Self.fcBlock(try ModelSummary(graph: grafted).renderTorch())
        assertSameLines(printed, "(fc): " + (try TextReference.read("train/head_print_2048.txt")), "fc")
        XCTAssertEqual(grafted.constants["fc.1.weight"]?.shape, [1024, 2048])
        XCTAssertEqual(grafted.constants["fc.4.weight"]?.shape, [256, 1024])
        XCTAssertEqual(grafted.constants["fc.6.weight"]?.shape, [2, 256])
        XCTAssertNil(grafted.constants["fc.weight"])
        // ResNet-50's trunk (23,508,032) plus the head (2,098,176 + 262,400 + 514).
        XCTAssertEqual(grafted.parameterCount, 23_508_032 + 2_098_176 + 262_400 + 514)
        let head = try HeadNetwork(graph: grafted)
        XCTAssertEqual(head.featureCount, 2048)
        XCTAssertEqual(head.featureValue, trunk.nodes.first { $0.op == .flatten(axis: 1) }?.outputs[0])
    }

    func testNodesScopesNamesAndMetadata() throws {
        let trunk = try Self.tinyTrunk()
        let grafted = try ClassifierHead(classNames: ["cat", "dog"], hidden: [8], dropout: [0.5]).graft(onto: trunk)
        let head = Array(grafted.nodes.suffix(5))
        XCTAssertEqual(head.map(\.op.name), ["Dropout", "Gemm", "Relu", "Gemm", "LogSoftmax"])
        XCTAssertEqual(head.map { $0.scope?.path }, ["fc.0", "fc.1", "fc.2", "fc.3", "fc.4"])
        XCTAssertEqual(head.map(\.name), ["/fc/fc.0/Dropout", "/fc/fc.1/Gemm", "/fc/fc.2/Relu", "/fc/fc.3/Gemm", "/fc/fc.4/LogSoftmax"])
        XCTAssertEqual(head[1].inputs, [head[0].outputs[0], "fc.1.weight", "fc.1.bias"])
        XCTAssertEqual(head[1].op, .gemm(GemmAttributes(transB: true)))
        XCTAssertEqual(head[0].op, .dropout(ratio: 0.5))
        XCTAssertEqual(head[4].outputs, [trunk.outputs[0].name])
        XCTAssertEqual(grafted.outputs, [ValueInfo(name: trunk.outputs[0].name, dtype: .float32,
                                                   shape: Shape([trunk.outputs[0].shape.dims[0], .value(2)]))])
        XCTAssertEqual(grafted.constants["fc.1.weight"]?.shape, [8, 256])
        XCTAssertEqual(grafted.constants["fc.3.bias"]?.shape, [2])
        XCTAssertNil(grafted.constants["fc.weight"], "the replaced classifier's weights are gone")
        XCTAssertEqual(grafted.classNames, ["cat", "dog"])
        XCTAssertEqual(grafted.metadata.properties[Graph.classNamesKey], "[\"cat\",\"dog\"]")
        XCTAssertEqual(Array(grafted.nodes.prefix(grafted.nodes.count - 5)), Array(trunk.nodes.dropLast()))
        _ = try grafted.inferShapes()
    }

    /// TorchScript and dynamo exports, and a state_dict whose `fc` is already a Sequential.
    func testEveryExportersClassifierIsFound() throws {
        let models: [(Graph, features: Int, replaced: Int)] = [
            (try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset11_folded.onnx")), 256, 1),
            (try ONNXImporter.importModel(at: Fixtures.tiny("dynamo_opset18.onnx")), 256, 1),
            (try HDF5Importer.importModel(at: Fixtures.path("hdf5/fc_head.h5")), 32, 5),
        ]
        for (trunk, features, replaced) in models {
            let grafted = try ClassifierHead(classNames: ["a", "b"], hidden: [8], dropout: [0.5]).graft(onto: trunk)
            XCTAssertEqual(try HeadNetwork(graph: grafted).featureCount, features, trunk.name)
            XCTAssertEqual(Array(grafted.nodes.dropLast(5)), Array(trunk.nodes.dropLast(replaced)), trunk.name)
            XCTAssertEqual(grafted.nodes.suffix(5).map { $0.scope?.path }, ["fc.0", "fc.1", "fc.2", "fc.3", "fc.4"], trunk.name)
            _ = try grafted.inferShapes()
        }
    }

    func testGraftingAGraftedModelReplacesItsHead() throws {
        let once = try Self.smallHead.graft(onto: try Self.tinyTrunk())
        let twice = try ClassifierHead(classNames: ["x", "y"], hidden: [4], dropout: [0.1]).graft(onto: once)
        XCTAssertEqual(twice.nodes.count, once.nodes.count - 11 + 5)
        XCTAssertEqual(Set(twice.constants.keys.filter { $0.hasPrefix("fc.") }), ["fc.1.weight", "fc.1.bias", "fc.3.weight", "fc.3.bias"])
        XCTAssertEqual(twice.classNames, ["x", "y"])
    }

    /// nn.Linear's default: W and b uniform in ±1/√in; seeded, so the same seed gives the same head.
    func testInitializationIsPyTorchsLinearDefault() throws {
        let trunk = try Self.tinyTrunk()
        let head = ClassifierHead(classNames: ["a", "b"], hidden: [512], dropout: [0.5])
        let grafted = try head.graft(onto: trunk, seed: 3)
        let w = grafted.constants["fc.1.weight"]!.floats, b = grafted.constants["fc.1.bias"]!.floats
        let bound = 1 / Float(256).squareRoot()
        XCTAssertTrue(w.allSatisfy { abs($0) <= bound } && b.allSatisfy { abs($0) <= bound })
        let mean = w.reduce(0, +) / Float(w.count)
        let variance = w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(w.count)
        // U(-b, b): mean 0, variance b²/3; over 131,072 draws their standard errors are 0.0016·b
        // and 0.0008·b², so these bounds are 5 and 6 of them.
        XCTAssertEqual(mean, 0, accuracy: 0.008 * bound)
        XCTAssertEqual(variance, bound * bound / 3, accuracy: 0.005 * bound * bound)
        XCTAssertEqual(grafted.constants["fc.3.weight"]!.floats.map { abs($0) }.max()!, 1 / Float(512).squareRoot(), accuracy: 0.002)
        XCTAssertEqual(try head.graft(onto: trunk, seed: 3), grafted)
        XCTAssertNotEqual(try head.graft(onto: trunk, seed: 4).constants["fc.1.weight"], grafted.constants["fc.1.weight"])
    }

    func testONNXExportWritesTheHead() throws {
        let dir = try TemporaryDirectory()
        let grafted = try Self.smallHead.graft(onto: try Self.tinyTrunk(), seed: 1)
        try ONNXExporter.export(grafted, to: dir.file("grafted.onnx"))
        let back = try ONNXImporter.importModel(at: dir.file("grafted.onnx"))
        XCTAssertEqual(back.classNames, ["a", "b", "c"])
        XCTAssertEqual(Array(back.nodes.suffix(11).map(\.op.name)),
                       ["Dropout", "Gemm", "Relu", "Dropout", "Gemm", "Relu", "Dropout", "Gemm", "Relu", "Gemm", "LogSoftmax"])
        XCTAssertEqual(back.nodes.suffix(11).map { $0.scope?.path }, (0...10).map { "fc.\($0)" })
        XCTAssertEqual(Self.fcBlock(try ModelSummary(graph: back).renderTorch()), Self.fcBlock(try ModelSummary(graph: grafted).renderTorch()))
        let x = try NPY.read(Fixtures.tiny("input_b3.npy"))
        let name = grafted.inputs[0].name
        assertClose(try Interpreter(graph: back).run([name: x]).values.first!, try Interpreter(graph: grafted).run([name: x]).values.first!,
                    atol: 1e-6, rtol: 1e-6, "exported vs in-memory")
    }

    func testHDF5ExportWritesTheHead() throws {
        let dir = try TemporaryDirectory()
        let grafted = try Self.smallHead.graft(onto: try Self.tinyTrunk(), seed: 1)
        try HDF5Exporter.export(grafted, to: dir.file("grafted.h5"))
        let back = try HDF5Importer.importModel(at: dir.file("grafted.h5"))
        XCTAssertEqual(back.classNames, ["a", "b", "c"])
        XCTAssertEqual(back.nodes.suffix(11), grafted.nodes.suffix(11))
        XCTAssertEqual(back.constants["fc.9.weight"], grafted.constants["fc.9.weight"])
        XCTAssertEqual(Self.fcBlock(try ModelSummary(graph: back).renderTorch()), Self.fcBlock(try ModelSummary(graph: grafted).renderTorch()))
    }

    /// The head's own forward (what training differentiates) is the graph's: the runtime on the
    /// whole grafted graph equals the head on the trunk's features.
    func testHeadNetworkComputesWhatTheGraphComputes() throws {
        let grafted = try Self.smallHead.graft(onto: try Self.tinyTrunk(), seed: 2)
        let x = try NPY.read(Fixtures.tiny("input_b3.npy"))
        let whole = try referenceRun(grafted, [grafted.inputs[0].name: x]).values.first!
        let features = try FeatureExtractor(model: grafted).features(of: x)
        XCTAssertEqual(features.rows, 3)
        XCTAssertEqual(features.columns, 256)
        let head = try HeadNetwork(graph: grafted)
        assertClose(head.logProbabilities(features).tensor, whole, atol: 1e-4, rtol: 1e-4, "head vs reference evaluator")
    }

    func testBadHeadsAreRefused() throws {
        let trunk = try Self.tinyTrunk()
        func message(_ head: ClassifierHead) -> String? {
            do {
                _ = try head.graft(onto: trunk)
                return nil
            } catch let error as GraftError {
                XCTAssertEqual(error.kind, .invalidArgument)
                return error.description
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(message(ClassifierHead(classNames: ["cat"])), "a classifier needs at least two classes; got 1 (cat)")
        XCTAssertEqual(message(ClassifierHead(classNames: ["a", "a"])), "the class name 'a' is given twice")
        XCTAssertEqual(message(ClassifierHead(classNames: ["a", "b"], hidden: [8, 4], dropout: [0.5])),
                       "give one dropout probability per hidden layer: 2 hidden layers, 1 dropout values")
        XCTAssertEqual(message(ClassifierHead(classNames: ["a", "b"], hidden: [8], dropout: [1])),
                       "a dropout probability must be in [0, 1); got 1.0")
        XCTAssertEqual(message(ClassifierHead(classNames: ["a", "b"], hidden: [0], dropout: [0.5])),
                       "a hidden layer must have at least one unit; got 0")
    }

    func testATrunkWithoutAClassifierIsRefused() throws {
        var graph = try Self.tinyTrunk()
        let gemm = graph.nodes.removeLast()
        graph.outputs = [ValueInfo(name: gemm.inputs[0], dtype: .float32, shape: Shape([.symbol("batch"), .value(256)]))]
        XCTAssertThrowsError(try ClassifierHead(classNames: ["a", "b"]).graft(onto: graph)) { error in
            XCTAssertEqual((error as? GraftError)?.description,
                           "node '/Flatten' (Flatten): the model does not end in a fully connected classifier (Gemm) to replace")
        }
    }
}
