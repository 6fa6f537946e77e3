import Foundation
import GraftCore

/// Decides how a graph runs and packs the weights for it: the `Plan`.
///
/// Each `Conv` with constant weights gets a channels-last kernel (the grouped kernel for the
/// group shapes it takes, Winograd's F(2×2, 3×3) where it applies, else the direct product) and
/// absorbs the residual `Add` and the `Relu` that follow it into its
/// epilogue (applied while the output tile is still in registers); a grouped convolution that
/// neither the grouped kernel nor the direct product's strips take runs the reference. Channels-
/// last convolutions make their outputs channels-last (NHWC), and so do the max pools that read
/// them; values move between layouts only where an op needs the other one (the graph's inputs
/// and outputs, other ops). `Gemm` with constant weights becomes a dense product; every other
/// op runs its reference implementation.
public enum Planner {
    /// The configuration a plan is made with.
    public struct Options: Sendable {
        /// Run 3×3 convolutions by Winograd's method where it applies (off: direct products
        /// only, to compare the two). `GRAFT_WINOGRAD=0` turns it off by default.
        public var winograd = ProcessInfo.processInfo.environment["GRAFT_WINOGRAD"] != "0"
        /// The precision of the convolutions and dense products that have a kernel for it (the
        /// others, and every other step, stay f32).
        public var precision: Plan.Precision = .f32

        public init(precision: Plan.Precision = .f32) {
            self.precision = precision
        }
    }

