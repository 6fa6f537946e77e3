import Foundation
import GraftCore
import GraftONNX
import GraftRuntime
import GraftTestSupport
import XCTest

/// Every op, written in the form each target opset wants, means in ONNX Runtime what it means in
/// Graft: small graphs of every op are exported at old and new opsets, checked by ONNX's checker,
/// run in ONNX Runtime, and compared with Graft's interpreter on the graph before export (and
/// after importing it back).
final class ExportOpsetTests: XCTestCase {
    static func float(_ name: String, _ shape: [Int]) -> ValueInfo { ValueInfo(name: name, dtype: .float32, shape: Shape(shape)) }
    static func ints(_ values: [Int]) -> Tensor { Tensor(shape: [values.count], int64s: values.map { Int64($0) }) }

    /// Conv, pools, Gemm and the legacy 2-D softmax on a 1x3x9x9 input.
    static func windowGraph(ceilMode: Bool) -> Graph {
        var random = SeededGenerator(seed: 7)
        let nodes = [
            Node(name: "conv", op: .conv(ConvAttributes(window: Window(kernel: [3, 3], strides: [2, 2], autoPad: .sameUpper))),
                 inputs: ["x", "w", "b"], outputs: ["c"], scope: ModuleScope(path: "features.0", classNames: ["Net", "Conv2d"])),
            Node(name: "max", op: .maxPool(Window(kernel: [2, 2], strides: [2, 2], ceilMode: ceilMode)), inputs: ["c"], outputs: ["m"]),
            Node(name: "avg", op: .averagePool(Window(kernel: [2, 2], pads: [1, 1, 0, 0]), countIncludePad: true), inputs: ["m"], outputs: ["a"]),
            Node(name: "leaky", op: .leakyRelu(alpha: 0.1), inputs: ["a"], outputs: ["l"]),
            Node(name: "gap", op: .globalAveragePool, inputs: ["l"], outputs: ["g"]),
            Node(name: "flatten", op: .flatten(axis: -3), inputs: ["g"], outputs: ["f"]),
            Node(name: "dropout", op: .dropout(ratio: 0.25), inputs: ["f"], outputs: ["d"]),
            Node(name: "fc", op: .gemm(GemmAttributes(alpha: 0.5, beta: 2, transB: true)), inputs: ["d", "fc.weight", "fc.bias"], outputs: ["z"]),
            Node(name: "softmax", op: .softmax(axis: 1, coerce2D: true), inputs: ["z"], outputs: ["y"]),
        ]
        return Graph(name: "windows", inputs: [float("x", [1, 3, 9, 9])], outputs: [float("y", [1, 5])], nodes: nodes,
                     constants: ["w": random.tensor([4, 3, 3, 3]), "b": random.tensor([4]),
                                 "fc.weight": random.tensor([5, 4]), "fc.bias": random.tensor([5])],
                     constantOrder: ["w", "b", "fc.weight", "fc.bias"], metadata: ModelMetadata(opset: 11))
    }

