import GraftCore
import GraftRuntime
import GraftTestSupport
import XCTest

/// The channels-last path (direct convolutions, Winograd's F(2×2, 3×3), the pools that read
/// their outputs and the layout changes between them) computes what the reference does.
final class ChannelsLastTests: XCTestCase {
    var random = SeededGenerator(seed: 11)

    /// conv 3×3 (+bias, relu) → conv 3×3 + residual x → relu → max pool → global average pool,
    /// with `c` channels: Winograd's method runs wherever there are 16·k channels and enough tiles.
    /// Fixed `h`×`w` lets the planner fuse the residual add; nil leaves the sizes symbolic.
    func chain(channels c: Int, pool: Bool, size: (Int, Int)? = nil) -> Graph {
        let window3 = Window(kernel: [3, 3], pads: [1, 1, 1, 1])
        var nodes = [Node(name: "a", op: .conv(ConvAttributes(window: window3)), inputs: ["x", "wa", "ba"], outputs: ["ya"]),
                     Node(name: "ra", op: .relu, inputs: ["ya"], outputs: ["za"]),
                     Node(name: "b", op: .conv(ConvAttributes(window: window3)), inputs: ["za", "wb"], outputs: ["yb"]),
                     Node(name: "add", op: .add, inputs: ["yb", "x"], outputs: ["s"]),
                     Node(name: "relu", op: .relu, inputs: ["s"], outputs: ["r"])]
        let out: String
        if pool {
            nodes.append(Node(name: "pool", op: .maxPool(Window(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1])), inputs: ["r"], outputs: ["p"]))
            nodes.append(Node(name: "gap", op: .globalAveragePool, inputs: ["p"], outputs: ["y"]))
            out = "y"
        } else {
            out = "r"
        }
        let (h, w): (Dim, Dim) = size.map { (.value($0.0), .value($0.1)) } ?? (.symbol("H"), .symbol("W"))
        return Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(c), h, w]))],
                     outputs: [ValueInfo(name: out, dtype: .float32, shape: Shape([Dim]()))],
                     nodes: nodes,
                     constants: ["wa": random.tensor([c, c, 3, 3]), "ba": random.tensor([c]), "wb": random.tensor([c, c, 3, 3])])
    }

    func testWinogradAndDirectConvolutionsMatchTheReference() throws {
        // (channels, batch, h, w): 16·k channels take Winograd's method when the tiles are ≥ 16
        // (14×14: 49; 9×7 at batch 3: 60 with odd sizes; 7×7: 16), the direct product below that
        // (5×7 at batch 1: 12 tiles) and for other channel counts (20, 70: a partial strip of outputs).
        let cases = [(16, 1, 14, 14), (32, 3, 9, 7), (48, 1, 7, 7), (48, 1, 5, 7), (64, 2, 8, 6), (20, 1, 10, 10), (70, 2, 5, 9), (80, 1, 13, 11)]
        for (c, n, h, w) in cases {
            for pool in [false, true] {
                let g = chain(channels: c, pool: pool, size: (h, w))
                let x = random.tensor([n, c, h, w])
                let name = pool ? "y" : "r"
                let reference = try referenceRun(g, ["x": x])[name]!
                let scale = reference.floats.map(abs).max()!
                try eachKernel {
                    let fast = try Interpreter(graph: g).run(["x": x])[name]!
                    XCTAssertEqual(fast.shape, reference.shape)
                    assertClose(fast, reference, atol: 2e-6 * scale, rtol: 1e-4, "c\(c) n\(n) \(h)x\(w) pool \(pool) [\(MicroKernel.active)]")
                }
            }
        }
    }

    func testOneInterpreterRunsSeveralSizes() throws {
        // The plan is made once; each run picks the method for its size and its borders.
        let g = chain(channels: 32, pool: true)
        let interpreter = try Interpreter(graph: g)
        for (n, h, w) in [(1, 7, 7), (2, 12, 12), (1, 5, 8), (1, 7, 7)] {
            let x = random.tensor([n, 32, h, w])
            let reference = try referenceRun(g, ["x": x])["y"]!
            let fast = try interpreter.run(["x": x])["y"]!
            assertClose(fast, reference, atol: 2e-6 * reference.floats.map(abs).max()!, rtol: 1e-4, "n\(n) \(h)x\(w)")
        }
    }

    func testEveryThreadCountGivesTheSameResult() throws {
        // The worker pool is remade when the count changes; each count splits the tiles its way.
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        // 48 channels at 15×13: one Winograd block shared by the threads; 64 at 48×48: 576
        // tiles in 3 or more blocks, each thread running whole ones.
        for (c, n, h, w) in [(48, 2, 15, 13), (64, 1, 48, 48)] {
            let g = chain(channels: c, pool: true, size: (h, w))
            let x = random.tensor([n, c, h, w])
            let reference = try referenceRun(g, ["x": x])["y"]!
            for threads in [1, 2, 3, 2, 5, 1] {
                Parallel.threads = threads
                let fast = try Interpreter(graph: g).run(["x": x])["y"]!
                assertClose(fast, reference, atol: 2e-6 * reference.floats.map(abs).max()!, rtol: 1e-4, "c\(c) \(h)x\(w), \(threads) threads")
            }
        }
    }

    func testMaxPoolOverChannelsLastPropagatesNaN() throws {
        // A NaN inside a window makes that output NaN, as in PyTorch and the reference. The 1×1
        // convolution (identity weights) spreads the NaN to every channel of its pixel (0·NaN).
        let window = Window(kernel: [1, 1])
        let g = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: Shape([1, 16, 4, 4]))],
                      outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([1, 16, 2, 2]))],
                      nodes: [Node(name: "c", op: .conv(ConvAttributes(window: window)), inputs: ["x", "w"], outputs: ["h"]),
                              Node(name: "p", op: .maxPool(Window(kernel: [2, 2], strides: [2, 2])), inputs: ["h"], outputs: ["y"])],
                      constants: ["w": Tensor(shape: [16, 16, 1, 1], floats: (0..<256).map { $0 % 17 == 0 ? 1 : 0 })])
        var values = random.tensor([1, 16, 4, 4]).floats
        values[5] = .nan  // channel 0, pixel (1, 1): window (0, 0)
        let x = Tensor(shape: [1, 16, 4, 4], floats: values)
        let fast = try Interpreter(graph: g).run(["x": x])["y"]!.floats
        let reference = try referenceRun(g, ["x": x])["y"]!.floats
        for (i, (f, r)) in zip(fast, reference).enumerated() {
            // Output (0, 0) of every channel reads pixel (1, 1).
            XCTAssertEqual(f.isNaN, i % 4 == 0, "output \(i)")
            XCTAssertEqual(r.isNaN, i % 4 == 0, "reference output \(i)")
            if !f.isNaN { XCTAssertEqual(f, r, "output \(i)") }
        }
    }
}
