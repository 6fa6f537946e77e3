import Foundation
import GraftCore
import GraftONNX
import GraftPasses
import GraftRuntime
import GraftTestSupport
import XCTest

/// The planner's decisions, read from the plan without running it, on torchvision's ResNet-50
/// as the passes leave it (batch norm folded into the convolutions).
final class PlanTests: XCTestCase {
    static func resnet50() throws -> Graph {
        let graph = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        return try PassManager().run(graph).0
    }

    func testResNet50AtBatch1() throws {
        let graph = try Self.resnet50()
        let plan = try Planner.plan(graph)
        XCTAssertEqual(plan.plannedBatch, 1)
        let convolutions = plan.steps.filter { graph.nodes[$0.node].op.name == "Conv" }
        // The first block of each layer sums its downsampling shortcut's products into its last
        // 1×1 convolution's (one step for conv3, the downsample, the Add and the ReLU); the 12
        // other blocks' last convolution takes the shortcut and the ReLU into its epilogue.
        let summed = convolutions.filter { $0.summed != nil }
        XCTAssertEqual(convolutions.count, 53 - 4)
        XCTAssertEqual(summed.map { graph.nodes[$0.summed!.node].scope?.path ?? "" }, (1...4).map { "layer\($0).0.downsample.0" })
        XCTAssertTrue(summed.allSatisfy { $0.nodes.count == 4 && $0.epilogue?.residual == nil && $0.kernelChoice == .direct }, "Conv, Conv, Add, Relu")
        XCTAssertEqual(convolutions.filter { $0.epilogue?.residual != nil }.count, 12)
        XCTAssertTrue(convolutions.filter { $0.epilogue?.residual != nil }.allSatisfy { $0.epilogue?.activation == .relu && $0.nodes.count == 3 })
        // Batch norm folded: every convolution has a bias; every step ends in a ReLU (the
        // blocks' last convolutions after adding the shortcut).
        XCTAssertTrue(convolutions.allSatisfy { $0.epilogue?.bias == true })
        XCTAssertTrue(convolutions.allSatisfy { $0.epilogue?.activation == .relu })
        // Winograd runs the 3×3 convolutions of stride 1 where 2×2 tiles are many enough:
        // layer1 (56×56, 3 blocks), layer2 (28×28, blocks 1–3), layer3 (14×14, blocks 1–5),
        // layer4 (7×7: 16 tiles at batch 1, blocks 1–2); not the stride-2 first blocks of layer2–4.
        let winograd = convolutions.filter { $0.kernelChoice == .winograd }
        let scopes = winograd.map { graph.nodes[$0.node].scope?.path ?? graph.nodes[$0.node].name }
        XCTAssertEqual(scopes.count, 13, "\(scopes)")
        for stage in ["layer1": 3, "layer2": 3, "layer3": 5, "layer4": 2] {
            XCTAssertEqual(scopes.filter { $0.contains(stage.key) }.count, stage.value, stage.key)
        }
        XCTAssertTrue(winograd.allSatisfy { $0.reason.contains("Winograd F(2×2, 3×3)") })
        XCTAssertEqual(convolutions.filter { $0.kernelChoice == .direct }.count, 53 - 4 - 13)
        XCTAssertTrue(plan.steps.allSatisfy { $0.precision == .f32 })
        // The classifier is a dense product; the pools read channels-last values.
        XCTAssertEqual(plan.steps.filter { $0.kernelChoice == .dense }.count, 1)
        XCTAssertEqual(plan.steps.filter { $0.kernelChoice == .maxPool }.count, 1)
        XCTAssertEqual(plan.steps.filter { $0.kernelChoice == .globalAveragePool }.count, 1)
        // Convolution outputs are channels-last; the graph's output is NCHW.
        XCTAssertTrue(convolutions.allSatisfy { if case .channelsLast = plan.layout(of: $0.output) { return true } else { return false } })
        XCTAssertEqual(plan.layout(of: graph.outputs[0].name), .nchw)
    }

