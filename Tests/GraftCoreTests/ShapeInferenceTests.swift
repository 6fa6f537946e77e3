import GraftCore
import XCTest

final class ShapeInferenceTests: XCTestCase {
    let n = Dim.symbol("N")

    func fact(_ dims: [Dim], _ dtype: DType = .float32, elements: [Dim]? = nil) -> ValueFact {
        ValueFact(dtype: dtype, shape: Shape(dims), elements: elements)
    }

    func testConcatAddsTheAxisAndKeepsKnownElements() throws {
        let a = fact([.value(1)], .int64, elements: [n]), b = fact([.value(2)], .int64, elements: [.value(4), .value(-1)])
        let out = try Op.concat(axis: 0).inferOutputs([a, b])[0]
        XCTAssertEqual(out.shape, [3])
        XCTAssertEqual(out.elements, [n, .value(4), .value(-1)])
    }

    func testReshapeInfersMinusOneAroundASymbolicBatch() throws {
        let x = fact([n, .value(2048), .value(1), .value(1)])
        let target = fact([.value(2)], .int64, elements: [n, .value(-1)])
        XCTAssertEqual(try Op.reshape(allowZero: false).inferOutputs([x, target])[0].shape, Shape([n, .value(2048)]))
        let zero = fact([.value(2)], .int64, elements: [.value(0), .value(-1)])
        XCTAssertEqual(try Op.reshape(allowZero: false).inferOutputs([x, zero])[0].shape, Shape([n, .value(2048)]))
        let wrong = fact([.value(2)], .int64, elements: [.value(3), .value(1000)])
        XCTAssertThrowsError(try Op.reshape(allowZero: false).inferOutputs([fact([.value(2), .value(2048)]), wrong]))
    }

    func testConvAndPoolGeometry() throws {
        let x = fact([n, .value(3), .value(224), .value(224)]), w = fact([.value(64), .value(3), .value(7), .value(7)])
        let conv = Op.conv(ConvAttributes(window: Window(kernel: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3])))
        XCTAssertEqual(try conv.inferOutputs([x, w])[0].shape, Shape([n, .value(64), .value(112), .value(112)]))
        let pool = Op.maxPool(Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]))
        XCTAssertEqual(try pool.inferOutputs([fact([n, .value(64), .value(112), .value(112)])])[0].shape,
                       Shape([n, .value(64), .value(56), .value(56)]))
        // ceil mode: PyTorch's MaxPool2d(3, 2, ceil_mode=True) on 56 gives 28.
        let ceil = Op.maxPool(Window(kernel: [3, 3], strides: [2, 2], ceilMode: true))
        XCTAssertEqual(try ceil.inferOutputs([fact([n, .value(8), .value(56), .value(56)])])[0].shape,
                       Shape([n, .value(8), .value(28), .value(28)]))
        XCTAssertThrowsError(try conv.inferOutputs([fact([n, .value(4), .value(9), .value(9)]), w]))
    }

    /// A window wider than the padded input has no position: a 3×3 window dilated 3 (7 wide)
    /// over 4 + 2 padded pixels gives no output (ONNX Runtime refuses the input), not the one
    /// that truncating −1/2 to 0 would make up, whose window reads outside the input.
    func testAWindowWiderThanThePaddedInputHasNoOutput() throws {
        let window = Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [3, 3])
        XCTAssertEqual(window.resolve(input: [4, 4]).output, [0, 0])
        XCTAssertEqual(window.resolve(input: [5, 4]).output, [1, 0])
        var ceil = window
        ceil.ceilMode = true
        XCTAssertEqual(ceil.resolve(input: [4, 4]).output, [0, 0])
    }

    func testFlattenAndBroadcast() throws {
        XCTAssertEqual(try Op.flatten(axis: 1).inferOutputs([fact([n, .value(256), .value(1), .value(1)])])[0].shape,
                       Shape([n, .value(256)]))
        XCTAssertEqual(try Op.add.inferOutputs([fact([n, .value(4), .value(2), .value(2)]), fact([.value(4), .value(1), .value(1)])])[0].shape,
                       Shape([n, .value(4), .value(2), .value(2)]))
        XCTAssertThrowsError(try Op.add.inferOutputs([fact([.value(3)]), fact([.value(4)])]))
    }
}