    /// Plans `graph` and packs its weights (in parallel, a convolution per task) for the batch
    /// the graph declares, or 1 where the batch is symbolic; other batches pack what they need
    /// on first use.
    ///
    /// - Throws: `GraftError` when the graph has a missing input or a cycle.
    public static func plan(_ graph: Graph, options: Options = Options()) throws -> Plan {
        Parallel.quietOpenBLAS
        Parallel.keepFreedMemory
        let precision = options.precision
        let forced = ProcessInfo.processInfo.environment["GRAFT_KERNELS"] == "avx2" ? " (GRAFT_KERNELS=avx2 rules it out)" : ""
        if precision == .bf16 && !MicroKernel.supportsBF16 {
            throw GraftError(.invalidArgument, "bf16 needs a processor with AVX512_BF16, which this one does not have\(forced); use f32")
        }
        if precision == .int8 {
            guard MicroKernel.supportsVNNI else {
                throw GraftError(.invalidArgument, "int8 needs a processor with AVX512_VNNI, which this one does not have\(forced); use f32")
            }
            guard graph.nodes.contains(where: { if case .dequantizeLinear = $0.op { return true }; return false }) else {
                throw GraftError(.invalidArgument, "int8 runs quantized models, and this one has no QuantizeLinear/DequantizeLinear: make one with `graft quantize MODEL --calibrate IMAGES --out MODEL_int8.onnx` first")
            }
        }
        // The precision of a floating-point product (grouped ones, and all of an int8 plan's
        // that are not quantized convolutions, stay f32) and its kernel at that precision.
        func precisionOf(_ attributes: ConvAttributes) -> Plan.Precision { attributes.group > 1 || precision == .int8 ? .f32 : precision }
        func product(_ weight: Tensor, _ bias: Tensor?, _ attributes: ConvAttributes) throws -> any ConvolutionKernel {
            precisionOf(attributes) == .bf16 ? try BF16Conv(weight: weight, bias: bias, attributes: attributes)
                : ChannelsLastConv(weight: weight, bias: bias, attributes: attributes)
        }
        let order = try graph.topologicalOrder()
        let facts = (try? graph.inferShapes()) ?? [:]
        var consumers: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(i) }
        }
        let outputs = Set(graph.outputs.map(\.name))
        func soleConsumer(_ value: String) -> Int? {
            guard !outputs.contains(value), let c = consumers[value], c.count == 1 else { return nil }
            return c[0]
        }
        var producers: [String: Int] = [:]
        for (i, node) in graph.nodes.enumerated() { for output in node.outputs where !output.isEmpty { producers[output] = i } }
        let quantized = QuantizedPatterns(graph: graph, facts: facts, soleConsumer: soleConsumer, producers: producers)
        var absorbed = Set<Int>()
        // The QuantizeLinear → DequantizeLinear pair that reads `output`, taken into the step that
        // makes it: its quantization, with `output` and `nodes` moved past it.
        func absorbPair(_ output: inout String, _ nodes: inout [Int]) -> Plan.Quantization? {
            guard let pair = quantized.pair(after: output) else { return nil }
            output = pair.output
            absorbed.formUnion(pair.nodes)
            nodes += pair.nodes
            return pair.quantization
        }
        // For convolution `index` whose output `add` adds to another convolution's, not run yet,
        // that nothing else reads and whose input is ready: the two as one summed product (both
        // direct, of the same precision, the biases added into the first's), or nil.
        func summedShortcut(_ index: Int, add a: Int) throws -> (step: Plan.Summed, kernel: any ConvolutionKernel, border: Int)? {
            let (node, add) = (graph.nodes[index], graph.nodes[a])
            guard add.inputs.count == 2, add.inputs[0] != add.inputs[1], case .conv(let attributes) = node.op else { return nil }
            let other = add.inputs[0] == node.outputs[0] ? add.inputs[1] : add.inputs[0]
            guard let d = producers[other], !absorbed.contains(d), !available.contains(other), soleConsumer(other) == a,
                  case .conv(let shortcutAttributes) = graph.nodes[d].op, let shortcutInput = graph.nodes[d].input(0),
                  available.contains(shortcutInput), let fact = facts[other], fact.shape == facts[node.outputs[0]]?.shape,
                  // Sizes inference left symbolic may differ at run time (the Add broadcasting one).
                  fact.shape.rank == 4, fact.shape.dims[1...].allSatisfy({ $0.value != nil }) else { return nil }
            func parts(_ n: Node, _ attributes: ConvAttributes) -> (Tensor, Tensor?)? {
                guard n.inputs.count >= 2, let w = graph.constants[n.inputs[1]], w.dtype == .float32, w.rank == 4, attributes.group == 1 else { return nil }
                let b = n.input(2).map { graph.constants[$0] }
                if let b, b?.dtype != .float32 || b?.elementCount != w.shape[0] { return nil }
                // A 3×3 that Winograd's method may run stays a step of its own.
                guard ChannelsLastConv.supports(weight: w, bias: b ?? nil, attributes: attributes),
                      !(options.winograd && WinogradConv.supports(weight: w, attributes: attributes)) else { return nil }
                return (w, b ?? nil)
            }
            guard precisionOf(attributes) == precisionOf(shortcutAttributes), let (w, b) = parts(node, attributes),
                  let (sw, sb) = parts(graph.nodes[d], shortcutAttributes), w.shape[0] == sw.shape[0] else { return nil }
            var bias = b
            if let sb {
                let sum = zip(b?.floats ?? [Float](repeating: 0, count: sb.elementCount), sb.floats).map { $0 + $1 }
                bias = Tensor(shape: [sum.count], floats: sum)
            }
            let kernel = try product(w, bias, attributes), shortcut = try product(sw, nil, shortcutAttributes)
            guard kernel.sums(with: shortcut) else { return nil }
            return (Plan.Summed(node: d, input: shortcutInput, kernel: shortcut), kernel, Self.border(sw, shortcutAttributes))
        }
        // A convolution's or matrix product's weights: a float constant, or a DequantizeLinear of
        // int8 constants (the passes leave them so for an int8 plan) dequantized here for the
        // kernels that take floats, with its integers and scales as the int8 kernels' grid where
        // its zero points are 0 and its scales one for the tensor or one per row (axis 0).
        func constantWeight(_ name: String) throws -> (weight: Tensor, grid: Int8Conv.WeightGrid?)? {
            if let w = graph.constants[name] { return w.dtype == .float32 ? (w, nil) : nil }
            guard let d = producers[name], case .dequantizeLinear(let axis) = graph.nodes[d].op else { return nil }
            let dequantize = graph.nodes[d]
            let inputs = dequantize.inputs.map { $0.isEmpty ? nil : graph.constants[$0] }
            guard dequantize.inputs.indices.allSatisfy({ dequantize.inputs[$0].isEmpty || inputs[$0] != nil }), inputs.count >= 2,
                  let q = inputs[0], q.dtype == .int8, q.rank >= 1, let scale = inputs[1],
                  let weight = try? Op.dequantizeLinear(axis: axis).evaluate(inputs)[0] else { return nil }
            let zero = inputs.count > 2 ? inputs[2] : nil
            let perRow = scale.elementCount == q.shape[0] && (axis == 0 || axis == -q.rank)
            guard zero.map({ $0.int64s.allSatisfy { $0 == 0 } }) ?? true, scale.elementCount == 1 || perRow else { return (weight, nil) }
            let scales = scale.elementCount == 1 ? [Float](repeating: scale.floats[0], count: q.shape[0]) : scale.floats
            return (weight, Int8Conv.WeightGrid(values: q.withUnsafeBufferPointer(as: Int8.self) { Array($0) }, scales: scales))
        }
        let plannedBatch = graph.inputs.first?.shape.dims.first?.value ?? 1
        var available = Set(graph.inputs.map(\.name)).union(graph.constants.keys)
        var steps: [Plan.Step] = []
        var channelsLast = Set<String>()
        var borders: [String: Int] = [:]
        // Weight packings to do now, each convolution's own: done in parallel at the end.
        var packings: [() -> Void] = []
        for index in order where !absorbed.contains(index) {
            let node = graph.nodes[index]
            if case .conv(let attributes) = node.op, let x = node.input(0), let (weight, knownGrid) = try constantWeight(node.inputs[1]),
               weight.rank == 4, attributes.group > 0,
               weight.shape[0] % attributes.group == 0 {
                let bias = node.input(2).flatMap { graph.constants[$0] }
                // Grouped convolutions that no channels-last kernel takes run the reference.
                if node.input(2) == nil || bias?.dtype == .float32,
                   GroupedConv.supports(weight: weight, bias: bias, attributes: attributes)
                    || ChannelsLastConv.supports(weight: weight, bias: bias, attributes: attributes) {
                    var output = node.outputs[0], residual: String?, relu = false
                    var nodes = [index]
                    // An int8 plan's quantized convolution: what it reads, and its output's
                    // QuantizeLinear → DequantizeLinear.
                    let decision = precision == .int8 ? quantized.convolution(node, weight: weight, grid: knownGrid, attributes: attributes, steps: steps) : nil
                    let int8 = decision?.convolution
                    var before: Plan.Quantization?, after: Plan.Quantization?
                    if int8 != nil { before = absorbPair(&output, &nodes) }
                    // conv → Add ← conv' (a block's downsampling shortcut, whose input is ready):
                    // one step, the shortcut's products summed into this one's.
                    var summed: (step: Plan.Summed, kernel: any ConvolutionKernel, border: Int)?
                    if precision != .int8, let a = soleConsumer(output), graph.nodes[a].op == .add,
                       let shortcut = try summedShortcut(index, add: a) {
                        summed = shortcut
                        output = graph.nodes[a].outputs[0]
                        absorbed.formUnion([shortcut.step.node, a])
                        nodes += [shortcut.step.node, a]
                        borders[shortcut.step.input] = max(borders[shortcut.step.input] ?? 0, shortcut.border)
                    }
                    // conv → Add(other branch, computed already) → Relu, each the sole reader of the last.
                    if summed == nil, let a = soleConsumer(output), graph.nodes[a].op == .add, graph.nodes[a].inputs.count == 2 {
                        let add = graph.nodes[a]
                        let other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
                        if other != output, available.contains(other), graph.constants[other] == nil,
                           let f = facts[other], f.shape == facts[output]?.shape {
                            residual = other
                            output = add.outputs[0]
                            absorbed.insert(a)
                            nodes.append(a)
                        }
                    }
                    if let r = soleConsumer(output), graph.nodes[r].op == .relu {
                        relu = true
                        output = graph.nodes[r].outputs[0]
                        absorbed.insert(r)
                        nodes.append(r)
                    }
                    if int8 != nil, residual != nil || relu || before == nil { after = absorbPair(&output, &nodes) }
                    let epilogue = Plan.Epilogue(bias: bias != nil || summed.map { graph.nodes[$0.step.node].input(2) != nil } == true,
                                                 residual: residual, activation: relu ? .relu : nil,
                                                 quantizeBefore: before, quantizeAfter: after)
                    func step(_ kernel: Plan.Kernel, _ reason: String, runs choice: Plan.KernelChoice? = nil,
                              precision: Plan.Precision = precisionOf(attributes)) -> Plan.Step {
                        Plan.Step(node: index, nodes: nodes, input: x, output: output, kernel: kernel, epilogue: epilogue, precision: precision,
                                  reason: (precision == .f32 ? reason : "\(precision): " + reason) + (decision?.whyNot ?? ""), choice: choice,
                                  summed: summed?.step)
                    }
                    if let summed {
                        packings += [summed.kernel.prepare, summed.step.kernel.prepare]
                        steps.append(step(.direct(summed.kernel), Self.directReason(attributes, weight: weight, winograd: options.winograd)
                                          + "; \(graph.nodes[summed.step.node].name)'s products summed in before the epilogue (the Add's other term)"))
                        borders[x] = max(borders[x] ?? 0, Self.border(weight, attributes))
                        channelsLast.insert(output)
                        available.insert(output)
                        continue
                    }
                    let dims = facts[x]?.shape.dims
                    let size = dims.flatMap { d -> (n: Int, h: Int, w: Int)? in
                        guard d.count == 4, let h = d[2].value, let w = d[3].value else { return nil }
                        return (d[0].value ?? plannedBatch, h, w)
                    }
                    if let int8 {
                        let kernel = try Int8Conv(weight: weight, grid: int8.grid, bias: bias, attributes: attributes, input: int8.quantization,
                                                  before: before, after: after)
                        steps.append(Plan.Step(node: index, nodes: nodes, input: int8.reads, output: output, kernel: .direct(kernel),
                                               epilogue: epilogue, precision: .int8, reason: "int8: " + int8.reason))
                        borders[int8.reads] = max(borders[int8.reads] ?? 0, Self.border(weight, attributes))
                    } else if GroupedConv.supports(weight: weight, bias: bias, attributes: attributes) {
                        let kernel = GroupedConv(weight: weight, bias: bias, attributes: attributes)
                        packings.append(kernel.prepare)
                        let (cout, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
                        steps.append(step(.grouped(kernel), "\(kh)×\(kw) in \(attributes.group) groups of \(cout / attributes.group): the grouped kernel, each group's own products only",
                                          precision: .f32))
                        borders[x] = max(borders[x] ?? 0, Self.border(weight, attributes))
                    } else {
                        let kernel = try product(weight, bias, attributes)
                        if options.winograd && WinogradConv.supports(weight: weight, attributes: attributes) {
                            let winograd = try LazyWinograd(weight: weight, bias: bias, precision: precisionOf(attributes))
                            // Pack, now, the weights of the method the planned size uses; the
                            // other's are packed if a run at another size needs them.
                            if let size, winograd.worthIt(size.n, size.h, size.w) {
                                packings.append { _ = winograd.conv }
                                steps.append(step(.winograd(kernel, winograd),
                                                  "3×3, stride 1: Winograd F(2×2, 3×3) at \(size.h)×\(size.w), \(2.25)× fewer multiplies"))
                            } else {
                                if size != nil { packings.append(kernel.prepare) }
                                let why = size.map { "3×3 at \($0.h)×\($0.w), batch \($0.n): too few 2×2 tiles for Winograd's larger weights to pay; direct (Winograd at larger sizes)" }
                                    ?? "3×3 of unknown size: direct or Winograd, chosen at run time"
                                steps.append(step(.winograd(kernel, winograd), why, runs: size == nil ? .winograd : .direct))
                            }
                            borders[x] = max(borders[x] ?? 0, Self.border(weight, attributes), 2)
                        } else {
                            if size != nil { packings.append(kernel.prepare) }
                            steps.append(step(.direct(kernel), Self.directReason(attributes, weight: weight, winograd: options.winograd)))
                            borders[x] = max(borders[x] ?? 0, Self.border(weight, attributes))
                        }
                    }
                    channelsLast.insert(output)
                    available.insert(output)
                    continue
                }
            }
            if case .gemm(let a) = node.op, a.alpha == 1, !a.transA, node.inputs.count >= 2, let x = node.input(0),
               let (weight, knownGrid) = try constantWeight(node.inputs[1]), weight.rank == 2, !node.outputs[0].isEmpty {
                let (n, k) = a.transB ? (weight.shape[0], weight.shape[1]) : (weight.shape[1], weight.shape[0])
                // C absent, or a constant row of N added once.
                var bias: Tensor?, fits = true
                if let c = node.input(2) {
                    bias = graph.constants[c]
                    fits = bias.map { a.beta == 1 && $0.dtype == .float32 && $0.elementCount == n && $0.shape.last == n } ?? false
                }
                if fits {
                    let w = a.transB ? weight.reshaped([n, k, 1, 1]) : try Reference.transpose(weight, perm: [1, 0]).reshaped([n, k, 1, 1])
                    let pointwise = ConvAttributes(window: Window(kernel: [1, 1]))
                    let reason = "constant weights [\(k), \(n)]: a 1×1 product over the rows"
                    var epilogue = Plan.Epilogue(bias: bias != nil, residual: nil, activation: nil)
                    var (output, nodes) = (node.outputs[0], [index])
                    // The grid of B [N, K] is by output (a row each); of B [K, N], found again from the floats.
                    let decision = precision == .int8 ? quantized.convolution(node, weight: w, grid: a.transB ? knownGrid : nil, attributes: pointwise,
                                                                               steps: steps) : nil
                    if let int8 = decision?.convolution {
                        // As an int8 convolution's: the input quantized as read, the output's pair absorbed.
                        epilogue.quantizeBefore = absorbPair(&output, &nodes)
                        let kernel = try Int8Conv(weight: w, grid: int8.grid, bias: bias?.reshaped([n]), attributes: pointwise,
                                                  input: int8.quantization, before: epilogue.quantizeBefore, after: nil)
                        steps.append(Plan.Step(node: index, nodes: nodes, input: int8.reads, output: output, kernel: .dense(kernel),
                                               epilogue: epilogue, precision: .int8, reason: "int8: " + reason + "; " + int8.reason))
                    } else {
                        let kernel = try product(w, bias?.reshaped([n]), pointwise)
                        packings.append(kernel.prepare)
                        steps.append(Plan.Step(node: index, nodes: nodes, input: x, output: output, kernel: .dense(kernel), epilogue: epilogue,
                                               precision: precisionOf(pointwise), reason: reason + (decision?.whyNot ?? "")))
                    }
                    available.insert(output)
                    continue
                }
            }
            if let x = node.input(0), channelsLast.contains(x), node.outputs.count == 1, !node.outputs[0].isEmpty {
                let kernel: Plan.Kernel?
                switch node.op {
                case .maxPool(let window): kernel = .maxPool(window)
                case .globalAveragePool: kernel = .globalAveragePool
                default: kernel = nil
                }
                if let kernel {
                    steps.append(Plan.Step(node: index, nodes: [index], input: x, output: node.outputs[0], kernel: kernel, epilogue: nil,
                                           precision: .f32, reason: "reads a channels-last value"))
                    if case .maxPool = kernel { channelsLast.insert(node.outputs[0]) }
                    available.insert(node.outputs[0])
                    continue
                }
            }
            steps.append(Plan.Step(node: index, nodes: [index], input: node.input(0), output: node.outputs.first ?? "",
                                   kernel: .reference, epilogue: nil, precision: .f32, reason: "no fast kernel for \(node.op.name) here"))
            available.formUnion(node.outputs)
        }
        Parallel.forEach(packings.count) { packings[$0]() }
        // Steps whose values nothing reads (an int8 step reads a QuantizeLinear's input, so the
        // pair it stands for may have no reader left).
        var needed = outputs
        steps = steps.reversed().filter { step in
            let made = step.kernel.choice == .reference ? graph.nodes[step.node].outputs : [step.output]
            guard made.contains(where: needed.contains) else { return false }
            needed.formUnion(reads(step, graph))
            return true
        }.reversed()

        var lastUse: [String: Int] = [:]
        for (position, step) in steps.enumerated() {
            for name in reads(step, graph) { lastUse[name] = position }
        }
        var releases = [[String]](repeating: [], count: steps.count)
        for (name, position) in lastUse where !outputs.contains(name) && graph.constants[name] == nil {
            releases[position].append(name)
        }
        var layouts: [String: Plan.Layout] = [:]
        for name in channelsLast { layouts[name] = .channelsLast(border: borders[name] ?? 0) }
        for (name, grid) in Self.byteValues(steps, graph: graph, outputs: outputs) { layouts[name] = .quantized(border: borders[name] ?? 0, grid) }
        for name in Self.halfValues(steps, graph: graph, outputs: outputs) { layouts[name] = .bfloat16(border: borders[name] ?? 0) }
        return Plan(graph: graph, steps: steps, releases: releases.map { $0.sorted() }, layouts: layouts,
                    plannedBatch: plannedBatch, shapes: facts.mapValues(\.shape), splitsBatch: splitsBatch(graph, facts))
    }

    /// Whether a batch can run as several smaller ones whose outputs, stacked, are the batch's:
    /// every graph input and output and every value a node reads or writes (constants aside)
    /// has the same symbolic first dimension, and every op treats each item of it on its own
    /// (no op along axis 0, no shape computed from the values).
    static func splitsBatch(_ graph: Graph, _ facts: [String: ValueFact]) -> Bool {
        guard case .symbol(let batch)? = graph.inputs.first?.shape.dims.first else { return false }
        // Constants, and what only they feed (a quantized model's weights, dequantized): no batch.
        var constant = Set(graph.constants.keys)
        for node in graph.nodes where node.inputs.allSatisfy({ $0.isEmpty || constant.contains($0) }) {
            constant.formUnion(node.outputs.filter { !$0.isEmpty })
        }
        func batched(_ name: String) -> Bool {
            constant.contains(name) || facts[name].map { $0.shape.rank >= 1 && $0.shape.dims[0] == .symbol(batch) } == true
        }
        guard graph.inputs.allSatisfy({ $0.shape.dims.first == .symbol(batch) }), graph.outputs.allSatisfy({ batched($0.name) }) else { return false }
        // A constant that an item-wise op combines with batched values must broadcast over the
        // batch (a first dimension of 1, or fewer dimensions than the values).
        func shape(_ name: String) -> [Int]? { graph.constants[name]?.shape ?? facts[name]?.shape.concrete }
        func broadcasts(_ node: Node) -> Bool {
            let rank = node.outputs.first.flatMap { facts[$0]?.shape.rank } ?? 0
            return node.inputs.filter(constant.contains).allSatisfy { name in shape(name).map { $0.count < rank || $0.first == 1 } == true }
        }
        return graph.nodes.allSatisfy { node in
            if node.outputs.allSatisfy({ $0.isEmpty || constant.contains($0) }) { return true }
            let itemwise: Bool
            switch node.op {
            case .conv, .batchNorm, .relu, .sigmoid, .tanh, .leakyRelu, .maxPool, .averagePool, .globalAveragePool, .globalMaxPool,
                 .neg, .exp, .sqrt, .identity, .dropout:
                itemwise = true
            case .add, .sub, .mul, .div, .sum: itemwise = broadcasts(node)
            case .gemm(let a):
                // B constant; C batched, or a constant row (or fewer dimensions) over the batch.
                itemwise = !a.transA && node.input(1).map(constant.contains) == true
                    && node.input(2).map { c in !constant.contains(c) || shape(c).map { $0.count < 2 || $0[0] == 1 } == true } != false
            case .flatten(let axis), .softmax(let axis, _), .logSoftmax(let axis, _): itemwise = axis > 0
            case .concat(let axis): itemwise = axis > 0 && broadcasts(node)
            case .quantizeLinear(let axis), .dequantizeLinear(let axis):
                itemwise = axis > 0 || node.input(1).flatMap { graph.constants[$0] }.map { $0.elementCount == 1 } == true
            default: itemwise = false
            }
            return itemwise && node.inputs.filter { !$0.isEmpty }.allSatisfy(batched) && node.outputs.filter { !$0.isEmpty }.allSatisfy(batched)
        }
    }

    /// The values that stay quantized bytes, with their grids: int8 steps' outputs that end on a
    /// grid, and max pools of such values, where every reader takes bytes: an int8 convolution
    /// (as its input on that grid, or as a residual), or a max pool whose output stays bytes.
    static func byteValues(_ steps: [Plan.Step], graph: Graph, outputs: Set<String>) -> [String: Plan.Quantization] {
        var readers: [String: [Plan.Step]] = [:]
        for step in steps { for name in Set(reads(step, graph)) { readers[name, default: []].append(step) } }
        // What each value's grid would be, in order (a max pool's from its input's).
        var grids: [String: Plan.Quantization] = [:]
        for step in steps where !outputs.contains(step.output) {
            switch step.kernel {
            case .direct(is Int8Conv):
                grids[step.output] = step.epilogue?.lastGrid
            case .maxPool:
                grids[step.output] = step.input.flatMap { grids[$0] }
            default: break
            }
        }
        // Readers come after what they read: decide from the last value back; then a max pool's
        // output stays bytes only where its input is.
        var values: [String: Plan.Quantization] = [:]
        for step in steps.reversed() {
            guard let grid = grids[step.output], let all = readers[step.output], !all.isEmpty else { continue }
            if all.allSatisfy({ reader in
                switch reader.kernel {
                case .direct(let kernel as Int8Conv): return reader.input != step.output || kernel.input == grid
                case .maxPool: return values[reader.output] != nil
                default: return false
                }
            }) {
                values[step.output] = grid
            }
        }
        for step in steps where values[step.output] != nil && step.kernel.choice == .maxPool && step.input.map({ values[$0] == nil }) != false {
            values[step.output] = nil
        }
        return values
    }

    /// The values that stay bfloat16: outputs of bf16 products, and max pools of such values,
    /// that only bf16 products read (as their input, a summed convolution's, or a residual) or
    /// max pools whose outputs stay bfloat16. A direct product rounds what it reads to bfloat16
    /// anyway (but for a residual), and a maximum is one of the values; Winograd's method (a bf16
    /// 3×3 at sizes where it pays) transforms the values it reads in f32 and rounds the result,
    /// so it reads them rounded twice. A graph input that only such steps read is converted to
    /// bfloat16 as the run takes it.
    static func halfValues(_ steps: [Plan.Step], graph: Graph, outputs: Set<String>) -> Set<String> {
        var readers: [String: [Plan.Step]] = [:]
        for step in steps { for name in Set(reads(step, graph)) { readers[name, default: []].append(step) } }
        func bf16(_ step: Plan.Step) -> Bool {
            switch step.kernel {
            case .direct(is BF16Conv), .winograd(is BF16Conv, _): return true
            default: return false
            }
        }
        // Readers come after what they read: decide from the last value back; then a max pool's
        // output stays bfloat16 only where its input is; then the graph's inputs.
        var values = Set<String>()
        func onlyBF16Readers(_ name: String) -> Bool {
            guard !outputs.contains(name), let all = readers[name], !all.isEmpty else { return false }
            return all.allSatisfy { bf16($0) || $0.kernel.choice == .maxPool && values.contains($0.output) }
        }
        for step in steps.reversed() where (bf16(step) || step.kernel.choice == .maxPool) && onlyBF16Readers(step.output) {
            values.insert(step.output)
        }
        for step in steps where step.kernel.choice == .maxPool && !(step.input.map(values.contains) ?? false) {
            values.remove(step.output)
        }
        for input in graph.inputs where onlyBF16Readers(input.name) { values.insert(input.name) }
        return values
    }

    /// The values a step reads.
    static func reads(_ step: Plan.Step, _ graph: Graph) -> [String] {
        switch step.kernel {
        case .reference:
            return graph.nodes[step.node].inputs.filter { !$0.isEmpty }
        case .direct, .winograd, .grouped:
            return [step.input, step.summed?.input, step.epilogue?.residual].compactMap { $0 }
        case .dense, .maxPool, .globalAveragePool:
            return [step.input].compactMap { $0 }
        }
    }

    /// The border a convolution's input needs: its pads, or with automatic padding the most
    /// that any size may need.
    static func border(_ weight: Tensor, _ attributes: ConvAttributes) -> Int {
        let w = attributes.window
        return (w.autoPad == .notSet ? w.pads : (0..<2).map { (weight.shape[2 + $0] - 1) * w.dilations[$0] }).max() ?? 0
    }

    /// Why a convolution runs as a direct product.
    static func directReason(_ attributes: ConvAttributes, weight: Tensor, winograd: Bool) -> String {
        let (cout, cin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        if attributes.group > 1 {
            return "\(kh)×\(kw) in \(attributes.group) groups of \(cout / attributes.group) (not a grouped kernel's shape): strips over their groups' channels"
        }
        let w = attributes.window
        let shape = "\(kh)×\(kw)"
        guard kh == 3 && kw == 3 else { return "\(shape): direct product" }
        if !winograd { return "3×3: direct (Winograd turned off)" }
        if w.strides != [1, 1] { return "3×3, stride \(w.strides[0]): direct (Winograd's tiles need stride 1)" }
        if cout % 16 != 0 || cin % 16 != 0 { return "3×3 over \(cin) → \(cout) channels: direct (Winograd needs multiples of 16)" }
        return "3×3 with dilation or padding other than 1: direct"
    }
}