    /// Below a 7×7 image's 16 tiles Winograd's larger weights do not pay: at 160×160 layer4's
    /// 3×3 run on 5×5 (9 tiles) and stay direct products, saying why; layer3's 10×10 (25 tiles)
    /// take the method.
    func testWinogradNeedsSixteenTiles() throws {
        var graph = try Self.resnet50()
        graph.inputs[0] = ValueInfo(name: graph.inputs[0].name, dtype: .float32, shape: [1, 3, 160, 160])
        let plan = try Planner.plan(graph)
        let convolutions = plan.steps.filter { graph.nodes[$0.node].op.name == "Conv" }
        let scope = { (step: Plan.Step) in graph.nodes[step.node].scope?.path ?? graph.nodes[step.node].name }
        let layer4 = try XCTUnwrap(convolutions.first { scope($0).contains("layer4.1") && scope($0).contains("conv2") })
        XCTAssertEqual(layer4.kernelChoice, .direct)
        XCTAssertTrue(layer4.reason.contains("too few 2×2 tiles"), layer4.reason)
        XCTAssertEqual(convolutions.filter { $0.kernelChoice == .winograd && scope($0).contains("layer3") }.count, 5)
    }

    /// At bf16 every convolution and the classifier compute in bf16, with Winograd's method
    /// where f32 uses it and the shortcuts' products summed as in f32; the pools and everything else stay f32. The ResNet-50 at bf16 classifies as
    /// at f32 and its logits stay within bf16's rounding of them.
    func testResNet50AtBF16() throws {
        try XCTSkipUnless(MicroKernel.supportsBF16, "the processor lacks AVX512_BF16")
        let graph = try Self.resnet50()
        let plan = try Planner.plan(graph, options: Planner.Options(precision: .bf16))
        let convolutions = plan.steps.filter { graph.nodes[$0.node].op.name == "Conv" }
        XCTAssertEqual(convolutions.count, 53 - 4)
        XCTAssertEqual(convolutions.filter { $0.summed != nil }.count, 4)
        XCTAssertTrue(convolutions.allSatisfy { $0.precision == .bf16 && $0.reason.hasPrefix("bf16: ") })
        let winograd = convolutions.filter { $0.kernelChoice == .winograd }
        let scopes = winograd.map { graph.nodes[$0.node].scope?.path ?? graph.nodes[$0.node].name }
        XCTAssertEqual(scopes.count, 13, "\(scopes)")
        XCTAssertEqual(scopes.filter { $0.contains("layer4") }.count, 2)
        XCTAssertEqual(plan.steps.filter { $0.kernelChoice == .dense && $0.precision == .bf16 }.count, 1)
        XCTAssertTrue(plan.steps.filter { $0.kernelChoice == .maxPool || $0.kernelChoice == .reference || $0.kernelChoice == .globalAveragePool }
            .allSatisfy { $0.precision == .f32 })
        // What only bf16 products (and max pools of it) read stays bfloat16 between them: every
        // convolution's output but the last block's (the average pool reads it), Winograd's
        // inputs and outputs included; and the stem's, max-pooled into bfloat16 too.
        let halves = convolutions.filter { if case .bfloat16 = plan.layout(of: $0.output) { return true } else { return false } }
        XCTAssertEqual(halves.count, 49 - 1)
        XCTAssertEqual(halves.filter { $0.kernelChoice == .winograd }.count, 13)
        XCTAssertEqual(halves.filter { $0.summed != nil || $0.epilogue?.residual != nil }.count, 15)
        let pool = try XCTUnwrap(plan.steps.first { $0.kernelChoice == .maxPool })
        XCTAssertEqual(plan.layout(of: pool.output), .bfloat16(border: 0))
        XCTAssertEqual(plan.layout(of: pool.input!), .bfloat16(border: 0))
        // The image itself, which only the stem reads, with the stem's pad.
        XCTAssertEqual(plan.layout(of: graph.inputs[0].name), .bfloat16(border: 3))
        let pooled = try XCTUnwrap(plan.steps.first { $0.kernelChoice == .globalAveragePool }?.input)
        XCTAssertEqual(plan.layout(of: pooled), .channelsLast(border: 0))
        // At batch 2 too (layer4's Winograd on 32 tiles), bfloat16 inputs and outputs included.
        let x = try NPY.read(try Fixtures.materialized("resnet50/input_b2.npy"))
        let f32 = try CompiledModel(graph, optimize: false).run(x)
        let bf16 = try CompiledModel(graph, optimize: false, precision: .bf16).run(x)
        // Measured: max |Δ| 0.11 on logits up to 22 (batch 1); bf16 keeps 8 significant bits.
        assertClose(bf16, f32, atol: 0.02 * f32.floats.map(abs).max()!, rtol: 0, "bf16 against f32")
        let top = { (t: Tensor) in (0..<2).map { i in (0..<1000).max { t.floats[i * 1000 + $0] < t.floats[i * 1000 + $1] }! } }
        XCTAssertEqual(top(bf16), top(f32))
    }

