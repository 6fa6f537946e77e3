import Foundation
import GraftCore
import GraftONNX
import GraftRuntime
import GraftSummary
import GraftTestSupport
import XCTest

/// Quantized models in ONNX's QDQ form (QuantizeLinear and DequantizeLinear around float ops),
/// as ONNX Runtime's quantizer writes them (fixtures/qdq, tools/make_qdq_fixtures.py): imported,
/// run and written back, against ONNX Runtime.
final class QuantizedModelTests: XCTestCase {
    static let variants = ["tiny_qdq_per_channel_u8s8", "tiny_qdq_per_tensor_s8s8"]

    func run(_ graph: Graph, _ x: Tensor, optimize: Bool) throws -> Tensor {
        let model = try CompiledModel(graph, optimize: optimize)
        return try XCTUnwrap(try model.run([model.inputs[0].name: x])[model.outputs[0].name])
    }

    /// As the ops are defined: ONNX Runtime's outputs with its graph optimizations off, and with
    /// them on (its int8 kernels, which gave the same outputs on these inputs), to the last bit
    /// but for a float sum's order; the passes fold the weights' DequantizeLinear into constants.
    func testQDQModelsFromONNXRuntimesQuantizerRunAsDefined() throws {
        let x = try NPY.read(Fixtures.tiny("input_b3.npy"))
        for name in Self.variants {
            let graph = try ONNXImporter.importModel(at: Fixtures.path("qdq/\(name).onnx"))
            XCTAssertTrue(graph.nodes.contains { $0.op == .quantizeLinear(axis: 1) }, name)
            for reference in ["exact", "int8"] {
                let expected = try NPY.read(Fixtures.path("qdq/\(name).\(reference).npy"))
                for optimize in [false, true] {
                    assertClose(try run(graph, x, optimize: optimize), expected, atol: 1e-5, rtol: 1e-5,
                                "\(name) against ONNX Runtime (\(reference)), passes \(optimize ? "on" : "off")")
                }
            }
            let folded = try CompiledModel(graph).graph
            XCTAssertFalse(folded.nodes.contains { node in
                guard case .dequantizeLinear = node.op else { return false }
                return node.inputs.allSatisfy { folded.constants[$0] != nil }
            }, "\(name): no DequantizeLinear of constants is left to run")
        }
    }

