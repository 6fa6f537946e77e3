import Foundation
import Graft
import GraftCore
import GraftONNX
import GraftTestSupport
import XCTest

/// The Swift API: a model from any file, its summary, a run, a classification, and errors that
/// name what is wrong.
final class ModelTests: XCTestCase {
    func testEveryFormatGivesTheSameModel() throws {
        let input = try NPY.read(Fixtures.path("hdf5/input_b1.npy"))
        let reference = try NPY.read(Fixtures.path("torch/basic.output_b1.npy"))
        for file in ["torch/basic.onnx", "torch/basic.pth", "torch/basic_legacy.pth", "torch/basic_checkpoint.pth"] {
            let model = try Model(contentsOf: URL(fileURLWithPath: Fixtures.path(file)))
            let outputs = try model.run([model.inputs[0].name: input])
            assertClose(try XCTUnwrap(outputs[model.outputs[0].name]), reference, file)
            XCTAssertTrue(try model.summary(format: .torch).hasPrefix("ResNet(\n"), file)
        }
        let checkpoint = try Model(contentsOf: URL(fileURLWithPath: Fixtures.path("torch/basic_checkpoint.pth")))
        XCTAssertEqual(checkpoint.notes.count, 1)
    }

    func testClassifyAnImage() throws {
        let model = try Model(contentsOf: URL(fileURLWithPath: Fixtures.tiny("ts_opset17_dynamic.onnx")))
        let image = URL(fileURLWithPath: Fixtures.path("images/rgb_300x200.jpg"))
        let top = try model.classify(imageAt: image, topK: 3)
        XCTAssertEqual(top.count, 3)
        XCTAssertTrue(top[0].score >= top[1].score && top[1].score >= top[2].score)
        XCTAssertEqual(top.map(\.label), top.map { "class \($0.index)" }, "a 10-class model records no names")
        XCTAssertThrowsError(try model.classify(imageAt: URL(fileURLWithPath: "/nonexistent.jpg"))) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent.jpg: "), "\(error)")
        }
    }

    /// A missing input, a wrong type or shape: a `GraftError` naming the input and what it
    /// expects, never a trap.
    func testBadInputsAreNamed() throws {
        let model = try Model(contentsOf: URL(fileURLWithPath: Fixtures.tiny("ts_opset17_bn.onnx")))
        let name = model.inputs[0].name
        XCTAssertThrowsError(try model.run(["nope": Tensor(zeros: [1, 3, 64, 64])])) { error in
            XCTAssertEqual("\(error)", "tensor '\(name)': no value given for input '\(name)'")
        }
        XCTAssertThrowsError(try model.run([name: Tensor(zeros: [2, 3, 64, 64])])) { error in
            XCTAssertEqual("\(error)", "tensor '\(name)': input '\(name)' must have shape [1, 3, 64, 64], got [2, 3, 64, 64]")
        }
        XCTAssertThrowsError(try model.run([name: Tensor(shape: [1], int64s: [1])])) { error in
            XCTAssertEqual("\(error)", "tensor '\(name)': input '\(name)' must be float32, got int64")
        }
        XCTAssertThrowsError(try Model(contentsOf: URL(fileURLWithPath: "/nonexistent.onnx"))) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent.onnx: "), "\(error)")
        }
    }

    /// A model whose weights the graph computes (ConstantOfShape → Add) is summarized with its
    /// weights counted, and says so.
    func testComputedWeightsAreFoldedForTheSummary() throws {
        var graph = try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_bn.onnx"))
        let weight = "conv1.weight"
        let original = try XCTUnwrap(graph.constants[weight])
        graph.constants[weight] = nil
        graph.constantOrder.removeAll { $0 == weight }
        graph.setConstant("w_shape", Tensor(shape: [4], int64s: original.shape.map(Int64.init)))
        graph.setConstant("w_delta", original)
        graph.nodes.insert(contentsOf: [
            Node(name: "fill", op: .constantOfShape(value: Tensor(shape: [1], floats: [0])), inputs: ["w_shape"], outputs: ["zeros"]),
            Node(name: "make", op: .add, inputs: ["zeros", "w_delta"], outputs: [weight]),
        ], at: 0)
        let (folded, note) = try graph.foldedForSummary()
        XCTAssertEqual(note, "1 weights are computed by the graph from constants; they are folded into constants for the summary to count them")
        XCTAssertEqual(folded.parameterCount, try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_bn.onnx")).parameterCount)
        XCTAssertFalse(folded.nodes.contains { $0.op.name == "ConstantOfShape" })
        XCTAssertNil(try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_bn.onnx")).foldedForSummary().note)
    }
}
