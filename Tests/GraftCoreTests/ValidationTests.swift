import Glibc
import GraftCore
import XCTest

/// Every check of `Graph.validate()`, each with the one line it prints.
final class ValidationTests: XCTestCase {
    let image = ValueInfo(name: "x", dtype: .float32, shape: [1, 4, 8, 8])

    func expectError(_ graph: Graph, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try graph.validate(), file: file, line: line) { error in
            XCTAssertEqual((error as? GraftError)?.kind, .badInput, file: file, line: line)
            XCTAssertEqual("\(error)", message, file: file, line: line)
        }
    }

    /// x → Relu → r → Add(r, bias) → y, valid.
    func chain() -> Graph {
        Graph(inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 4, 8, 8])],
              nodes: [Node(name: "relu", op: .relu, inputs: ["x"], outputs: ["r"]),
                      Node(name: "add", op: .add, inputs: ["r", "bias"], outputs: ["y"])],
              constants: ["bias": Tensor(shape: [4, 1, 1], floats: [1, 2, 3, 4])])
    }

    /// x → Conv(w, b) → y with a 3×3 kernel, valid.
    func conv(weight: [Int] = [6, 4, 3, 3], kernel: [Int] = [3, 3], group: Int = 1, pads: [Int] = [1, 1, 1, 1]) -> Graph {
        Graph(inputs: [image], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 6, 8, 8])],
              nodes: [Node(name: "conv", op: .conv(ConvAttributes(window: Window(kernel: kernel, pads: pads), group: group)),
                           inputs: ["x", "w"], outputs: ["y"])],
              constants: ["w": Tensor(zeros: weight)])
    }

    func testValidGraphsPassAndGiveTheirFacts() throws {
        XCTAssertEqual(try chain().validate()["y"]?.shape, [1, 4, 8, 8])
        XCTAssertEqual(try conv().validate()["y"]?.shape, [1, 6, 8, 8])
        XCTAssertEqual(try conv(weight: [6, 2, 3, 3], group: 2).validate()["y"]?.shape, [1, 6, 8, 8])
    }

    func testAValueIsProducedOnce() {
        var twice = chain()
        twice.nodes.insert(Node(name: "relu2", op: .relu, inputs: ["x"], outputs: ["r"]), at: 1)
        expectError(twice, "node 'relu2' (Relu): tensor 'r': the output is already produced by node 'relu'")

        var initializer = chain()
        initializer.nodes[0].outputs = ["bias"]
        initializer.nodes[1].inputs = ["bias", "bias"]
        expectError(initializer, "node 'relu' (Relu): tensor 'bias': the output redefines the constant (initializer) of that name")

        var input = chain()
        input.nodes[1].outputs = ["x"]
        input.outputs[0].name = "x"
        expectError(input, "node 'add' (Add): tensor 'x': the output redefines the graph input of that name")
    }

    func testEveryInputIsProducedAndThereIsNoCycle() {
        var undefined = chain()
        undefined.nodes[1].inputs = ["r", "ghost"]
        expectError(undefined, "node 'add' (Add): tensor 'ghost': the input is not produced by any node, graph input or constant")

        var cycle = chain()
        cycle.nodes[0].inputs = ["y"]
        expectError(cycle, "node 'relu' (Relu): the graph has a cycle through this node")

        // An empty name is an absent optional input.
        var optional = conv()
        optional.nodes[0].inputs = ["x", "w", ""]
        XCTAssertNoThrow(try optional.validate())
    }

    func testDeclarationsAndNames() {
        var inputTwice = chain()
        inputTwice.inputs.append(image)
        expectError(inputTwice, "tensor 'x': the graph input is declared twice")

        var inputIsConstant = chain()
        inputIsConstant.inputs.append(ValueInfo(name: "bias", dtype: .float32, shape: [4, 1, 1]))
        expectError(inputIsConstant, "tensor 'bias': the graph input is also a constant (initializer)")

        var outputTwice = chain()
        outputTwice.outputs.append(outputTwice.outputs[0])
        expectError(outputTwice, "tensor 'y': the graph output is declared twice")

        var unproduced = chain()
        unproduced.outputs.append(ValueInfo(name: "z", dtype: .float32, shape: [1]))
        expectError(unproduced, "tensor 'z': the graph output is not produced by any node, graph input or constant")

        var sameName = chain()
        sameName.nodes[1].name = "relu"
        expectError(sameName, "node 'relu' (Add): another node has the same name")
    }

    func testInputAndOutputCounts() {
        var extraInput = chain()
        extraInput.nodes[0].inputs = ["x", "bias"]
        expectError(extraInput, "node 'relu' (Relu): takes 1 input, got 2")

        var missingInput = chain()
        missingInput.nodes[1].inputs = ["r"]
        expectError(missingInput, "node 'add' (Add): takes 2 inputs, got 1")

        var extraOutput = conv()
        extraOutput.nodes[0].outputs = ["y", "mask"]
        expectError(extraOutput, "node 'conv' (Conv): writes 1 output, got 2")

        var convInputs = conv()
        convInputs.nodes[0].inputs = ["x", "w", "", "w"]
        expectError(convInputs, "node 'conv' (Conv): takes 2 to 3 inputs, got 4")
    }

    func testConvAttributesFitTheWeight() {
        expectError(conv(weight: [6, 4, 5, 5]), "node 'conv' (Conv): kernel_shape [3, 3] does not match the weight [6, 4, 5, 5]")
        expectError(conv(weight: [6, 1, 3, 3], group: 4), "node 'conv' (Conv): group 4 does not divide the 6 output channels of the weight [6, 1, 3, 3]")
        expectError(conv(weight: [6, 2, 3, 3], group: 3), "node 'conv' (Conv): input has 4 channels; the weight [6, 2, 3, 3] with group 3 expects 6")
        expectError(conv(group: 0), "node 'conv' (Conv): group 0 is not positive")
        expectError(conv(pads: [1, -1, 1, 1]),
                    "node 'conv' (Conv): kernel [3, 3], strides [1, 1], dilations [1, 1] must be in 1...2147483647 and pads [1, -1, 1, 1] in 0...2147483647")
        expectError(conv(pads: [1, 1]),
                    "node 'conv' (Conv): kernel [3, 3], strides [1, 1], pads [1, 1], dilations [1, 1] are not 2-D; only 2-D windows are supported")
    }

    func testBatchNormGemmAndAxesAttributes() {
        var batchNorm = chain()
        batchNorm.nodes[1] = Node(name: "bn", op: .batchNorm(epsilon: 1e-5, momentum: 0.9), inputs: ["r", "g", "b", "m", "v"], outputs: ["y"])
        for name in ["g", "b", "m", "v"] { batchNorm.setConstant(name, Tensor(zeros: [4])) }
        XCTAssertNoThrow(try batchNorm.validate())
        batchNorm.setConstant("m", Tensor(zeros: [3]))
        expectError(batchNorm, "node 'bn' (BatchNormalization): parameter 3 has shape [3]; the input [1, 4, 8, 8] has 4 channels")

        let flat = ValueInfo(name: "x", dtype: .float32, shape: [1, 4])
        let gemm = Graph(inputs: [flat], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 2])],
                         nodes: [Node(name: "fc", op: .gemm(GemmAttributes(transB: true)), inputs: ["x", "w"], outputs: ["y"])],
                         constants: ["w": Tensor(zeros: [2, 4, 1])])
        expectError(gemm, "node 'fc' (Gemm): expects 2-D operands, got [1, 4] and [2, 4, 1]")

        let flatten = Graph(inputs: [flat], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 4])],
                            nodes: [Node(name: "flatten", op: .flatten(axis: 3), inputs: ["x"], outputs: ["y"])])
        expectError(flatten, "node 'flatten' (Flatten): axis 3 is out of range for [1, 4]")

        let reshape = Graph(inputs: [flat], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [3])],
                            nodes: [Node(name: "reshape", op: .reshape(allowZero: false), inputs: ["x", "shape"], outputs: ["y"])],
                            constants: ["shape": Tensor(shape: [1], int64s: [3])])
        expectError(reshape, "node 'reshape' (Reshape): cannot reshape [1, 4] (4 elements) to [3]")

        let softmax = Graph(inputs: [flat], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 4])],
                            nodes: [Node(name: "softmax", op: .softmax(axis: -3, coerce2D: false), inputs: ["x"], outputs: ["y"])])
        expectError(softmax, "node 'softmax' (Softmax): axis -3 is out of range for rank 2")
    }

    /// Address space that is never touched (so never backed by memory): room for a constant
    /// too large to allocate, whose shape alone validation reads.
    final class Reservation {
        let bytes: UnsafeMutableRawPointer
        let count: Int

        init?(_ count: Int) {
            guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), p != MAP_FAILED else { return nil }
            bytes = p
            self.count = count
        }

        deinit { munmap(bytes, count) }
    }

    func testConstantSizesAreBounded() throws {
        let count = 1 << 31
        let reservation = try XCTUnwrap(Reservation(count))
        let storage = TensorStorage(borrowing: reservation.bytes, byteCount: count, owner: reservation)
        var graph = chain()
        graph.setConstant("mask", Tensor(dtype: .bool, shape: [count], storage: storage))
        expectError(graph, "tensor 'mask': the constant [2147483648] has more elements than Graft's limit of 2³¹ − 1 per tensor")
    }

    func testSizesAreBounded() {
        // 2³¹ bools take 2 GiB, under the byte limit, but have more elements than 32-bit indices reach.
        let huge = Graph(inputs: [ValueInfo(name: "x", dtype: .bool, shape: [1 << 31])],
                         outputs: [ValueInfo(name: "x", dtype: .bool, shape: [1 << 31])])
        expectError(huge, "tensor 'x': the declared shape [2147483648] has more elements than Graft's limit of 2³¹ − 1 per tensor")

        let shape = Graph(inputs: [], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1 << 20, 1 << 20])],
                          nodes: [Node(name: "fill", op: .constantOfShape(value: Tensor(shape: [1], floats: [0])), inputs: ["s"], outputs: ["y"])],
                          constants: ["s": Tensor(shape: [2], int64s: [1 << 20, 1 << 20])])
        expectError(shape, "node 'fill' (ConstantOfShape): the output [1048576, 1048576] of float32 is larger than Graft's limit of 4 GiB per tensor")

        let overflow = Graph(inputs: [], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1])],
                             nodes: [Node(name: "fill", op: .constantOfShape(value: Tensor(shape: [1], floats: [0])), inputs: ["s"], outputs: ["y"])],
                             constants: ["s": Tensor(shape: [3], int64s: [1 << 40, 1 << 40, 1 << 40])])
        expectError(overflow, "node 'fill' (ConstantOfShape): the output [1099511627776, 1099511627776, 1099511627776] of float32 is larger than Graft's limit of 4 GiB per tensor")
    }
}