    /// Shape ops on a 2x3x4 input, with axes as attributes (`legacy`, as before opset 13) or as
    /// constant inputs.
    static func shapeGraph(legacy: Bool) -> Graph {
        var constants: [String: Tensor] = [
            "pads": ints([0, 1, 0, 2]), "pad_value": Tensor(scalar: 0.5),
            "starts": ints([1]), "ends": ints([6]), "slice_axes": ints([-1]),
            "indices": ints([0, 3, 9]), "target": ints([3, 2]), "offset": Tensor(shape: [3], floats: [0.5, -1, 2]),
        ]
        if !legacy {
            constants["unsqueeze_axes"] = ints([-1])
            constants["mean_axes"] = ints([1])
            constants["squeeze_axes"] = ints([-1])
        }
        let nodes = [
            Node(name: "unsqueeze", op: .unsqueeze(axes: legacy ? [-1] : nil), inputs: legacy ? ["x"] : ["x", "unsqueeze_axes"], outputs: ["u"]),
            Node(name: "mean", op: .reduceMean(axes: legacy ? [1] : nil, keepDims: false, noopWithEmptyAxes: false),
                 inputs: legacy ? ["u"] : ["u", "mean_axes"], outputs: ["r"]),
            Node(name: "squeeze", op: .squeeze(axes: legacy ? [-1] : nil), inputs: legacy ? ["r"] : ["r", "squeeze_axes"], outputs: ["s"]),
            Node(name: "pad", op: .pad, inputs: ["s", "pads", "pad_value"], outputs: ["p"]),
            Node(name: "slice", op: .slice, inputs: ["p", "starts", "ends", "slice_axes"], outputs: ["sl"]),
            Node(name: "concat", op: .concat(axis: -1), inputs: ["sl", "sl"], outputs: ["cat"]),
            Node(name: "gather", op: .gather(axis: -1), inputs: ["cat", "indices"], outputs: ["gt"]),
            Node(name: "reshape", op: .reshape(allowZero: true), inputs: ["gt", "target"], outputs: ["rs"]),
            Node(name: "transpose", op: .transpose(perm: [1, 0]), inputs: ["rs"], outputs: ["t"]),
            Node(name: "add", op: .add, inputs: ["t", "offset"], outputs: ["sum"]),
            Node(name: "exp", op: .exp, inputs: ["sum"], outputs: ["e"]),
            Node(name: "sqrt", op: .sqrt, inputs: ["e"], outputs: ["q"]),
            Node(name: "logsoftmax", op: .logSoftmax(axis: -1, coerce2D: false), inputs: ["q"], outputs: ["y"]),
        ]
        return Graph(name: "shapes", inputs: [float("x", [2, 3, 4])], outputs: [float("y", [2, 3])], nodes: nodes,
                     constants: constants, metadata: ModelMetadata(opset: legacy ? 11 : 18))
    }

    /// Shape (with a start from opset 15) and ConstantOfShape on a 2x3 input.
    static func constantOfShapeGraph(start: Int) -> Graph {
        let nodes = [
            Node(name: "shape", op: .shape(start: start, end: nil), inputs: ["x"], outputs: ["sh"]),
            Node(name: "fill", op: .constantOfShape(value: Tensor(shape: [1], floats: [2])), inputs: ["sh"], outputs: ["c"]),
            Node(name: "add", op: .add, inputs: ["x", "c"], outputs: ["y"]),
        ]
        return Graph(name: "fill", inputs: [float("x", [2, 3])], outputs: [float("y", [2, 3])], nodes: nodes, metadata: ModelMetadata(opset: 15))
    }

    /// Softmax in both forms where they agree: the 2-D form at axis 1 of a 2x1x4 input is the
    /// softmax over axis 2 alone, and a softmax over the last axis is the 2-D form there.
    static func softmaxGraph() -> Graph {
        let nodes = [
            Node(name: "softmax", op: .softmax(axis: 1, coerce2D: true), inputs: ["x"], outputs: ["s"]),
            Node(name: "logsoftmax", op: .logSoftmax(axis: -1, coerce2D: false), inputs: ["s"], outputs: ["y"]),
        ]
        return Graph(name: "softmax", inputs: [float("x", [2, 1, 4])], outputs: [float("y", [2, 1, 4])], nodes: nodes)
    }

    /// Exports `graph` at each opset, runs every export in ONNX Runtime and compares with Graft's
    /// interpreter on `graph`; each export imported back must also run to the same values.
    func assertSameOutputs(_ graph: Graph, opsets: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        var random = SeededGenerator(seed: 1)
        let input = random.tensor(graph.inputs[0].shape.concrete!)
        let reference = try Interpreter(graph: graph).run(["x": input])["y"]!
        let folder = try TemporaryDirectory()
        try NPY.write(input, to: folder.file("x.npy"))
        var jobs: [ONNXRuntime.Job] = []
        for opset in opsets {
            let model = folder.file("\(graph.name)_\(opset).onnx")
            try ONNXExporter.export(graph, to: model, opset: opset)
            let back = try ONNXImporter.importModel(at: model)
            XCTAssertEqual(back.metadata.opset, opset, file: file, line: line)
            assertClose(try Interpreter(graph: back).run(["x": input])["y"]!, reference, "\(graph.name) at opset \(opset), imported back", file: file, line: line)
            jobs.append(ONNXRuntime.Job(model: model, inputs: [folder.file("x.npy")], output: folder.file("\(graph.name)_\(opset).npy")))
        }
        for (job, complaint) in zip(jobs, try ONNXRuntime.check(jobs.map(\.model), file: file, line: line)) {
            XCTAssertNil(complaint, "onnx.checker on \(job.model)", file: file, line: line)
        }
        for (job, failure) in zip(jobs, try ONNXRuntime.run(jobs, file: file, line: line)) {
            if let failure {
                XCTFail("ONNX Runtime cannot run \(job.model): \(failure)", file: file, line: line)
                continue
            }
            assertClose(try NPY.read(job.output), reference, "ONNX Runtime on \(job.model)", file: file, line: line)
        }
    }

