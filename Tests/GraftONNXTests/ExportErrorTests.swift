import Foundation
import GraftCore
import GraftONNX
import GraftTestSupport
import XCTest

/// Every way an export can fail gives one clear error and leaves the files as they were.
final class ExportErrorTests: XCTestCase {
    func tiny() throws -> Graph {
        try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_bn.onnx"))
    }

    func contents(_ folder: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    func testAFolderThatDoesNotExist() throws {
        let folder = try TemporaryDirectory()
        let graph = try tiny()
        for external in [false, true] {
            let path = folder.file("missing/model.onnx")
            let e = thrownGraftError { try ONNXExporter.export(graph, to: path, externalData: external) }
            XCTAssertEqual(e?.kind, .io)
            XCTAssertEqual(e?.description, "\(path): cannot write: the folder \(folder.path)/missing does not exist")
            XCTAssertEqual(try contents(folder), [], "nothing is left behind")
        }
    }

    func testATargetThatIsAFolderLeavesTheDataFileAlone() throws {
        let folder = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: folder.file("model.onnx"), withIntermediateDirectories: false)
        let old = Data("previous weights".utf8)
        try old.write(to: URL(fileURLWithPath: folder.file("model.onnx.data")))
        let e = thrownGraftError { try ONNXExporter.export(try tiny(), to: folder.file("model.onnx"), externalData: true) }
        XCTAssertEqual(e?.description, "\(folder.file("model.onnx")): cannot write: it is a folder")
        XCTAssertEqual(try contents(folder), ["model.onnx", "model.onnx.data"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder.file("model.onnx.data"))), old)
    }

    func testADataFileThatCannotBeReplacedLeavesTheModelAlone() throws {
        let folder = try TemporaryDirectory()
        let old = Data("previous model".utf8)
        try old.write(to: URL(fileURLWithPath: folder.file("model.onnx")))
        // A non-empty folder where the data file goes: the rename over it fails.
        try FileManager.default.createDirectory(atPath: folder.file("model.onnx.data/keep"), withIntermediateDirectories: true)
        let e = thrownGraftError { try ONNXExporter.export(try tiny(), to: folder.file("model.onnx"), externalData: true) }
        XCTAssertEqual(e?.kind, .io)
        XCTAssertEqual(e?.file, folder.file("model.onnx.data"))
        XCTAssertTrue(e?.message.hasPrefix("cannot write: ") ?? false, e?.description ?? "")
        XCTAssertEqual(try contents(folder), ["model.onnx", "model.onnx.data"], "no temporary file is left")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder.file("model.onnx"))), old)
    }

    /// Replacing a model with external data never pairs the new model with the old data file, or
    /// the old model with the new: the new data file gets a name the old model does not use, is
    /// renamed into place before the model, and the old one goes only once the new model is in.
    func testReplacingAModelWithExternalDataChangesThePairTogether() throws {
        let folder = try TemporaryDirectory()
        let path = folder.file("model.onnx")
        let a = try tiny(), b = try ONNXImporter.importModel(at: Fixtures.tiny("dynamo_opset18.onnx"))
        func dataFiles() throws -> [String] { try contents(folder).filter { $0 != "model.onnx" } }
        func isRandomName(_ name: String) -> Bool {
            name.hasPrefix("model.onnx.") && name.hasSuffix(".data") && name.count == "model.onnx..data".count + 16
                && name.dropFirst(11).prefix(16).allSatisfy(\.isHexDigit)
        }
        try ONNXExporter.export(a, to: path, externalData: true)
        XCTAssertEqual(try dataFiles(), ["model.onnx.data"])
        try ONNXExporter.export(b, to: path, externalData: true)
        let second = try dataFiles()
        XCTAssertEqual(second.count, 1, "the old data file is removed: \(second)")
        XCTAssertTrue(second.allSatisfy(isRandomName), "the new model names a new data file: \(second)")
        assertSameGraph(try ONNXImporter.importModel(at: path), b, "second")
        // Back again: the usual name is free, and the random one goes.
        try ONNXExporter.export(a, to: path, externalData: true)
        XCTAssertEqual(try dataFiles(), ["model.onnx.data"])
        assertSameGraph(try ONNXImporter.importModel(at: path), a, "third")
        // Inline now: no model names a data file, so none is left.
        try ONNXExporter.export(b, to: path, externalData: false)
        XCTAssertEqual(try contents(folder), ["model.onnx"])
        // A data file of this naming that a model in the folder names (a copy of the model) is kept;
        // one no model names (a kill between the two renames left it) goes with the next export,
        // and a data file of another naming is never touched.
        try ONNXExporter.export(b, to: path, externalData: true)
        XCTAssertEqual(try dataFiles(), ["model.onnx.data"])
        try FileManager.default.copyItem(atPath: path, toPath: folder.file("copy.onnx"))
        try Data("orphan".utf8).write(to: URL(fileURLWithPath: folder.file("model.onnx.0123456789abcdef.data")))
        try Data("theirs".utf8).write(to: URL(fileURLWithPath: folder.file("model.onnx.backup.data")))
        try ONNXExporter.export(a, to: path, externalData: true)
        let left = try dataFiles().filter { $0 != "copy.onnx" && $0 != "model.onnx.backup.data" && $0 != "model.onnx.data" }
        XCTAssertEqual(left.count, 1, "the orphan is gone, the new model's data file is there: \(left)")
        XCTAssertTrue(left.allSatisfy(isRandomName) && left != ["model.onnx.0123456789abcdef.data"], "\(left)")
        XCTAssertTrue(try contents(folder).contains("model.onnx.backup.data"))
        assertSameGraph(try ONNXImporter.importModel(at: path), a, "fourth")
        assertSameGraph(try ONNXImporter.importModel(at: folder.file("copy.onnx")), b, "copy")
    }

    func testAnExistingTargetIsUntouchedWhenTheGraphCannotBeWritten() throws {
        let folder = try TemporaryDirectory()
        let model = Data("previous model".utf8), data = Data("previous weights".utf8)
        try model.write(to: URL(fileURLWithPath: folder.file("model.onnx")))
        try data.write(to: URL(fileURLWithPath: folder.file("model.onnx.data")))
        let graph = ExportOpsetTests.windowGraph(ceilMode: true)
        let e = thrownGraftError { try ONNXExporter.export(graph, to: folder.file("model.onnx"), opset: 9, externalData: true) }
        XCTAssertEqual(e?.description, "node 'max' (MaxPool): cannot be written at opset 9: ceil_mode needs opset 10 or later")
        XCTAssertEqual(try contents(folder), ["model.onnx", "model.onnx.data"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder.file("model.onnx"))), model)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder.file("model.onnx.data"))), data)
    }

    func testOpsTheTargetOpsetCannotExpressNameTheNode() throws {
        func message(_ graph: Graph, _ opset: Int) -> String? {
            thrownGraftError { _ = try ONNXExporter.serialize(graph, opset: opset) }?.description
        }
        let x = ValueInfo(name: "x", dtype: .float32, shape: [2, 3, 4])
        func single(_ op: Op, inputs: [String] = ["x"], constants: [String: Tensor] = [:]) -> Graph {
            Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [2, 3, 4])],
                  nodes: [Node(name: "n", op: op, inputs: inputs, outputs: ["y"])], constants: constants)
        }
        XCTAssertEqual(message(single(.softmax(axis: 1, coerce2D: true)), 13),
                       "node 'n' (Softmax): cannot be written at opset 13: Softmax on the input coerced to 2-D at axis 1 of [2, 3, 4] has no form from opset 13 on (only a single axis)")
        XCTAssertEqual(message(single(.logSoftmax(axis: 1, coerce2D: false)), 11),
                       "node 'n' (LogSoftmax): cannot be written at opset 11: LogSoftmax over axis 1 of [2, 3, 4] alone has no form before opset 13 (it works on the input coerced to 2-D)")
        XCTAssertEqual(message(single(.reshape(allowZero: true), inputs: ["x", "s"], constants: ["s": ExportOpsetTests.ints([0, 12])]), 13),
                       "node 'n' (Reshape): cannot be written at opset 13: Reshape with allowzero=1 and a target shape that may hold 0 needs opset 14 or later")
        XCTAssertEqual(message(ExportOpsetTests.constantOfShapeGraph(start: 1), 13),
                       "node 'shape' (Shape): cannot be written at opset 13: Shape with start 1 and end none needs opset 15 or later")
        XCTAssertEqual(message(ExportOpsetTests.constantOfShapeGraph(start: 0), 8),
                       "node 'fill' (ConstantOfShape): cannot be written at opset 8: ConstantOfShape needs opset 9 or later")
        var computedAxes = single(.unsqueeze(axes: nil), inputs: ["x", "axes"])
        computedAxes.inputs.append(ValueInfo(name: "axes", dtype: .int64, shape: [1]))
        XCTAssertEqual(message(computedAxes, 11),
                       "node 'n' (Unsqueeze): cannot be written at opset 11: its axes (input 1, 'axes') is computed, but opset 11 needs it as an attribute")
        XCTAssertEqual(message(single(.relu), 6), "opset 6 cannot be written (Graft writes opsets 7 to 23)")
    }

    func testShapeInferenceFailureIsReportedAtTheNodeThatNeedsIt() throws {
        // Only the legacy axis needs the rank; the graph's other node cannot be shape-inferred.
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [2, 3])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [6])],
                          nodes: [Node(name: "bad", op: .reshape(allowZero: false), inputs: ["x", "s"], outputs: ["r"]),
                                  Node(name: "flat", op: .flatten(axis: -1), inputs: ["r"], outputs: ["y"])],
                          constants: ["s": ExportOpsetTests.ints([5])])
        XCTAssertNoThrow(try ONNXExporter.serialize(graph, opset: 11))
        let e = thrownGraftError { _ = try ONNXExporter.serialize(graph, opset: 9) }
        XCTAssertEqual(e?.node, "flat")
        XCTAssertTrue(e?.message.contains("needs the shape of 'r', which shape inference cannot give") ?? false, e?.description ?? "")
    }
}

