import GraftCore
import XCTest

/// Values a hostile model can put where sizes, axes and indices are read, handed straight to
/// shape inference and the reference evaluator (constant folding evaluates whatever a file's
/// constants say): each must be refused with its message before anything is allocated.
final class HostileValueTests: XCTestCase {
    func expectError(_ message: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertEqual((error as? GraftError)?.description, message, file: file, line: line)
        }
    }

    func ints(_ values: [Int64]) -> Tensor { Tensor(shape: [values.count], int64s: values) }

    func testSizesFromDataAreBoundedBeforeAllocation() {
        expectError("op ConstantOfShape: the output [4294967296, 4294967296] of float32 is larger than Graft's limit of 4 GiB per tensor") {
            try Op.constantOfShape(value: Tensor(shape: [1], floats: [0])).evaluate([self.ints([1 << 32, 1 << 32])])
        }
        expectError("op ConstantOfShape: the output has a negative size in [2, -3]") {
            try Op.constantOfShape(value: Tensor(shape: [1], floats: [0])).evaluate([self.ints([2, -3])])
        }
        expectError("op Pad: pads [0, 9223372036854775807, 0, 9223372036854775807] are too large") {
            try Op.pad.evaluate([Tensor(zeros: [1, 4]), self.ints([0, .max, 0, .max])])
        }
        expectError("op Pad: pads [0, -5, 0, 0] crop past the input") {
            try Op.pad.evaluate([Tensor(zeros: [1, 4]), self.ints([0, -5, 0, 0])])
        }
        expectError("op Gather: the output [2048, 1048576] of float32 is larger than Graft's limit of 4 GiB per tensor") {
            try Op.gather(axis: 0).evaluate([Tensor(zeros: [1, 1 << 20]), Tensor(zeros: [2048], dtype: .int64)])
        }
        expectError("the output [1048576, 1048576] of float32 is larger than Graft's limit of 4 GiB per tensor") {
            try Op.add.evaluate([Tensor(zeros: [1 << 20, 1]), Tensor(zeros: [1, 1 << 20])])
        }
        expectError("op Reshape: cannot reshape [1, 4] (4 elements) to [4294967296, 4294967296, 0]") {
            try Op.reshape(allowZero: true).evaluate([Tensor(zeros: [1, 4]), self.ints([1 << 32, 1 << 32, 0])])
        }
    }

    func testFloatsWhereIntegersBelongAreRefused() {
        let nan = Tensor(shape: [2], floats: [.nan, .infinity])
        expectError("op Reshape: the shape must be integers, got float32") { try Op.reshape(allowZero: false).evaluate([Tensor(zeros: [2]), nan]) }
        expectError("op Gather: the indices must be integers, got float32") { try Op.gather(axis: 0).evaluate([Tensor(zeros: [2]), nan]) }
        expectError("op Slice: starts, ends, axes and steps must be integers, got float32") { try Op.slice.evaluate([Tensor(zeros: [2]), nan, nan]) }
        expectError("op Unsqueeze: axes must be integers, got float32") { try Op.unsqueeze(axes: nil).evaluate([Tensor(zeros: [2]), nan]) }
        expectError("op Conv: expects a float32 weight, got int64") {
            try Op.conv(ConvAttributes(window: Window(kernel: [1, 1]))).evaluate([Tensor(zeros: [1, 1, 2, 2]), Tensor(zeros: [1, 1, 1, 1], dtype: .int64)])
        }
    }

    func testWindowsAndEdgeValues() throws {
        let pool = Window(kernel: [1 << 30, 1 << 30], strides: [1 << 30, 1 << 30], pads: [(1 << 30) - 1, (1 << 30) - 1, (1 << 30) - 1, (1 << 30) - 1])
        expectError("pads [1073741823, 1073741823, 1073741823, 1073741823] must be smaller than the kernel [1073741824, 1073741824] and no larger than the input [2, 2]") {
            try Op.maxPool(pool).evaluate([Tensor(zeros: [1, 1, 2, 2])])
        }
        expectError("kernel [1, 1], strides [0, 1], dilations [1, 1] must be in 1...2147483647 and pads [0, 0, 0, 0] in 0...2147483647") {
            try Op.conv(ConvAttributes(window: Window(kernel: [1, 1], strides: [0, 1]))).evaluate([Tensor(zeros: [1, 1, 2, 2]), Tensor(zeros: [1, 1, 1, 1])])
        }
        // Int64.min / -1 overflows; it must not trap.
        let divided = try Op.div.evaluate([ints([.min]), ints([-1])])[0]
        XCTAssertEqual(divided.int64s, [.min])
        // A scalar softmax is 1; a huge step takes one element.
        XCTAssertEqual(try Op.softmax(axis: -1, coerce2D: false).evaluate([Tensor(scalar: 3)])[0].floats, [1])
        let sliced = try Op.slice.evaluate([Tensor(shape: [4], floats: [1, 2, 3, 4]), ints([0]), ints([.max]), ints([0]), ints([.max])])[0]
        XCTAssertEqual(sliced.floats, [1])
    }

    func testShapeInferenceRefusesWhatWouldNotFit() throws {
        let x = ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(4)]))
        var graph = Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1])])
        graph.setConstant("pads", ints([0, 0, 0, 1 << 40]))
        graph.nodes = [Node(name: "pad", op: .pad, inputs: ["x", "pads"], outputs: ["y"])]
        expectError("node 'pad' (Pad): the output [N, 1099511627780] of float32 is larger than Graft's limit of 4 GiB per tensor") {
            try graph.inferShapes()
        }
        graph.inputs = [ValueInfo(name: "x", dtype: .float32, shape: [1 << 40, 4])]
        expectError("tensor 'x': the declared shape [1099511627776, 4] of float32 is larger than Graft's limit of 4 GiB per tensor") {
            try graph.inferShapes()
        }
    }
}