    /// At int8, ONNX Runtime's QDQ ResNet-50 (`quantize_static`: u8 activations, s8 weights per
    /// channel) runs every convolution and the classifier as one int8 step each, with the
    /// output's QuantizeLinear → DequantizeLinear in its epilogue (and for the blocks' last
    /// convolutions the shortcut's Add and its pair); the pairs that only fed convolutions are
    /// gone from the plan. It classifies as the model's own f32 arithmetic does, within a few
    /// steps of the output's grid.
    func testResNet50QDQAtInt8() throws {
        try XCTSkipUnless(MicroKernel.supportsVNNI, "the processor lacks AVX512_VNNI")
        let imported = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50_int8/resnet50_int8_qdq.onnx"))
        let graph = try PassManager().run(imported).0
        let plan = try Planner.plan(graph, options: Planner.Options(precision: .int8))
        let convolutions = plan.steps.filter { graph.nodes[$0.node].op.name == "Conv" }
        XCTAssertEqual(convolutions.count, 53)
        XCTAssertTrue(convolutions.allSatisfy { $0.precision == .int8 && $0.reason.hasPrefix("int8: u8 activations") && $0.epilogue?.quantizeBefore != nil },
                      "\(convolutions.filter { $0.precision != .int8 }.map(\.reason))")
        let residual = convolutions.filter { $0.epilogue?.residual != nil }
        XCTAssertEqual(residual.count, 16)
        XCTAssertTrue(residual.allSatisfy { $0.epilogue?.quantizeAfter != nil && $0.nodes.count == 6 }, "Conv, Q, DQ, Add, Q, DQ")
        let dense = try XCTUnwrap(plan.steps.first { $0.kernelChoice == .dense })
        XCTAssertEqual(dense.precision, .int8)
        // What is left of the pairs: the pooled features' (Flatten reads them); the stem's and
        // the max pool's feed only convolutions, which quantize what they read.
        let pairs = plan.steps.filter { ["QuantizeLinear", "DequantizeLinear"].contains(graph.nodes[$0.node].op.name) }
        XCTAssertEqual(pairs.count, 2, "\(pairs.map { graph.nodes[$0.node].name })")
        XCTAssertTrue(plan.steps.filter { $0.precision == .int8 }.count == 54)
        // Between int8 steps activations are bytes: every convolution's output but the last
        // block's (the average pool reads floats), and the max pool's (of the stem's bytes).
        let bytes = plan.steps.filter { if case .quantized = plan.layout(of: $0.output) { return true } else { return false } }
        XCTAssertEqual(bytes.count, 53)
        XCTAssertEqual(bytes.filter { $0.kernelChoice == .maxPool }.count, 1)
        XCTAssertEqual(convolutions.filter { bytes.map(\.output).contains($0.output) }.count, 52)

        let x = try NPY.read(try Fixtures.materialized("resnet50/input_b2.npy"))
        let f32 = try CompiledModel(graph, optimize: false).run(x)
        let int8 = try CompiledModel(graph, optimize: false, precision: .int8).run(x)
        let top = { (t: Tensor) in (0..<2).map { i in (0..<1000).max { t.floats[i * 1000 + $0] < t.floats[i * 1000 + $1] }! } }
        XCTAssertEqual(top(int8), top(f32))
        // The output's grid: its DequantizeLinear's scale. Sums that land within rounding of
        // half a step round either way, and a flip in one layer moves the next ones' inputs.
        let step = try XCTUnwrap(graph.constants[graph.nodes.last { $0.outputs.contains(graph.outputs[0].name) }!.inputs[1]]).floats[0]
        let worst = zip(int8.floats, f32.floats).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 8 * step, "max |Δ| \(worst), the output's step \(step)")
    }

    /// A batch runs a cache's worth of images at a time: the sub-batch is the largest divisor of
    /// the batch whose arena fits the budget, and the outputs are those of running each sub-batch
    /// alone, stacked. A graph that mixes the items of a batch (a Reshape of a computed shape) or
    /// has a fixed batch is never split.
    func testBatchesRunInSubBatchesThatFitTheCache() throws {
        let graph = try Self.resnet50()
        let plan = try Planner.plan(graph)
        XCTAssertTrue(plan.splitsBatch)
        let (one, two, four) = (plan.arena(batch: 1).byteCount, plan.arena(batch: 2).byteCount, plan.arena(batch: 4).byteCount)
        XCTAssertEqual(plan.subBatch(for: 4, budget: four), 4)
        XCTAssertEqual(plan.subBatch(for: 4, budget: four - 1), 2)
        XCTAssertEqual(plan.subBatch(for: 4, budget: two - 1), 1)
        XCTAssertEqual(plan.subBatch(for: 6, budget: two), 2)
        XCTAssertEqual(plan.subBatch(for: 3, budget: two), 1, "3 has no divisor between 1 and itself")
        XCTAssertEqual(plan.subBatch(for: 1, budget: one - 1), 1)

        var random = SeededGenerator(seed: 4)
        let x = random.tensor([4, 3, 224, 224])
        let chunk = plan.subBatch(for: 4)
        let model = try CompiledModel(graph, optimize: false)
        let whole = try model.run(x)
        var stacked: [Float] = []
        for start in stride(from: 0, to: 4, by: chunk) {
            let items = Tensor(shape: [chunk, 3, 224, 224], floats: Array(x.floats[start * 3 * 224 * 224..<(start + chunk) * 3 * 224 * 224]))
            stacked += try model.run(items).floats
        }
        XCTAssertEqual(whole.shape, [4, 1000])
        XCTAssertEqual(whole.floats, stacked, "sub-batches of \(chunk)")
        // A profile counts the batch as one run: its steps' work is the whole batch's, however
        // many sub-batches ran it.
        var profile: Profile? = Profile(), single: Profile? = Profile()
        _ = try model.run([graph.inputs[0].name: x], profile: &profile)
        _ = try model.run([graph.inputs[0].name: Tensor(shape: [1, 3, 224, 224], floats: Array(x.floats[0..<3 * 224 * 224]))], profile: &single)
        XCTAssertEqual(profile?.runs, 1)
        XCTAssertEqual(try XCTUnwrap(profile?.steps.first).flops, 4 * (try XCTUnwrap(single?.steps.first).flops), "sub-batches of \(chunk)")

        let x4 = ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(4)]))
        let reshape = Graph(inputs: [x4], outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.value(-1)]))],
                            nodes: [Node(name: "flat", op: .reshape(allowZero: false), inputs: ["x", "shape"], outputs: ["y"])],
                            constants: ["shape": Tensor(shape: [1], int64s: [-1])])
        XCTAssertFalse(try Planner.plan(reshape).splitsBatch)
        let fixed = ValueInfo(name: "x", dtype: .float32, shape: [8, 4])
        let relu = Graph(inputs: [fixed], outputs: [ValueInfo(name: "y", dtype: .float32, shape: [8, 4])],
                         nodes: [Node(name: "relu", op: .relu, inputs: ["x"], outputs: ["y"])], constants: [:])
        XCTAssertFalse(try Planner.plan(relu).splitsBatch)
        // A constant added to every item broadcasts (one row, or fewer dimensions); one with a
        // row per item of a batch of 8 ties the items to their places.
        for (shape, splits) in [([4], true), ([1, 4], true), ([8, 4], false)] {
            let add = Graph(inputs: [x4], outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(4)]))],
                            nodes: [Node(name: "add", op: .add, inputs: ["x", "c"], outputs: ["y"])],
                            constants: ["c": Tensor(shape: shape, floats: [Float](repeating: 1, count: shape.reduce(1, *)))])
            XCTAssertEqual(try Planner.plan(add).splitsBatch, splits, "a constant of \(shape)")
        }
    }

    /// At int8 the passes leave a quantized model's weights as their integers behind their
    /// `DequantizeLinear`, and the planner takes them as they are: ResNet-50's compiled graph
    /// holds no float copy of its convolutions' weights (at f32 it folds all 53); and a
    /// convolution whose weights' scales are not their largest magnitude over 127 (from the
    /// floats alone, such weights were not taken for 8-bit ones) runs in int8, to the model's
    /// own arithmetic within a step of its output's grid.
    func testInt8TakesTheWeightsIntegersAsTheyAre() throws {
        try XCTSkipUnless(MicroKernel.supportsVNNI, "the processor lacks AVX512_VNNI")
        let imported = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50_int8/resnet50_int8_qdq.onnx"))
        let floatWeights = { (g: Graph) in g.constants.values.filter { $0.dtype == .float32 && $0.rank == 4 }.count }
        let int8Model = try CompiledModel(imported, precision: .int8)
        XCTAssertEqual(floatWeights(int8Model.graph), 0)
        XCTAssertTrue(int8Model.plan.splitsBatch, "the weights' DequantizeLinear have no batch")
        XCTAssertEqual(floatWeights(try CompiledModel(imported, precision: .f32).graph), 53)

        let graph = Self.quantizedConvolution()
        let model = try CompiledModel(graph, precision: .int8)
        let conv = try XCTUnwrap(model.plan.steps.first { graph.nodes[$0.node].name == "conv" })
        XCTAssertEqual(conv.precision, .int8, conv.reason)
        var random = SeededGenerator(seed: 42)
        let input = Tensor(shape: [2, 8, 6, 6], floats: (0..<2 * 8 * 36).map { _ in Float(random.uniform(in: -2...2)) })
        let int8 = try model.run(input)
        let reference = try XCTUnwrap(try referenceRun(graph, ["x": input])["y"])
        assertClose(int8, reference, atol: 0.05 * 1.001, rtol: 0, "int8 against the model's arithmetic")
    }

    /// `x → Q → DQ → Conv(DQ(int8 weights)) → Q → DQ → y`, `cin` → 16 channels, `kernel`×`kernel`:
    /// each output channel's integers reach ±100 at most, its scale anything in 0.01…0.02; the
    /// input's scale `input` and the output's `output`.
    static func quantizedConvolution(input: Float = 0.02, output: Float = 0.05, cin: Int = 8, kernel: Int = 3) -> Graph {
        var random = SeededGenerator(seed: 41)
        func bytes(_ shape: [Int], _ dtype: DType, _ values: [Int]) -> Tensor {
            var t = Tensor(zeros: shape, dtype: dtype)
            t.withUnsafeMutableBytes { raw in
                for (i, v) in values.enumerated() { raw.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self) }
            }
            return t
        }
        let (cout, taps) = (16, kernel * kernel)
        let q = (0..<cout * cin * taps).map { i in i % (cin * taps) == 0 ? 100 : Int(random.uniform(in: -100...100)) }
        let scales = (0..<cout).map { _ in Float(random.uniform(in: 0.01...0.02)) }
        let x = ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(cin), .value(6), .value(6)]))
        return Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(cout), .value(6), .value(6)]))], nodes: [
            Node(name: "qx", op: .quantizeLinear(axis: 1), inputs: ["x", "sx", "zx"], outputs: ["xq"]),
            Node(name: "dx", op: .dequantizeLinear(axis: 1), inputs: ["xq", "sx", "zx"], outputs: ["xd"]),
            Node(name: "dw", op: .dequantizeLinear(axis: 0), inputs: ["wq", "sw", "zw"], outputs: ["w"]),
            Node(name: "conv", op: .conv(ConvAttributes(window: Window(kernel: [kernel, kernel], pads: Array(repeating: kernel / 2, count: 4)))),
                 inputs: ["xd", "w", "b"], outputs: ["c"]),
            Node(name: "qy", op: .quantizeLinear(axis: 1), inputs: ["c", "sy", "zy"], outputs: ["yq"]),
            Node(name: "dy", op: .dequantizeLinear(axis: 1), inputs: ["yq", "sy", "zy"], outputs: ["y"]),
        ], constants: ["sx": Tensor(scalar: input), "zx": bytes([], .uint8, [128]), "wq": bytes([cout, cin, kernel, kernel], .int8, q),
                       "sw": Tensor(shape: [cout], floats: scales), "zw": bytes([cout], .int8, Array(repeating: 0, count: cout)),
                       "b": random.tensor([cout]), "sy": Tensor(scalar: output), "zy": bytes([], .uint8, [128])])
    }

    /// Scales outside 1e-8…1e8, where the int8 kernels' folded arithmetic could overflow
    /// where the model's does not (found by the fuzzer: an output scale of 9e36), are not taken
    /// into an int8 step: an input's makes the convolution f32, an output's leaves its pair to
    /// run as the model defines it; either way the outputs are the model's own. So are windows
    /// of more values than int32 sums of u8 × s8 products hold (a 1×1 over 70,000 channels).
    func testScalesAndWindowsBeyondTheKernelsRangeRunAsTheModelDefines() throws {
        try XCTSkipUnless(MicroKernel.supportsVNNI, "the processor lacks AVX512_VNNI")
        var random = SeededGenerator(seed: 43)
        for (label, graph, int8, why) in [("input scale 1e9", Self.quantizedConvolution(input: 1e9), false, "1e-8…1e8"),
                                          ("output scale 9e36", Self.quantizedConvolution(output: 9e36), true, ""),
                                          ("70,000 channels", Self.quantizedConvolution(cin: 70_000, kernel: 1), false, "int32 sums")] {
            let cin = graph.inputs[0].shape.dims[1].value!
            let input = Tensor(shape: [1, cin, 6, 6], floats: (0..<cin * 36).map { _ in Float(random.uniform(in: -2...2)) })
            let model = try CompiledModel(graph, precision: .int8)
            let conv = try XCTUnwrap(model.plan.steps.first { graph.nodes[$0.node].name == "conv" })
            XCTAssertEqual(conv.precision, int8 ? .int8 : .f32, "\(label): \(conv.reason)")
            if !why.isEmpty { XCTAssertTrue(conv.reason.contains(why), conv.reason) }
            let reference = try XCTUnwrap(try referenceRun(graph, ["x": input])["y"])
            if int8 {
                XCTAssertNil(conv.epilogue?.quantizeBefore, label)
                XCTAssertEqual(try model.run(input).floats, reference.floats, label)
            } else {
                // f32 products in another order than the reference's: a value on a rounding
                // boundary may land a step away.
                assertClose(try model.run(input), reference, atol: 0.05 * 1.001, rtol: 0, label)
            }
        }
    }

    /// Weights with no input channels (a hostile file; shape inference cannot refuse them where
    /// the input's channels are symbolic) are planned to the reference, not divided by.
    func testWeightsWithNoInputChannelsArePlannedToTheReference() throws {
        let x = ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .symbol("C"), .value(4), .value(4)]))
        for kernel in [1, 3] {
            let graph = Graph(inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(4), .value(4), .value(4)]))],
                              nodes: [Node(name: "conv", op: .conv(ConvAttributes(window: Window(kernel: [kernel, kernel], pads: Array(repeating: kernel / 2, count: 4)))),
                                           inputs: ["x", "w"], outputs: ["y"])],
                              constants: ["w": Tensor(zeros: [4, 0, kernel, kernel])])
            let plan = try Planner.plan(graph)
            XCTAssertEqual(plan.steps.map(\.kernelChoice), [.reference], "\(kernel)×\(kernel)")
        }
    }

    /// The arena holds every channels-last activation with no two live ones overlapping, and
    /// it is far smaller than all of them side by side.
    func testTheArenaNeverOverlapsLiveValues() throws {
        let plan = try Planner.plan(try Self.resnet50())
        for batch in [1, 3] {
            let arena = plan.arena(batch: batch)
            var made: [String: Int] = [:], lastUse: [String: Int] = [:]
            for (i, step) in plan.steps.enumerated() where arena.offsets[step.output] != nil { made[step.output] = i }
            for (i, names) in plan.releases.enumerated() { for name in names { lastUse[name] = i } }
            let names = Array(made.keys)
            XCTAssertEqual(names.count, 53 - 4 + 1, "every convolution step's output and the max pool's")
            for a in names {
                XCTAssertEqual(arena.offsets[a]! % 64, 0)
                XCTAssertLessThanOrEqual(arena.offsets[a]! + arena.sizes[a]!, arena.byteCount)
                for b in names where a < b {
                    let live = made[a]! <= (lastUse[b] ?? .max) && made[b]! <= (lastUse[a] ?? .max)
                    let apart = arena.offsets[a]! + arena.sizes[a]! <= arena.offsets[b]! || arena.offsets[b]! + arena.sizes[b]! <= arena.offsets[a]!
                    XCTAssertTrue(!live || apart, "\(a) and \(b) overlap while both live")
                }
            }
            let total = names.reduce(0) { $0 + arena.sizes[$1]! }
            XCTAssertLessThan(arena.byteCount * 4, total, "batch \(batch): \(arena.byteCount) of \(total) bytes")
        }
        XCTAssertEqual(plan.peakActivationBytes, plan.arena(batch: 1).byteCount)
    }

    /// One plan, two sessions on two threads at once (a server answering two requests): each
    /// result is bit for bit what one session alone gives.
    func testSessionsShareAPlanAcrossThreads() throws {
        let graph = try Self.resnet50()
        let model = try CompiledModel(graph, optimize: false)
        let inputs = [try NPY.read(try Fixtures.materialized("resnet50/input_b1.npy")),
                      try NPY.read(try Fixtures.materialized("resnet50/input_b2.npy"))]
        let alone = try inputs.map { try Session(plan: model.plan).run([graph.inputs[0].name: $0])[graph.outputs[0].name]! }
        final class Results: @unchecked Sendable { var values = [[Float]](repeating: [], count: 8) }
        let results = Results()
        let errors = Results()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            do {
                results.values[i] = try model.run(inputs[i % 2]).floats
            } catch {
                errors.values[i] = [.nan]
            }
        }
        for i in 0..<8 {
            XCTAssertTrue(errors.values[i].isEmpty, "run \(i) failed")
            XCTAssertEqual(results.values[i], alone[i % 2].floats, "run \(i) differs")
        }
    }
}
