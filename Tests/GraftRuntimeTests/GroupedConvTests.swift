import GraftCore
import GraftRuntime
import GraftTestSupport
import XCTest

/// Grouped convolutions (ResNeXt's 3×3, depthwise, narrow and wide groups) compute what the
/// reference does on both kernel sets, through the grouped kernel where it takes the group
/// shape, else the direct product's strips, else the reference evaluator.
final class GroupedChannelsLastTests: XCTestCase {
    var random = SeededGenerator(seed: 12)

    /// One grouped convolution: channels, groups, window, input size, and the kernel the plan
    /// runs with AVX-512 (16-lane vectors, 64-channel strips) and with AVX2 (8 lanes, 16).
    struct Case {
        let cin, cout, groups, kernel, stride, pad, dilation, n, h, w: Int
        let avx512, avx2: Plan.KernelChoice
    }

    /// conv (+bias) → [+ residual r] → relu; the residual where the output has the input's shape.
    func graph(_ c: Case, residual: Bool, bias: Bool) -> Graph {
        let window = Window(kernel: [c.kernel, c.kernel], strides: [c.stride, c.stride], pads: [c.pad, c.pad, c.pad, c.pad],
                            dilations: [c.dilation, c.dilation])
        let (out, _) = window.resolve(input: [c.h, c.w])
        var inputs = [ValueInfo(name: "x", dtype: .float32, shape: Shape([c.n, c.cin, c.h, c.w]))]
        var nodes = [Node(name: "conv", op: .conv(ConvAttributes(window: window, group: c.groups)), inputs: bias ? ["x", "w", "b"] : ["x", "w"],
                          outputs: ["c"])]
        var last = "c"
        if residual {
            inputs.append(ValueInfo(name: "r", dtype: .float32, shape: Shape([c.n, c.cout, out[0], out[1]])))
            nodes.append(Node(name: "add", op: .add, inputs: ["c", "r"], outputs: ["s"]))
            last = "s"
        }
        nodes.append(Node(name: "relu", op: .relu, inputs: [last], outputs: ["y"]))
        return Graph(inputs: inputs, outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([Dim]()))], nodes: nodes,
                     constants: ["w": random.tensor([c.cout, c.cin / c.groups, c.kernel, c.kernel]), "b": random.tensor([c.cout])])
    }

    func testEveryGroupWidthMatchesTheReference() throws {
        let cases = [
            // Depthwise and narrow groups (a vector holds whole groups): 1, 2, 4, 8 channels.
            Case(cin: 32, cout: 32, groups: 32, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 2, h: 7, w: 9, avx512: .grouped, avx2: .grouped),
            Case(cin: 64, cout: 64, groups: 32, kernel: 3, stride: 2, pad: 1, dilation: 1, n: 1, h: 9, w: 8, avx512: .grouped, avx2: .grouped),
            Case(cin: 128, cout: 128, groups: 32, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 1, h: 9, w: 7, avx512: .grouped, avx2: .grouped),
            Case(cin: 256, cout: 256, groups: 32, kernel: 3, stride: 2, pad: 1, dilation: 1, n: 2, h: 8, w: 8, avx512: .grouped, avx2: .grouped),
            // Groups of whole vectors: 16, 32, 64 channels (dilated, strided, 5×5, 1×1).
            Case(cin: 512, cout: 512, groups: 32, kernel: 3, stride: 1, pad: 2, dilation: 2, n: 1, h: 5, w: 5, avx512: .grouped, avx2: .grouped),
            Case(cin: 1024, cout: 1024, groups: 32, kernel: 3, stride: 2, pad: 1, dilation: 1, n: 1, h: 6, w: 6, avx512: .grouped, avx2: .grouped),
            Case(cin: 128, cout: 128, groups: 2, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 1, h: 5, w: 7, avx512: .grouped, avx2: .grouped),
            Case(cin: 32, cout: 32, groups: 16, kernel: 5, stride: 2, pad: 2, dilation: 1, n: 1, h: 9, w: 9, avx512: .grouped, avx2: .grouped),
            Case(cin: 64, cout: 64, groups: 16, kernel: 1, stride: 1, pad: 0, dilation: 1, n: 1, h: 6, w: 5, avx512: .grouped, avx2: .grouped),
            // More outputs than inputs per group (32 → 128): wide units only.
            Case(cin: 64, cout: 256, groups: 2, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 1, h: 6, w: 5, avx512: .grouped, avx2: .grouped),
            // 2 → 4 per group: not the grouped kernel's shape, but strips of whole groups.
            Case(cin: 64, cout: 128, groups: 32, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 1, h: 6, w: 6, avx512: .direct, avx2: .direct),
            // 8 channels in 3 groups (24: a whole AVX2 vector each, a third of AVX-512's) and 12
            // in 4 (neither): the reference where no kernel takes them.
            Case(cin: 24, cout: 24, groups: 3, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 1, h: 11, w: 13, avx512: .reference, avx2: .grouped),
            Case(cin: 48, cout: 48, groups: 4, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 1, h: 6, w: 6, avx512: .reference, avx2: .reference),
        ]
        for c in cases {
            let window = Window(kernel: [c.kernel, c.kernel], strides: [c.stride, c.stride], pads: [c.pad, c.pad, c.pad, c.pad],
                                dilations: [c.dilation, c.dilation])
            let out = window.resolve(input: [c.h, c.w]).output
            for (residual, bias) in [(false, true), (c.cin == c.cout, false)] {
                let g = graph(c, residual: residual, bias: bias)
                var feeds = ["x": random.tensor([c.n, c.cin, c.h, c.w])]
                if residual { feeds["r"] = random.tensor([c.n, c.cout, out[0], out[1]]) }
                let reference = try referenceRun(g, feeds)["y"]!
                let scale = reference.floats.map(abs).max()!
                try eachKernel {
                    let label = "\(c.cin)→\(c.cout) in \(c.groups) groups, \(c.kernel)×\(c.kernel) stride \(c.stride) dilation \(c.dilation), "
                        + "residual \(residual) [\(MicroKernel.active)]"
                    let interpreter = try Interpreter(graph: g)
                    XCTAssertEqual(interpreter.plan.steps[0].kernelChoice, MicroKernel.active == .avx512 ? c.avx512 : c.avx2, label)
                    if residual && interpreter.plan.steps[0].kernelChoice != .reference {
                        XCTAssertEqual(interpreter.plan.steps[0].epilogue?.residual, "r", label)
                    }
                    let fast = try interpreter.run(feeds)["y"]!
                    assertClose(fast, reference, atol: 2e-6 * scale, rtol: 1e-4, label)
                }
            }
        }
    }

    func testEveryThreadCountGivesTheSameResult() throws {
        // ResNeXt's layer2 shape at an odd size: tiles split over 1 to 5 threads, and a last
        // partial panel of pixels.
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let c = Case(cin: 256, cout: 256, groups: 32, kernel: 3, stride: 1, pad: 1, dilation: 1, n: 1, h: 13, w: 11, avx512: .grouped, avx2: .grouped)
        let g = graph(c, residual: false, bias: true)
        let feeds = ["x": random.tensor([c.n, c.cin, c.h, c.w])]
        let reference = try referenceRun(g, feeds)["y"]!
        for threads in [1, 2, 3, 5] {
            Parallel.threads = threads
            try eachKernel {
                let fast = try Interpreter(graph: g).run(feeds)["y"]!
                assertClose(fast, reference, atol: 2e-6 * reference.floats.map(abs).max()!, rtol: 1e-4, "\(threads) threads [\(MicroKernel.active)]")
            }
        }
    }
}
