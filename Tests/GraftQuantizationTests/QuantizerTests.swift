import Foundation
import GraftCore
import GraftONNX
import GraftQuantization
import GraftRuntime
import GraftTestSupport
import XCTest

/// Post-training quantization of the tiny ResNet into QDQ ONNX: the graph written is one that
/// ONNX Runtime loads and runs, with its int8 kernels, to the outputs Graft computes for it.
final class QuantizerTests: XCTestCase {
    /// The optimized tiny ResNet (batch norms folded) and seeded calibration batches.
    func model() throws -> (Graph, [Tensor]) {
        let imported = try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_dynamic.onnx"))
        let graph = try CompiledModel(imported).graph
        var generator = SeededGenerator(seed: 7)
        let batches = (0..<4).map { _ in
            Tensor(shape: [4, 3, 64, 64], floats: (0..<(4 * 3 * 64 * 64)).map { _ in Float.random(in: -2...2, using: &generator) })
        }
        return (graph, batches)
    }

    func testEveryMethodAndSettingWritesQDQThatONNXRuntimeRunsAsGraftDoes() throws {
        let (graph, batches) = try model()
        let folder = try TemporaryDirectory()
        let x = try NPY.read(Fixtures.tiny("input_b3.npy"))
        try NPY.write(x, to: folder.file("x.npy"))
        var quantizers: [(String, Quantizer)] = []
        for method in Quantizer.Method.allCases {
            for activations in Quantizer.Activations.allCases {
                for perChannel in [true, false] {
                    var q = Quantizer()
                    q.method = method
                    q.activations = activations
                    q.perChannel = perChannel
                    quantizers.append(("\(method.rawValue)_\(activations.rawValue)_\(perChannel ? "channel" : "tensor")", q))
                }
            }
        }
        var jobs: [ONNXRuntime.Job] = [], ours: [String: Tensor] = [:]
        for (name, quantizer) in quantizers {
            let (quantized, report) = try quantizer.quantize(graph, calibration: batches)
            XCTAssertEqual(report.quantizedNodes.count, graph.nodes.filter { if case .conv = $0.op { return true }; return $0.op.name == "Gemm" }.count, name)
            XCTAssertEqual(report.samples, 16)
            // Every Conv and Gemm reads dequantized weights and a dequantized activation.
            let producers = Dictionary(quantized.nodes.flatMap { n in n.outputs.map { ($0, n) } }, uniquingKeysWith: { a, _ in a })
            for node in quantized.nodes where node.op.name == "Conv" || node.op.name == "Gemm" {
                XCTAssertEqual(producers[node.inputs[0]]?.op.name, "DequantizeLinear", "\(name): \(node.name) input")
                XCTAssertEqual(producers[node.inputs[1]]?.op.name, "DequantizeLinear", "\(name): \(node.name) weights")
            }
            XCTAssertEqual(quantized.nodes.contains { $0.op == .relu }, activations(name) == "s8",
                           "\(name): a Relu goes only where uint8's zero point clips for it")
            let path = folder.file("\(name).onnx")
            try ONNXExporter.export(quantized, to: path)
            jobs.append(.init(model: path, inputs: [folder.file("x.npy")], output: folder.file("\(name).npy")))
            ours[name] = try XCTUnwrap(try CompiledModel(quantized, optimize: false).run([graph.inputs[0].name: x])[graph.outputs[0].name])
        }
        let errors = try ONNXRuntime.run(jobs)
        let f32 = try XCTUnwrap(try CompiledModel(graph).run([graph.inputs[0].name: x])[graph.outputs[0].name])
        for ((name, _), error) in zip(quantizers, errors) {
            XCTAssertNil(error, name)
            let theirs = try NPY.read(folder.file("\(name).npy"))
            let mine = try XCTUnwrap(ours[name])
            // ONNX Runtime's int8 kernels requantize in their own order: a value on a rounding
            // boundary may land one step away, so allow a few output quantization steps.
            let range = mine.floats.map(abs).max()!
            assertClose(mine, theirs, atol: 0.02 * range, rtol: 0, "\(name): Graft against ONNX Runtime")
            // And min-max quantization stays near the float model (these weights and inputs are
            // random: a sanity bound, not an accuracy figure; the methods that clip outliers are
            // measured on a trained model and real images instead).
            if name.hasPrefix("minmax") { assertClose(mine, f32, atol: 0.15 * range, rtol: 0, "\(name): against float") }
        }
    }

    func activations(_ name: String) -> String { String(name.split(separator: "_")[1]) }

    func testWeightsAreSymmetricInt8PerChannel() throws {
        let w = Tensor(shape: [2, 1, 1, 3], floats: [1, -0.5, 0.25, 0, 0, 0])
        var q = Quantizer()
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 1, 2, 2])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 2, 2, 2])],
                          nodes: [Node(name: "c", op: .conv(ConvAttributes(window: Window(kernel: [1, 3], pads: [0, 1, 0, 1]))), inputs: ["x", "w"], outputs: ["y"])],
                          constants: ["w": w])
        let (out, _) = try q.quantize(graph, calibration: [Tensor(shape: [1, 1, 2, 2], floats: [-1, 2, 3, 0.5])])
        let weights = try XCTUnwrap(out.constants["w_quantized"])
        XCTAssertEqual(weights.dtype, .int8)
        XCTAssertEqual(weights.withUnsafeBufferPointer(as: Int8.self) { Array($0) }, [127, -64, 32, 0, 0, 0])
        XCTAssertEqual(try XCTUnwrap(out.constants["w_scale"]).floats, [1 / 127, 1])
        q.perChannel = false
        let (tensor, _) = try q.quantize(graph, calibration: [Tensor(shape: [1, 1, 2, 2], floats: [-1, 2, 3, 0.5])])
        XCTAssertEqual(try XCTUnwrap(tensor.constants["w_scale"]).shape, [])
        // The input's range [-1, 3] over uint8: scale 4/255, zero point 64.
        XCTAssertEqual(try XCTUnwrap(out.constants["x_scale"]).floats, [4 / 255])
        XCTAssertEqual(try XCTUnwrap(out.constants["x_zero_point"]).withUnsafeBufferPointer(as: UInt8.self) { Array($0) }, [64])
    }

    /// Entropy calibration of values from −1 to 3 over uint8: the range it picks stays within the
    /// values seen, so the zero point sits a quarter up the grid (a symmetric ±3 would put it at
    /// 128 and leave a third of the steps unused).
    func testEntropyRangeStaysWithinTheValuesSeen() throws {
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 1, 40, 100])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 1, 40, 100])],
                          nodes: [Node(name: "c", op: .conv(ConvAttributes(window: Window(kernel: [1, 1]))), inputs: ["x", "w"], outputs: ["y"])],
                          constants: ["w": Tensor(shape: [1, 1, 1, 1], floats: [1])])
        let values = (0..<4000).map { -1 + 4 * Float($0) / 3999 }
        var q = Quantizer()
        q.method = .entropy
        let (out, report) = try q.quantize(graph, calibration: [Tensor(shape: [1, 1, 40, 100], floats: values)])
        let range = try XCTUnwrap(report.ranges.first { $0.name == "x" }?.range)
        XCTAssertEqual(range.lowerBound, -1, accuracy: 1e-6)
        XCTAssertGreaterThan(range.upperBound, 2.5)
        let zero = try XCTUnwrap(out.constants["x_zero_point"]).withUnsafeBufferPointer(as: UInt8.self) { Array($0) }
        XCTAssertEqual(Double(zero[0]), 255 / (1 + Double(range.upperBound)), accuracy: 1)
    }
}