    /// A QDQ model's summary is the float model's: its QuantizeLinear/DequantizeLinear pairs are
    /// no modules (the ReLUs the quantizer dropped are gone from it, nothing else).
    func testTheSummaryListsTheFloatModelsLayers() throws {
        let float = try ModelSummary(graph: try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_dynamic.onnx"))).renderTorch()
        for name in Self.variants {
            let quantized = try ModelSummary(graph: try ONNXImporter.importModel(at: Fixtures.path("qdq/\(name).onnx"))).renderTorch()
            XCTAssertEqual(quantized.split(separator: "\n"), float.split(separator: "\n").filter { !$0.contains("ReLU") }, name)
        }
    }

    /// Written back, the model is standard QDQ ONNX that ONNX Runtime runs to the same outputs.
    func testQDQModelsWriteBackToONNXRuntime() throws {
        let folder = try TemporaryDirectory()
        var jobs: [ONNXRuntime.Job] = []
        for name in Self.variants {
            let graph = try ONNXImporter.importModel(at: Fixtures.path("qdq/\(name).onnx"))
            try ONNXExporter.export(graph, to: folder.file("\(name).onnx"))
            jobs.append(.init(model: folder.file("\(name).onnx"), inputs: [Fixtures.tiny("input_b3.npy")], output: folder.file("\(name).npy")))
        }
        let errors = try ONNXRuntime.run(jobs)
        for (name, error) in zip(Self.variants, errors) {
            XCTAssertNil(error, name)
            assertClose(try NPY.read(folder.file("\(name).npy")), try NPY.read(Fixtures.path("qdq/\(name).exact.npy")), atol: 1e-6, rtol: 0, name)
        }
    }

    /// The ops one at a time against ONNX Runtime: rounding half to even, saturation at both
    /// ends of uint8 and int8, zero points, a scale per slice along axes 0, 1 and −1, int32
    /// (a bias) dequantized.
    func testQuantizeAndDequantizeMatchONNXRuntimeElementForElement() throws {
        let folder = try TemporaryDirectory()
        // Halves, values past both ends of either range, negative zero.
        let values: [Float] = [-300, -129.5, -128.5, -2.5, -1.5, -0.5, -0, 0.5, 1.5, 2.5, 126.5, 127.5, 254.5, 255.5, 1e6, 0.25,
                               3.75, -3.75, 17, -17, 100.49, -100.51, 7.5, 8.5]
        let x = Tensor(shape: [2, 3, 4], floats: values)
        func int8s(_ v: [Int8]) -> Tensor {
            var t = Tensor(zeros: [v.count], dtype: .int8)
            t.withUnsafeMutableBufferPointer(as: Int8.self) { for i in v.indices { $0[i] = v[i] } }
            return t
        }
        func uint8s(_ v: [UInt8]) -> Tensor {
            var t = Tensor(zeros: [v.count], dtype: .uint8)
            t.withUnsafeMutableBufferPointer(as: UInt8.self) { for i in v.indices { $0[i] = v[i] } }
            return t
        }
        // (name, axis, scale, zero point): per tensor and per slice, each type.
        let cases: [(String, Int, Tensor, Tensor?)] = [
            ("u8_tensor", 1, Tensor(scalar: 1), nil),
            ("u8_zero", 1, Tensor(shape: [], floats: [0.5]), uint8s([128]).reshaped([])),
            ("s8_tensor", 1, Tensor(shape: [1], floats: [2]), int8s([-3])),
            ("s8_axis0", 0, Tensor(shape: [2], floats: [1, 0.25]), int8s([0, 5])),
            ("u8_axis1", 1, Tensor(shape: [3], floats: [1, 3, 0.5]), uint8s([0, 10, 255])),
            ("s8_axis_last", -1, Tensor(shape: [4], floats: [1, 2, 4, 0.125]), int8s([1, -1, 127, -128])),
        ]
        var graphs: [(String, Graph)] = []
        for (name, axis, scale, zero) in cases {
            var constants = ["scale": scale]
            var inputs = ["x", "scale"]
            if let zero { constants["zero"] = zero; inputs.append("zero") }
            let q = Node(name: "q", op: .quantizeLinear(axis: axis), inputs: inputs, outputs: ["q"])
            let dq = Node(name: "dq", op: .dequantizeLinear(axis: axis), inputs: ["q"] + inputs.dropFirst(), outputs: ["y"])
            graphs.append((name, Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [2, 3, 4])],
                                       outputs: [ValueInfo(name: "y", dtype: .float32, shape: [2, 3, 4])],
                                       nodes: [q, dq], constants: constants)))
        }
        // int32 dequantized with a scale per output channel, as a quantized bias is.
        var bias = Tensor(zeros: [3], dtype: .int32)
        bias.withUnsafeMutableBufferPointer(as: Int32.self) { $0[0] = 16_777_217; $0[1] = -5; $0[2] = Int32.min }
        graphs.append(("i32_bias", Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [2, 3, 4])],
                                         outputs: [ValueInfo(name: "y", dtype: .float32, shape: [2, 3, 4])],
                                         nodes: [Node(name: "dq", op: .dequantizeLinear(axis: 0), inputs: ["b", "s"], outputs: ["d"]),
                                                 Node(name: "add", op: .add, inputs: ["x", "bias3"], outputs: ["y"]),
                                                 Node(name: "r", op: .reshape(allowZero: false), inputs: ["d", "shape"], outputs: ["bias3"])],
                                         constants: ["b": bias, "s": Tensor(shape: [3], floats: [0.5, 3, 1e-3]),
                                                     "shape": Tensor(shape: [3], int64s: [1, 3, 1])])))
        try NPY.write(x, to: folder.file("x.npy"))
        var jobs: [ONNXRuntime.Job] = []
        for (name, graph) in graphs {
            try ONNXExporter.export(graph, to: folder.file("\(name).onnx"), opset: 13)
            jobs.append(.init(model: folder.file("\(name).onnx"), inputs: [folder.file("x.npy")], output: folder.file("\(name).npy")))
        }
        let errors = try ONNXRuntime.run(jobs)
        for ((name, graph), error) in zip(graphs, errors) {
            XCTAssertNil(error, name)
            let expected = try NPY.read(folder.file("\(name).npy"))
            let reimported = try ONNXImporter.importModel(at: folder.file("\(name).onnx"))
            for (what, g) in [("built", graph), ("re-imported", reimported)] {
                let y = try XCTUnwrap(try referenceRun(g, ["x": x])["y"])
                XCTAssertEqual(y.floats.map(\.bitPattern), expected.floats.map(\.bitPattern), "\(name) (\(what)): \(y.floats) vs \(expected.floats)")
            }
        }
    }

    /// Tensors with no elements quantize and dequantize to tensors with none, per tensor and per
    /// slice (found by the fuzzer: the dequantization's slice loop stepped by 0).
    func testEmptyTensorsQuantizeAndDequantizeToEmpty() throws {
        for (shape, axis, scale) in [([0, 3], 1, Tensor(scalar: 0.5)), ([2, 0], 0, Tensor(shape: [2], floats: [1, 2])), ([0], 0, Tensor(scalar: 1))] {
            let q = try Op.quantizeLinear(axis: axis).evaluate([Tensor(zeros: shape), scale, nil])[0]
            XCTAssertEqual(q.shape, shape)
            let y = try Op.dequantizeLinear(axis: axis).evaluate([q, scale, nil])[0]
            XCTAssertEqual(y.shape, shape)
            XCTAssertEqual(y.elementCount, 0)
        }
    }

    /// Scales and zero points that do not fit the input, and scales of 0, negative, NaN or
    /// infinite, are refused naming the node, at load.
    func testMismatchedScalesAreRefusedNamingTheNode() throws {
        let x = ValueInfo(name: "x", dtype: .float32, shape: [2, 3, 4])
        func graph(_ scale: Tensor, zero: Tensor?, axis: Int = 1) -> Graph {
            var constants = ["scale": scale]
            if let zero { constants["zero"] = zero }
            return Graph(inputs: [x], outputs: [ValueInfo(name: "q", dtype: .uint8, shape: [2, 3, 4])],
                         nodes: [Node(name: "quant", op: .quantizeLinear(axis: axis), inputs: zero == nil ? ["x", "scale"] : ["x", "scale", "zero"], outputs: ["q"])],
                         constants: constants)
        }
        let cases: [(Graph, String)] = [
            (graph(Tensor(shape: [4], floats: [1, 1, 1, 1]), zero: nil), "4 scales for axis 1 of [2, 3, 4], which has 3"),
            (graph(Tensor(shape: [3], floats: [1, 1, 1]), zero: nil, axis: 3), "axis 3 is out of range for rank 3"),
            (graph(Tensor(shape: [1, 3], floats: [1, 1, 1]), zero: nil), "the scale has shape [1, 3]; it must be a scalar or a vector"),
            (graph(Tensor(shape: [3], floats: [1, 1, 1]), zero: Tensor(zeros: [2], dtype: .uint8)), "the zero point has shape [2], the scale [3]; they must match"),
            (graph(Tensor(scalar: 1), zero: Tensor(shape: [], int64s: [0])), "the zero point is int64; quantizing to int8 and uint8 is supported"),
            (graph(Tensor(scalar: 0), zero: nil), "the scale is 0.0; scales must be positive and finite"),
            (graph(Tensor(shape: [3], floats: [1, -0.5, 1]), zero: nil), "scale 1 is -0.5; scales must be positive and finite"),
            (graph(Tensor(shape: [3], floats: [1, 1, .nan]), zero: nil), "scale 2 is nan; scales must be positive and finite"),
            (graph(Tensor(scalar: .infinity), zero: nil), "the scale is inf; scales must be positive and finite"),
        ]
        for (g, message) in cases {
            let error = thrownGraftError { _ = try CompiledModel(g) }
            XCTAssertTrue(error?.description.contains(message) == true, "\(error?.description ?? "no error") should say: \(message)")
            XCTAssertTrue(error?.description.contains("quant") == true, "names the node: \(error?.description ?? "")")
        }
    }
}
