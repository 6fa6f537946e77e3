import GraftCore
@testable import GraftPasses
import GraftRuntime
import GraftTestSupport
import XCTest

/// The pass manager's work grows linearly with the graph: rules look at each node a bounded
/// number of times, however long the chain a run of patches rewrites.
final class PassScalingTests: XCTestCase {
    var random = SeededGenerator(seed: 3)

    /// x → Identity → … → Identity → y, `count` nodes.
    func identityChain(_ count: Int) -> Graph {
        let nodes = (0..<count).map { i in
            Node(name: "id\(i)", op: .identity, inputs: [i == 0 ? "x" : "v\(i - 1)"], outputs: [i == count - 1 ? "y" : "v\(i)"])
        }
        return Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 4])],
                     outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 4])], nodes: nodes)
    }

    /// x → (Conv 1×1 → BatchNormalization → Relu) × `count / 3`, and a constant through as many
    /// Relus added to the end: every batch norm folds into its conv, every constant Relu folds.
    func foldingChain(_ count: Int) -> Graph {
        var nodes: [Node] = [], constants: [String: Tensor] = [:]
        var value = "x"
        for i in 0..<count / 3 {
            constants["w\(i)"] = random.tensor([2, 2, 1, 1])
            for p in ["g", "b", "m"] { constants["\(p)\(i)"] = random.tensor([2]) }
            constants["v\(i)"] = Tensor(shape: [2], floats: [1, 2])
            nodes.append(Node(name: "conv\(i)", op: .conv(ConvAttributes(window: Window(kernel: [1, 1]))), inputs: [value, "w\(i)"], outputs: ["c\(i)"]))
            nodes.append(Node(name: "bn\(i)", op: .batchNorm(epsilon: 1e-5, momentum: 0.9),
                              inputs: ["c\(i)", "g\(i)", "b\(i)", "m\(i)", "v\(i)"], outputs: ["n\(i)"]))
            nodes.append(Node(name: "relu\(i)", op: .relu, inputs: ["n\(i)"], outputs: ["r\(i)"]))
            value = "r\(i)"
        }
        constants["k"] = random.tensor([2, 1, 1])
        var folded = "k"
        for i in 0..<count / 3 {
            nodes.append(Node(name: "krelu\(i)", op: .relu, inputs: [folded], outputs: ["k\(i)"]))
            folded = "k\(i)"
        }
        nodes.append(Node(name: "add", op: .add, inputs: [value, folded], outputs: ["y"]))
        return Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1, 2, 2, 2])],
                     outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1, 2, 2, 2])], nodes: nodes, constants: constants)
    }

    func testAnIdentityChainTakesLinearWork() throws {
        var visits: [Int] = []
        for count in [1_000, 10_000] {
            let (optimized, report) = try PassManager().run(identityChain(count))
            // The Identity reading the graph input and writing the graph output stays.
            XCTAssertEqual(optimized.nodes.map(\.op), [.identity])
            XCTAssertEqual(report.counts.first?.patches, count - 1)
            visits.append(report.visits)
        }
        print("identity chains of 1,000 and 10,000 nodes: \(visits) rule visits")
        let passes = PassManager.standard.count
        XCTAssertLessThanOrEqual(visits[1], 3 * passes * 10_000, "visits \(visits)")
        XCTAssertLessThanOrEqual(visits[1], 11 * visits[0], "visits \(visits)")
    }

    func testAShortFoldingChainComputesTheSame() throws {
        let g = foldingChain(30)
        let (optimized, _) = try PassManager().run(g)
        let x = random.tensor([1, 2, 2, 2])
        assertClose(try Interpreter(graph: optimized).run(["x": x])["y"]!, try Interpreter(graph: g).run(["x": x])["y"]!)
    }

    func testAFoldingChainTakesLinearWork() throws {
        var visits: [Int] = []
        for count in [999, 9_999] {
            let g = foldingChain(count)
            let (optimized, report) = try PassManager().run(g)
            XCTAssertEqual(optimized.nodes.filter { $0.op == .relu }.count, count / 3)
            XCTAssertEqual(optimized.nodes.filter { $0.op.name == "Conv" }.count, count / 3)
            XCTAssertEqual(optimized.nodes.count, 2 * (count / 3) + 1)
            XCTAssertEqual(report.counts.first { $0.pass == "batch-norm folded" }?.patches, count / 3)
            XCTAssertEqual(report.counts.first { $0.pass == "constants folded" }?.patches, count / 3)
            visits.append(report.visits)
        }
        print("folding chains of 999 and 9,999 nodes: \(visits) rule visits")
        let passes = PassManager.standard.count
        XCTAssertLessThanOrEqual(visits[1], 3 * passes * 10_000, "visits \(visits)")
        XCTAssertLessThanOrEqual(visits[1], 11 * visits[0], "visits \(visits)")
    }
}
