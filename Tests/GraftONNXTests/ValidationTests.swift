import GraftCore
import GraftONNX
import GraftTestSupport
import XCTest

/// ONNX models that ONNX Runtime refuses are refused at import, naming the node: each made by
/// exporting a valid graph and rewriting a name or an attribute in its bytes (same length, so
/// every enclosing length stays right).
final class ValidationTests: XCTestCase {
    let x = ValueInfo(name: "x", dtype: .float32, shape: [1, 3, 8, 8])

    func importBytes(_ bytes: [UInt8]) throws -> Graph {
        try bytes.withUnsafeBytes { try ONNXImporter.importModel(bytes: $0, directory: nil) }
    }

    func expectError(_ bytes: [UInt8], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try importBytes(bytes), file: file, line: line) { error in
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    /// `bytes` with each occurrence of `old` (all, or only the last) replaced by `new`, of the same length.
    func replacing(_ old: String, _ new: String, in bytes: [UInt8], onlyLast: Bool = false) -> [UInt8] {
        let a = Array(old.utf8), b = Array(new.utf8)
        precondition(a.count == b.count)
        var out = bytes
        var starts = (0...(bytes.count - a.count)).filter { bytes[$0..<($0 + a.count)].elementsEqual(a) }
        XCTAssertFalse(starts.isEmpty, "'\(old)' is not in the model")
        if onlyLast { starts = Array(starts.suffix(1)) }
        for s in starts { out.replaceSubrange(s..<(s + a.count), with: b) }
        return out
    }

    /// x → Relu → AAAA, x → Sigmoid → BBBB, Add(AAAA, BBBB) + CCCC → y.
    func twoBranches() throws -> [UInt8] {
        let g = Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 3, 8, 8])],
                      nodes: [Node(name: "relu", op: .relu, inputs: ["x"], outputs: ["AAAA"]),
                              Node(name: "sigmoid", op: .sigmoid, inputs: ["x"], outputs: ["BBBB"]),
                              Node(name: "add", op: .add, inputs: ["AAAA", "BBBB"], outputs: ["sum"]),
                              Node(name: "bias", op: .add, inputs: ["sum", "CCCC"], outputs: ["y"])],
                      constants: ["CCCC": Tensor(shape: [3, 1, 1], floats: [1, 2, 3])])
        let bytes = try ONNXExporter.serialize(g)
        XCTAssertNoThrow(try importBytes(bytes))
        return bytes
    }

    func testANodeOutputThatRedefinesAnInitializerIsRefused() throws {
        expectError(replacing("AAAA", "CCCC", in: try twoBranches()),
                    "node 'relu' (Relu): tensor 'CCCC': the output redefines the constant (initializer) of that name")
    }

    func testAValueProducedTwiceIsRefused() throws {
        expectError(replacing("BBBB", "AAAA", in: try twoBranches()),
                    "node 'sigmoid' (Sigmoid): tensor 'AAAA': the output is already produced by node 'relu'")
    }

    func testAnUndefinedInputIsRefused() throws {
        // The last occurrence of BBBB is the Add's input (nodes are written in order).
        expectError(replacing("BBBB", "GGGG", in: try twoBranches(), onlyLast: true),
                    "node 'add' (Add): tensor 'GGGG': the input is not produced by any node, graph input or constant")
    }

    func testAConvWhoseKernelShapeDisagreesWithItsWeightIsRefused() throws {
        let g = Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 4, 8, 8])],
                      nodes: [Node(name: "conv", op: .conv(ConvAttributes(window: Window(kernel: [3, 3], pads: [1, 1, 1, 1]))),
                                   inputs: ["x", "w"], outputs: ["y"])],
                      constants: ["w": Tensor(zeros: [4, 3, 3, 3])])
        let bytes = try ONNXExporter.serialize(g)
        XCTAssertEqual(try importBytes(bytes).nodes[0].op, g.nodes[0].op)
        // AttributeProto: name (field 1) "kernel_shape", then ints (field 8, varint key 0x40) 3 and 3.
        let attribute = Array("kernel_shape".utf8) + [0x40, 3, 0x40, 3]
        let start = try XCTUnwrap((0...(bytes.count - attribute.count)).first { bytes[$0..<($0 + attribute.count)].elementsEqual(attribute) })
        var bad = bytes
        bad[start + attribute.count - 3] = 5
        bad[start + attribute.count - 1] = 5
        expectError(bad, "node 'conv' (Conv): kernel_shape [5, 5] does not match the weight [4, 3, 3, 3]")
    }

    func testUnnamedAndRepeatedNodeNamesAreMadeUnique() throws {
        // The generated name of the unnamed Sigmoid (node 1) would be Sigmoid_1, already taken by node 0.
        let g = Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 3, 8, 8])],
                      nodes: [Node(name: "Sigmoid_1", op: .relu, inputs: ["x"], outputs: ["r"]),
                              Node(name: "", op: .sigmoid, inputs: ["r"], outputs: ["s"]),
                              Node(name: "Sigmoid_1", op: .tanh, inputs: ["s"], outputs: ["y"])])
        let imported = try importBytes(try ONNXExporter.serialize(g))
        XCTAssertEqual(imported.nodes.map(\.name), ["Sigmoid_1", "Sigmoid_1_", "Tanh_2"])
    }
}