    func testWindowOpsRunInONNXRuntimeAtEveryForm() throws {
        try assertSameOutputs(Self.windowGraph(ceilMode: false), opsets: [7, 8, 9])
        try assertSameOutputs(Self.windowGraph(ceilMode: true), opsets: [10, 11, 12, 13, 17, 19, 23])
    }

    func testShapeOpsRunInONNXRuntimeAtEveryForm() throws {
        for legacy in [true, false] {
            try assertSameOutputs(Self.shapeGraph(legacy: legacy), opsets: [7, 9, 10, 11, 12, 13, 14, 17, 18, 23])
        }
    }

    func testShapeAndConstantOfShapeRunInONNXRuntime() throws {
        try assertSameOutputs(Self.constantOfShapeGraph(start: 0), opsets: [9, 11, 13, 17, 18])
    }

    func testSoftmaxFormsRunInONNXRuntimeOnBothSidesOfOpset13() throws {
        try assertSameOutputs(Self.softmaxGraph(), opsets: [7, 11, 12, 13, 18])
    }

    /// The forms themselves, read back by the importer.
    func testAttributesMoveBetweenAttributeAndInputWithTheOpset() throws {
        func exported(_ graph: Graph, at opset: Int) throws -> Graph {
            try ONNXExporter.serialize(graph, opset: opset).withUnsafeBytes { try ONNXImporter.importModel(bytes: $0, directory: nil) }
        }
        func node(_ g: Graph, _ name: String) -> Node { g.nodes.first { $0.name == name }! }

        let legacy = Self.shapeGraph(legacy: true)
        let at13 = try exported(legacy, at: 13)
        XCTAssertEqual(node(at13, "unsqueeze").op, .unsqueeze(axes: nil))
        XCTAssertEqual(node(at13, "unsqueeze").inputs, ["x", "unsqueeze::axes"])
        XCTAssertEqual(at13.constants["unsqueeze::axes"], Self.ints([-1]))
        XCTAssertEqual(node(at13, "mean").op, .reduceMean(axes: [1], keepDims: false, noopWithEmptyAxes: false))
        XCTAssertEqual(node(at13, "reshape").op, .reshape(allowZero: false))
        XCTAssertEqual(node(try exported(legacy, at: 14), "reshape").op, .reshape(allowZero: true))
        let at18 = try exported(legacy, at: 18)
        XCTAssertEqual(node(at18, "mean").inputs, ["u", "mean::axes"])
        XCTAssertEqual(at18.constants["mean::axes"], Self.ints([1]))

        let modern = Self.shapeGraph(legacy: false)
        let at11 = try exported(modern, at: 11)
        XCTAssertEqual(node(at11, "unsqueeze").op, .unsqueeze(axes: [-1]))
        XCTAssertEqual(node(at11, "unsqueeze").inputs, ["x"])
        XCTAssertEqual(node(at11, "mean").op, .reduceMean(axes: [1], keepDims: false, noopWithEmptyAxes: false))
        // Opset 11 first allowed negative axes; before it they count from the front.
        let at9 = try exported(modern, at: 9)
        XCTAssertEqual(node(at9, "unsqueeze").op, .unsqueeze(axes: [3]))
        XCTAssertEqual(node(at9, "squeeze").op, .squeeze(axes: [2]))
        XCTAssertEqual(node(at9, "concat").op, .concat(axis: 1))
        XCTAssertEqual(node(at9, "gather").op, .gather(axis: 1))
        XCTAssertEqual(node(at9, "slice").inputs, ["p", "slice::starts", "slice::ends", "slice::axes"])
        XCTAssertEqual(at9.constants["slice::axes"], Self.ints([1]))
        XCTAssertEqual(node(at9, "pad").inputs, ["s", "pad::pads", "pad::value"])
        XCTAssertEqual(at9.constants["pad::value"], Tensor(shape: [], floats: [0.5]))
        XCTAssertEqual(node(at9, "logsoftmax").op, .logSoftmax(axis: 1, coerce2D: true))

        let windows = Self.windowGraph(ceilMode: true)
        XCTAssertEqual(node(try exported(windows, at: 13), "softmax").op, .softmax(axis: 1, coerce2D: false))
        XCTAssertEqual(node(try exported(windows, at: 11), "dropout").op, .dropout(ratio: 0.25))
        let at12 = try exported(windows, at: 12)
        XCTAssertEqual(node(at12, "dropout").inputs, ["f", "dropout::ratio"])
        XCTAssertEqual(at12.constants["dropout::ratio"], Tensor(scalar: 0.25))
        XCTAssertEqual(node(at12, "flatten").op, .flatten(axis: -3))
        XCTAssertEqual(node(try exported(Self.windowGraph(ceilMode: false), at: 9), "flatten").op, .flatten(axis: 1))
        XCTAssertEqual(node(at12, "conv").scope, ModuleScope(path: "features.0", classNames: ["Net", "Conv2d"]))
        XCTAssertEqual(node(at12, "conv").op, windows.nodes[0].op)

        XCTAssertEqual(node(try exported(Self.constantOfShapeGraph(start: 1), at: 15), "shape").op, .shape(start: 1, end: nil))
        let softmax = Self.softmaxGraph()
        XCTAssertEqual(node(try exported(softmax, at: 13), "softmax").op, .softmax(axis: 2, coerce2D: false))
        XCTAssertEqual(node(try exported(softmax, at: 12), "logsoftmax").op, .logSoftmax(axis: 2, coerce2D: true))
    }

