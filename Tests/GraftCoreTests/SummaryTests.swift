import Foundation
import GraftCore
import GraftSummary
import GraftTestSupport
import XCTest

/// The model summary against what PyTorch's `print(model)` and torchinfo 1.8 print for the same
/// models (references written by `tools/make_summary_references.py`), on graphs built the way
/// the importer hands over the tiny ResNet and ResNet-50 exports; and the tree rules on small
/// hand-built graphs, whose expected text was checked against `print` of the same `torch.nn` modules.
final class SummaryTests: XCTestCase {
    // MARK: - Against the references

    func testTinyResNetPrintsLikePyTorch() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64)
        assertSameLines(try ModelSummary(graph: graph).renderTorch(), try TextReference.read("tiny/reference/print_bn.txt"))
    }

    func testRecordedClassNamesGiveTheSameTree() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64, recordClasses: true)
        assertSameLines(try ModelSummary(graph: graph).renderTorch(), try TextReference.read("tiny/reference/print_bn.txt"))
    }

    func testFoldedTinyResNetPrintsLikeTheFusedPyTorchModel() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64, fold: true)
        assertSameLines(try ModelSummary(graph: graph).renderTorch(), try TextReference.read("tiny/reference/print_folded.txt"))
    }

    func testTinyResNetTableMatchesTorchinfo() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64)
        assertSameLines(try ModelSummary(graph: graph).renderTable(columns: SummaryColumn.allCases), try TextReference.torchinfo("tiny/reference/torchinfo_bn.txt"))
        assertSameLines(try ModelSummary(graph: graph).renderTable(), try TextReference.torchinfo("tiny/reference/torchinfo_bn_default.txt"))
    }

    func testResNet50MatchesPrintAndTorchinfo() throws {
        let graph = ResNetGraphBuilder.resnet(base: 64, blocks: [3, 4, 6, 3], classes: 1000, size: 224, batch: .symbol("batch"))
        let summary = try ModelSummary(graph: graph)
        assertSameLines(summary.renderTorch(), try TextReference.read("resnet50/reference/print.txt"))
        assertSameLines(summary.renderTable(columns: SummaryColumn.allCases), try TextReference.torchinfo("resnet50/reference/torchinfo.txt"))
        let totals = try XCTUnwrap(try json(summary)["totals"] as? [String: Any])
        XCTAssertEqual(totals["params"] as? Int, 25_557_032)
        XCTAssertEqual(totals["params"] as? Int, graph.parameterCount)
    }

    // MARK: - Input shapes

    func testInputShapeSetsTheBatch() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64)
        let one = try json(try ModelSummary(graph: graph))
        let two = try json(try ModelSummary(graph: graph, inputShape: [2, 3, 64, 64]))
        let layers = try XCTUnwrap(two["layers"] as? [[String: Any]])
        XCTAssertEqual(layers[1]["output_shape"] as? [Int], [2, 8, 32, 32])
        XCTAssertEqual(layers[1]["mult_adds"] as? Int, 2 * 1_204_224)
        let totals1 = try XCTUnwrap(one["totals"] as? [String: Int]), totals2 = try XCTUnwrap(two["totals"] as? [String: Int])
        XCTAssertEqual(totals2["mult_adds"], 2 * totals1["mult_adds"]!)
        XCTAssertEqual(totals2["input_bytes"], 2 * 3 * 64 * 64 * 4)
        XCTAssertEqual(totals2["params"], totals1["params"])
    }

    func testSymbolicSpatialSizesNeedAnInputShape() throws {
        var graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64)
        graph.inputs[0].shape = Shape([.symbol("N"), .value(3), .symbol("H"), .symbol("W")])
        XCTAssertThrowsError(try ModelSummary(graph: graph)) { error in
            XCTAssertEqual((error as? GraftError)?.kind, .invalidArgument)
            XCTAssertEqual((error as? GraftError)?.tensor, "input")
        }
        XCTAssertNoThrow(try ModelSummary(graph: graph, inputShape: [1, 3, 64, 64]))
    }

    func testInputShapeOfTheWrongRankIsRejected() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64)
        XCTAssertThrowsError(try ModelSummary(graph: graph, inputShape: [3, 64, 64])) { error in
            XCTAssertEqual((error as? GraftError)?.kind, .invalidArgument)
        }
    }

    // MARK: - Tree rules

    func testNodesWithoutScopeAreLeavesAtTheRoot() throws {
        var graph = Graph(name: "plain", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 3, 8, 8])])
        graph.setConstant("w", Tensor(zeros: [4, 3, 3, 3]))
        graph.setConstant("b", Tensor(zeros: [4]))
        graph.setConstant("fw", Tensor(zeros: [2, 256]))
        graph.setConstant("fb", Tensor(zeros: [2]))
        let window = Window(kernel: [3, 3], pads: [1, 1, 1, 1])
        graph.nodes = [
            Node(name: "conv", op: .conv(ConvAttributes(window: window)), inputs: ["x", "w", "b"], outputs: ["c"]),
            Node(name: "act", op: .relu, inputs: ["c"], outputs: ["r"]),
            Node(name: "flat", op: .flatten(axis: 1), inputs: ["r"], outputs: ["f"]),
            Node(name: "head", op: .gemm(GemmAttributes(transB: true)), inputs: ["f", "fw", "fb"], outputs: ["g"]),
            Node(name: "out", op: .logSoftmax(axis: 1, coerce2D: false), inputs: ["g"], outputs: ["y"]),
        ]
        graph.outputs = [ValueInfo(name: "y", dtype: .float32, shape: [1, 2])]
        let summary = try ModelSummary(graph: graph)
        // print() of nn.Module() with these modules added under these names; the ReLU is not in
        // place outside the ResNet family.
        XCTAssertEqual(summary.renderTorch(), """
            Module(
              (conv): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
              (act): ReLU()
              (flat): Flatten(start_dim=1, end_dim=-1)
              (head): Linear(in_features=256, out_features=2, bias=True)
              (out): LogSoftmax(dim=1)
            )
            """)
        let layers = try XCTUnwrap(try json(summary)["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["type"] as? String }, ["Module", "Conv2d", "ReLU", "Flatten", "Linear", "LogSoftmax"])
        XCTAssertEqual(layers.map { $0["params"] as? Int }, [626, 112, 0, 0, 514, 0])
        XCTAssertEqual(layers.map { $0["output_shape"] as? [Int] }, [[1, 2], [1, 4, 8, 8], [1, 4, 8, 8], [1, 256], [1, 2], [1, 2]])
        // torchinfo: a conv's weight and bias times N·H·W, a linear's times N.
        XCTAssertEqual(layers[1]["mult_adds"] as? Int, 112 * 64)
        XCTAssertEqual(layers[4]["mult_adds"] as? Int, 514)
    }

    func testRepeatedCallsOfALeafAreRowsAndTheLaterOnesRecursive() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64)
        let layers = try XCTUnwrap(try json(try ModelSummary(graph: graph))["layers"] as? [[String: Any]])
        let relu = layers.filter { $0["path"] as? String == "layer1.0.relu" }
        XCTAssertEqual(relu.map { $0["recursive"] as? Bool }, [false, true, true])
        XCTAssertEqual(relu.map { $0["output_shape"] as? [Int] }, [[1, 8, 16, 16], [1, 8, 16, 16], [1, 32, 16, 16]])
        XCTAssertEqual(layers.filter { $0["path"] as? String == "layer1.0" }.count, 1)
        // The downsample runs after bn3 and before the block's last ReLU, as in forward().
        let block = layers.filter { ($0["path"] as? String)?.hasPrefix("layer1.0.") == true }.map { $0["name"] as! String }
        XCTAssertEqual(block, ["conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3", "downsample", "0", "1", "relu"])
    }

    func testUnknownContainersKeepFirstUseOrderAndRecordedClasses() throws {
        var graph = Graph(name: "net", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 4])])
        graph.setConstant("body.b.weight", Tensor(zeros: [4, 4]))
        graph.nodes = [
            Node(name: "n0", op: .sigmoid, inputs: ["x"], outputs: ["s"], scope: ModuleScope(path: "body.b")),
            Node(name: "n1", op: .tanh, inputs: ["s"], outputs: ["t"], scope: ModuleScope(path: "body.a")),
            Node(name: "n2", op: .gemm(GemmAttributes(transB: true)), inputs: ["t", "body.b.weight"], outputs: ["y"],
                 scope: ModuleScope(path: "head", classNames: ["my.models.Net", "my.models.Head"])),
        ]
        graph.outputs = [ValueInfo(name: "y", dtype: .float32, shape: [1, 4])]
        XCTAssertEqual(try ModelSummary(graph: graph).renderTorch(), """
            Net(
              (body): Module(
                (b): Sigmoid()
                (a): Tanh()
              )
              (head): Linear(in_features=4, out_features=4, bias=False)
            )
            """)
    }

    func testMatMulAndAddInOneScopeAreOneLinearCall() throws {
        var graph = Graph(name: "mlp", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 4])])
        graph.setConstant("fc.weight_t", Tensor(zeros: [4, 3]))
        graph.setConstant("fc.bias", Tensor(zeros: [3]))
        graph.nodes = [
            Node(name: "/fc/MatMul", op: .matMul, inputs: ["x", "fc.weight_t"], outputs: ["m"], scope: ModuleScope(path: "fc")),
            Node(name: "/fc/Add", op: .add, inputs: ["m", "fc.bias"], outputs: ["y"], scope: ModuleScope(path: "fc")),
        ]
        graph.outputs = [ValueInfo(name: "y", dtype: .float32, shape: [1, 3])]
        let summary = try ModelSummary(graph: graph)
        XCTAssertEqual(summary.renderTorch(), "Module(\n  (fc): Linear(in_features=4, out_features=3, bias=True)\n)")
        let layers = try XCTUnwrap(try json(summary)["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.count, 2)
        XCTAssertEqual(layers[1]["params"] as? Int, 15)
        XCTAssertEqual(layers[1]["mult_adds"] as? Int, 15)
    }

    func testReduceMeanOverHeightAndWidthIsAdaptiveAvgPool() throws {
        var graph = Graph(name: "pool", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 8, 4, 4])])
        graph.setConstant("axes", Tensor(shape: [2], int64s: [-1, -2]))
        graph.setConstant("shape", Tensor(shape: [2], int64s: [1, 8]))
        graph.nodes = [
            Node(name: "mean", op: .reduceMean(axes: nil, keepDims: true, noopWithEmptyAxes: false), inputs: ["x", "axes"],
                 outputs: ["m"], scope: ModuleScope(path: "avgpool", classNames: ["torchvision.models.resnet.ResNet", "torch.nn.modules.pooling.AdaptiveAvgPool2d"])),
            Node(name: "view", op: .reshape(allowZero: true), inputs: ["m", "shape"], outputs: ["y"],
                 scope: ModuleScope(path: "", classNames: ["torchvision.models.resnet.ResNet"])),
        ]
        graph.outputs = [ValueInfo(name: "y", dtype: .float32, shape: [1, 8])]
        let summary = try ModelSummary(graph: graph)
        XCTAssertEqual(summary.renderTorch(), "ResNet(\n  (avgpool): AdaptiveAvgPool2d(output_size=(1, 1))\n)")
        let layers = try XCTUnwrap(try json(summary)["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["output_shape"] as? [Int] }, [[1, 8], [1, 8, 1, 1]])
    }

    func testAttributesPrintAsTorchNNDoes() throws {
        var graph = Graph(name: "attrs", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 4, 16, 16])])
        graph.setConstant("w", Tensor(zeros: [8, 2, 3, 1]))
        for name in ["s", "b", "m", "v"] { graph.setConstant(name, Tensor(zeros: [8])) }
        let conv = Window(kernel: [3, 1], strides: [2, 1], pads: [1, 0, 1, 0], dilations: [2, 1])
        let ops: [(String, Op, [String])] = [
            ("conv", .conv(ConvAttributes(window: conv, group: 2)), ["w"]),
            ("bn", .batchNorm(epsilon: 1e-3, momentum: 0.99), ["s", "b", "m", "v"]),
            ("leaky", .leakyRelu(alpha: 0.2), []),
            ("drop", .dropout(ratio: 0.25), []),
            ("maxpool", .maxPool(Window(kernel: [3, 2], strides: [2, 1])), []),
            ("avgpool", .averagePool(Window(kernel: [2, 2], strides: [2, 2]), countIncludePad: false), []),
            ("softmax", .softmax(axis: -1, coerce2D: false), []),
        ]
        var value = "x"
        for (name, op, inputs) in ops {
            graph.nodes.append(Node(name: name, op: op, inputs: [value] + inputs, outputs: [name + ".out"], scope: ModuleScope(path: name)))
            value = name + ".out"
        }
        graph.outputs = [ValueInfo(name: value, dtype: .float32, shape: [1, 8, 1, 7])]
        // print() of the same torch.nn modules.
        XCTAssertEqual(try ModelSummary(graph: graph).renderTorch(), """
            Module(
              (conv): Conv2d(4, 8, kernel_size=(3, 1), stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2, bias=False)
              (bn): BatchNorm2d(8, eps=0.001, momentum=0.01, affine=True, bias=True, track_running_stats=True)
              (leaky): LeakyReLU(negative_slope=0.2)
              (drop): Dropout(p=0.25, inplace=False)
              (maxpool): MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=0, dilation=1, ceil_mode=False)
              (avgpool): AvgPool2d(kernel_size=2, stride=2, padding=0)
              (softmax): Softmax(dim=-1)
            )
            """)
    }

    // MARK: - JSON

    func testJSONHasTheSchemaKeysAndIsDeterministic() throws {
        let graph = ResNetGraphBuilder.resnet(base: 8, blocks: [1, 1, 1, 1], classes: 10, size: 64)
        let summary = try ModelSummary(graph: graph)
        XCTAssertEqual(summary.renderJSON(), try ModelSummary(graph: graph).renderJSON())
        let document = try json(summary)
        let schema = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.root
            .appendingPathComponent("schemas/summary.schema.json"))) as? [String: Any])
        XCTAssertEqual(schema["$schema"] as? String, "https://json-schema.org/draft/2020-12/schema")
        func properties(_ object: [String: Any]) -> Set<String> { Set((object["properties"] as? [String: Any] ?? [:]).keys) }
        func required(_ object: [String: Any]) -> Set<String> { Set(object["required"] as? [String] ?? []) }
        let defs = try XCTUnwrap(schema["$defs"] as? [String: Any])
        let layer = try XCTUnwrap(defs["layer"] as? [String: Any]), totals = try XCTUnwrap(defs["totals"] as? [String: Any])
        let input = try XCTUnwrap(defs["input"] as? [String: Any]), model = try XCTUnwrap(defs["model"] as? [String: Any])
        // Every object has exactly the keys its schema requires (additionalProperties is false).
        XCTAssertEqual(Set(document.keys), required(schema))
        XCTAssertEqual(properties(schema), required(schema))
        for (object, def) in [(document["model"], model), (document["totals"], totals)] + (document["inputs"] as! [Any]).map({ ($0, input) })
            + (document["layers"] as! [Any]).map({ ($0, layer) }) {
            XCTAssertEqual(Set(try XCTUnwrap(object as? [String: Any]).keys), required(def))
            XCTAssertEqual(properties(def), required(def))
        }
        let t = try XCTUnwrap(document["totals"] as? [String: Int])
        XCTAssertEqual(t["params"], 130_962)
        XCTAssertEqual(t["total_bytes"], t["input_bytes"]! + t["forward_backward_bytes"]! + t["params_bytes"]!)
        XCTAssertEqual(document["model"] as? [String: String], ["name": "resnet", "class": "ResNet"])
    }

    // MARK: - Helpers



    func json(_ summary: ModelSummary) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(summary.renderJSON().utf8)) as? [String: Any])
    }
}