    func testIRVersionFollowsTheOpset() throws {
        let graph = Self.constantOfShapeGraph(start: 0)
        for (opset, ir) in [(9, 4), (10, 5), (11, 6), (13, 7), (17, 8), (18, 8), (19, 9), (21, 10), (23, 11)] {
            let back = try ONNXExporter.serialize(graph, opset: opset).withUnsafeBytes { try ONNXImporter.importModel(bytes: $0, directory: nil) }
            XCTAssertEqual(back.metadata.irVersion, ir, "opset \(opset)")
            XCTAssertEqual(back.metadata.producerName, "graft")
        }
        // IR 3 lists every initializer among the graph inputs too; the importer leaves them out.
        let windows = Self.windowGraph(ceilMode: false)
        let back = try ONNXExporter.serialize(windows, opset: 8).withUnsafeBytes { try ONNXImporter.importModel(bytes: $0, directory: nil) }
        XCTAssertEqual(back.metadata.irVersion, 3)
        XCTAssertEqual(back.inputs, windows.inputs)
    }
}

extension ExportOpsetTests {
    /// A constant that the target opset turns into an attribute (ReduceMean's axes at 13) is
    /// not left behind as an initializer no node reads.
    func testNoInitializerIsLeftUnread() throws {
        let graph = try ONNXImporter.importModel(at: Fixtures.tiny("dynamo_opset18.onnx"))
        let dir = try TemporaryDirectory()
        for opset in [13, 17] {
            let path = dir.file("m\(opset).onnx")
            try ONNXExporter.export(graph, to: path, opset: opset)
            let written = try ONNXImporter.importModel(at: path)
            let read = Set(written.nodes.flatMap(\.inputs))
            XCTAssertEqual(written.constantOrder.filter { !read.contains($0) }, [], "opset \(opset)")
        }
    }
}
