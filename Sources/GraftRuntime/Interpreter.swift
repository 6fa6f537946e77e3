import Foundation
import Dispatch
import GraftCore

/// Runs a graph on concrete inputs in topological order, freeing each value after its last use.
///
/// At load it plans the run: each Conv with constant weights gets its weights packed for the
/// micro-kernel and absorbs the residual `Add` and the `Relu` that follow it (applied while the
/// output tile is still in registers). Convolutions of one group run channels-last (NHWC), and
/// so do the max and global average pools that read their outputs; values move between the
/// layouts only where an op needs the other one (the graph's inputs and outputs, other ops).
/// Matrix products go to sgemm; every other op runs its reference implementation.
public final class Interpreter {
    public let graph: Graph
    private let steps: [Step]
    /// For each step, the values that die after it.
    private let releases: [[String]]
    private var scratch = PackedConv.Scratch()
    /// `GRAFT_WINOGRAD=0` runs every convolution as a direct product (to compare the two).
    static let winogradEnabled = ProcessInfo.processInfo.environment["GRAFT_WINOGRAD"] != "0"

    enum Step {
        /// A grouped convolution in NCHW.
        case conv(Fusion, PackedConv)
        /// A convolution channels-last, and the same by Winograd's F(2×2, 3×3) where it applies
        /// (its weights are transformed on first use: sizes where it does not pay never need them).
        case lastConv(Fusion, ChannelsLastConv, winograd: Lazy<WinogradConv>?)
        /// A max pool (with its window) or a global average pool over a channels-last value.
        case lastPool(node: Int, window: Window?, input: String, output: String)
        /// `Gemm` with constant weights (a classifier): a 1×1 convolution over its rows.
        case dense(node: Int, kernel: ChannelsLastConv, input: String, output: String)
        case node(Int)
    }

    /// A convolution node with the residual `Add` and the `Relu` it absorbed.
    struct Fusion {
        let node: Int
        let input: String
        let residual: String?
        let relu: Bool
        let output: String

        /// `Conv+Add+Relu`.
        var label: String { "Conv" + (residual != nil ? "+Add" : "") + (relu ? "+Relu" : "") }
    }

    /// The zero border each channels-last value is made with: the widest pad of the
    /// convolutions that read it.
    private let borders: [String: Int]

    /// - Throws: `GraftError` when the graph has a missing input or a cycle.
    public init(graph: Graph) throws {
        Parallel.quietOpenBLAS
        Parallel.keepFreedMemory
        self.graph = graph
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
        var available = Set(graph.inputs.map(\.name)).union(graph.constants.keys)
        var absorbed = Set<Int>()
        var steps: [Step] = []
        var channelsLast = Set<String>()
        var borders: [String: Int] = [:]
        // Weight packings to do at load, each convolution's own: done in parallel at the end.
        var packings: [() -> Void] = []
        for index in order where !absorbed.contains(index) {
            let node = graph.nodes[index]
            if case .conv(let attributes) = node.op, let x = node.input(0), let weight = graph.constants[node.inputs[1]],
               weight.dtype == .float32, weight.rank == 4, attributes.group > 0,
               weight.shape[0] % attributes.group == 0 {
                let bias = node.input(2).flatMap { graph.constants[$0] }
                if node.input(2) == nil || bias?.dtype == .float32 {
                    var output = node.outputs[0], residual: String?, relu = false
                    // conv → Add(other branch, computed already) → Relu, each the sole reader of the last.
                    if let a = soleConsumer(output), graph.nodes[a].op == .add, graph.nodes[a].inputs.count == 2 {
                        let add = graph.nodes[a]
                        let other = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
                        if other != output, available.contains(other), graph.constants[other] == nil,
                           let f = facts[other], f.shape == facts[output]?.shape {
                            residual = other
                            output = add.outputs[0]
                            absorbed.insert(a)
                        }
                    }
                    if let r = soleConsumer(output), graph.nodes[r].op == .relu {
                        relu = true
                        output = graph.nodes[r].outputs[0]
                        absorbed.insert(r)
                    }
                    let fusion = Fusion(node: index, input: x, residual: residual, relu: relu, output: output)
                    if ChannelsLastConv.supports(weight: weight, bias: bias, attributes: attributes) {
                        let kernel = ChannelsLastConv(weight: weight, bias: bias, attributes: attributes)
                        let winograd = Self.winogradEnabled && WinogradConv.supports(weight: weight, attributes: attributes)
                            ? Lazy { WinogradConv(weight: weight, bias: bias) } : nil
                        steps.append(.lastConv(fusion, kernel, winograd: winograd))
                        // Pack, at load, the weights of the method the model's own size uses
                        // (batch 1 where the batch is symbolic); others are packed if a run needs them.
                        if let dims = facts[x]?.shape.dims, dims.count == 4, let h = dims[2].value, let w = dims[3].value {
                            if let winograd, WinogradConv.worthIt(n: dims[0].value ?? 1, h: h, w: w) {
                                packings.append { _ = winograd.value }
                            } else {
                                packings.append(kernel.prepare)
                            }
                        }
                        channelsLast.insert(output)
                        let w = kernel.window
                        let pads = w.autoPad == .notSet ? w.pads : (0..<2).map { (w.kernel[$0] - 1) * w.dilations[$0] }
                        borders[x] = max(borders[x] ?? 0, pads.max() ?? 0, winograd == nil ? 0 : 2)
                    } else {
                        steps.append(.conv(fusion, PackedConv(weight: weight, bias: bias, attributes: attributes)))
                    }
                    available.insert(output)
                    continue
                }
            }
            if case .gemm(let a) = node.op, a.alpha == 1, !a.transA, node.inputs.count >= 2, let x = node.input(0),
               let weight = graph.constants[node.inputs[1]], weight.dtype == .float32, weight.rank == 2, !node.outputs[0].isEmpty {
                let (n, k) = a.transB ? (weight.shape[0], weight.shape[1]) : (weight.shape[1], weight.shape[0])
                // C absent, or a constant row of N added once.
                var bias: Tensor?, fits = true
                if let c = node.input(2) {
                    bias = graph.constants[c]
                    fits = bias.map { a.beta == 1 && $0.dtype == .float32 && $0.elementCount == n && $0.shape.last == n } ?? false
                }
                if fits {
                    let w = a.transB ? weight.reshaped([n, k, 1, 1]) : try Reference.transpose(weight, perm: [1, 0]).reshaped([n, k, 1, 1])
                    let kernel = ChannelsLastConv(weight: w, bias: bias?.reshaped([n]), attributes: ConvAttributes(window: Window(kernel: [1, 1])))
                    packings.append(kernel.prepare)
                    steps.append(.dense(node: index, kernel: kernel, input: x, output: node.outputs[0]))
                    available.insert(node.outputs[0])
                    continue
                }
            }
            if let x = node.input(0), channelsLast.contains(x), node.outputs.count == 1, !node.outputs[0].isEmpty {
                switch node.op {
                case .maxPool(let window):
                    steps.append(.lastPool(node: index, window: window, input: x, output: node.outputs[0]))
                    channelsLast.insert(node.outputs[0])
                    available.insert(node.outputs[0])
                    continue
                case .globalAveragePool:
                    steps.append(.lastPool(node: index, window: nil, input: x, output: node.outputs[0]))
                    available.insert(node.outputs[0])
                    continue
                default: break
                }
            }
            steps.append(.node(index))
            available.formUnion(node.outputs)
        }
        Parallel.forEach(packings.count) { packings[$0]() }
        self.steps = steps
        self.borders = borders
        var lastUse: [String: Int] = [:]
        for (position, step) in steps.enumerated() {
            switch step {
            case .conv(let c, _), .lastConv(let c, _, _):
                lastUse[c.input] = position
                if let r = c.residual { lastUse[r] = position }
            case .lastPool(_, _, let input, _), .dense(_, _, let input, _):
                lastUse[input] = position
            case .node(let i):
                for input in graph.nodes[i].inputs where !input.isEmpty { lastUse[input] = position }
            }
        }
        var releases = [[String]](repeating: [], count: steps.count)
        for (name, position) in lastUse where !outputs.contains(name) && graph.constants[name] == nil {
            releases[position].append(name)
        }
        self.releases = releases
    }

    /// Runs the graph.
    ///
    /// - Parameter feeds: a tensor for every graph input, by name.
    /// - Returns: the graph outputs by name.
    /// - Throws: `GraftError` for inputs that do not fit the graph, or a node that fails.
    public func run(_ feeds: [String: Tensor]) throws -> [String: Tensor] {
        var profile: Profile?
        return try run(feeds, profile: &profile)
    }

    /// Runs the graph, adding each step's time to `profile` when one is given.
    public func run(_ feeds: [String: Tensor], profile: inout Profile?) throws -> [String: Tensor] {
        var values: [String: Tensor] = [:]
        var lasts: [String: ChannelsLast] = [:]
        var bindings: [String: Int] = [:]
        for input in graph.inputs {
            guard let t = feeds[input.name] else {
                throw GraftError(.invalidArgument, "no value given for input '\(input.name)'", tensor: input.name)
            }
            try check(t, against: input, bindings: &bindings)
            values[input.name] = t
        }
        // A value in NCHW, converted from channels-last (once) where it was made that way.
        func value(_ name: String) -> Tensor? {
            if let t = values[name] ?? graph.constants[name] { return t }
            guard let l = lasts[name] else { return nil }
            let t = l.tensor()
            values[name] = t
            return t
        }
        // A value channels-last with at least `border`, converted (once) where it is not.
        func last(_ name: String, border: Int) throws -> ChannelsLast? {
            if let l = lasts[name], l.border >= border { return l }
            let l: ChannelsLast
            if let have = lasts[name] {
                l = try have.withBorder(border)
            } else {
                guard let t = values[name] ?? graph.constants[name] else { return nil }
                l = try ChannelsLast(t, border: max(border, borders[name] ?? 0))
            }
            lasts[name] = l
            return l
        }
        for (position, step) in steps.enumerated() {
            let start = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            switch step {
            case .conv(let c, let kernel):
                let node = graph.nodes[c.node]
                do {
                    values[c.output] = try runConv(c, kernel, input: value(c.input), residual: c.residual.flatMap(value))
                } catch let error as GraftError {
                    throw error.atNode(node.name, op: node.op.name)
                }
            case .lastConv(let c, let kernel, let winograd):
                let node = graph.nodes[c.node]
                do {
                    lasts[c.output] = try runConv(c, kernel, winograd: winograd, input: { try last(c.input, border: $0) },
                                                  residual: { try c.residual.flatMap { try last($0, border: 0) } })
                } catch let error as GraftError {
                    throw error.atNode(node.name, op: node.op.name)
                }
            case .lastPool(let index, let window, let input, let output):
                let node = graph.nodes[index]
                do {
                    guard let x = try last(input, border: 0) else {
                        throw GraftError(.badInput, "input '\(input)' is missing")
                    }
                    if let window {
                        let (out, _) = window.resolve(input: [x.h, x.w])
                        guard out[0] > 0, out[1] > 0 else {
                            throw GraftError(.badInput, "input [\(x.n), \(x.c), \(x.h), \(x.w)] is smaller than the \(window.kernel[0])×\(window.kernel[1]) window")
                        }
                        lasts[output] = try ChannelsLastPool.max(x, window: window, border: borders[output] ?? 0)
                    } else {
                        values[output] = ChannelsLastPool.globalAverage(x)
                    }
                } catch let error as GraftError {
                    throw error.atNode(node.name, op: node.op.name)
                }
            case .dense(let index, let kernel, let input, let output):
                let node = graph.nodes[index]
                do {
                    values[output] = try Self.dense(kernel, value(input))
                } catch let error as GraftError {
                    throw error.atNode(node.name, op: node.op.name)
                }
            case .node(let index):
                let node = graph.nodes[index]
                let inputs: [Tensor?] = node.inputs.map { $0.isEmpty ? nil : value($0) }
                let outputs: [Tensor]
                do {
                    outputs = try Self.execute(node.op, inputs)
                } catch let error as GraftError {
                    throw error.atNode(node.name, op: node.op.name)
                }
                for (name, tensor) in zip(node.outputs, outputs) where !name.isEmpty { values[name] = tensor }
            }
            if profile != nil {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                profile!.record(step: position, label: label(step), seconds: seconds, flops: flops(step, values, lasts))
            }
            for name in releases[position] {
                values[name] = nil
                lasts[name] = nil
            }
        }
        var result: [String: Tensor] = [:]
        for output in graph.outputs { result[output.name] = value(output.name) }
        return result
    }

    /// The op name of a step, with what a convolution absorbed (`Conv+Add+Relu`).
    private func label(_ step: Step) -> (kind: String, node: String) {
        switch step {
        case .conv(let c, _), .lastConv(let c, _, _):
            return (c.label, graph.nodes[c.node].name)
        case .lastPool(let i, _, _, _), .dense(let i, _, _, _):
            return (graph.nodes[i].op.name, graph.nodes[i].name)
        case .node(let i):
            return (graph.nodes[i].op.name, graph.nodes[i].name)
        }
    }

    /// Floating-point operations of a step just run (2 per multiply-add), for convolutions and
    /// matrix products; 0 for the rest.
    private func flops(_ step: Step, _ values: [String: Tensor], _ lasts: [String: ChannelsLast]) -> Double {
        switch step {
        case .conv(let c, let kernel):
            guard let y = values[c.output] else { return 0 }
            return 2 * Double(y.elementCount) * Double(kernel.k)
        case .lastConv(let c, let kernel, _):
            guard let y = lasts[c.output] else { return 0 }
            return 2 * Double(y.n * y.h * y.w * y.c) * Double(kernel.k)
        case .lastPool:
            return 0
        case .dense(_, let kernel, _, let output):
            guard let y = values[output] else { return 0 }
            return 2 * Double(y.elementCount) * Double(kernel.k)
        case .node(let i):
            let node = graph.nodes[i]
            guard case .gemm(let a) = node.op, let out = values[node.outputs[0]],
                  let w = node.input(1).flatMap({ graph.constants[$0] ?? values[$0] }) else { return 0 }
            return 2 * Double(out.elementCount) * Double(a.transB ? w.shape[1] : w.shape[0])
        }
    }

    private func runConv(_ c: Fusion, _ kernel: PackedConv, input: Tensor?, residual: Tensor?) throws -> Tensor {
        guard let x = input, x.dtype == .float32, x.rank == 4, x.shape[1] == kernel.cin else {
            throw GraftError(.badInput, "input \(input.map { "\($0.dtype) \($0.shape)" } ?? "missing") does not fit a convolution over \(kernel.cin) channels")
        }
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow, _) = kernel.outputSize(h, w)
        guard oh > 0, ow > 0 else {
            throw GraftError(.badInput, "input \(x.shape) is smaller than the \(kernel.kh)×\(kernel.kw) window")
        }
        let shape = [n, kernel.cout, oh, ow]
        _ = try Reference.checkedElementCount(shape, .float32, op: "Conv")
        if let residual, residual.shape != shape || residual.dtype != .float32 {
            throw GraftError(.internal, "residual \(residual.shape) does not match the convolution output \(shape)")
        }
        var y = Tensor(uninitialized: shape)
        x.withUnsafeBufferPointer(as: Float.self) { xp in
            y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
                func run(_ r: UnsafePointer<Float>?) {
                    kernel.run(xp.baseAddress!, n: n, h: h, w: w, into: yp.baseAddress!, residual: r, relu: c.relu, scratch: &scratch)
                }
                if let residual {
                    residual.withUnsafeBufferPointer(as: Float.self) { run($0.baseAddress!) }
                } else {
                    run(nil)
                }
            }
        }
        return y
    }

    /// A channels-last convolution: `input(border)` gives the input with the border its pads
    /// need (known once its size is).
    private func runConv(_ c: Fusion, _ kernel: ChannelsLastConv, winograd: Lazy<WinogradConv>?, input: (Int) throws -> ChannelsLast?,
                         residual: () throws -> ChannelsLast?) throws -> ChannelsLast {
        guard let probe = try input(0), probe.c == kernel.cin else {
            throw GraftError(.badInput, "input does not fit a convolution over \(kernel.cin) channels")
        }
        let (oh, ow, pads) = kernel.outputSize(probe.h, probe.w)
        guard oh > 0, ow > 0 else {
            throw GraftError(.badInput, "input [\(probe.n), \(probe.c), \(probe.h), \(probe.w)] is smaller than the \(kernel.kh)×\(kernel.kw) window")
        }
        let winograd = winograd.flatMap { WinogradConv.worthIt(n: probe.n, h: probe.h, w: probe.w) ? $0.value : nil }
        let border = winograd != nil ? WinogradConv.border(h: probe.h, w: probe.w) : kernel.border(pads: pads)
        guard let x = border > probe.border ? try input(border) : probe else { throw GraftError(.internal, "input vanished") }
        let y = try ChannelsLast(n: x.n, h: oh, w: ow, c: kernel.cout, border: borders[c.output] ?? 0)
        let r = try residual()
        if let r, r.n != y.n || r.h != oh || r.w != ow || r.c != y.c {
            throw GraftError(.internal, "residual [\(r.n), \(r.c), \(r.h), \(r.w)] does not match the convolution output [\(y.n), \(y.c), \(oh), \(ow)]")
        }
        if let winograd {
            winograd.run(x, into: y, residual: r, relu: c.relu)
        } else {
            kernel.run(x, into: y, residual: r, relu: c.relu)
        }
        return y
    }

    /// `x [M, K]` times the kernel's constant `[K, N]` plus its bias.
    private static func dense(_ kernel: ChannelsLastConv, _ input: Tensor?) throws -> Tensor {
        guard let x = input, x.dtype == .float32, x.rank == 2, x.shape[1] == kernel.cin else {
            throw GraftError(.badInput, "input \(input.map { "\($0.dtype) \($0.shape)" } ?? "missing") does not fit a matrix product over \(kernel.cin) columns")
        }
        let m = x.shape[0]
        let a = try ChannelsLast(n: m, h: 1, w: 1, c: kernel.cin, border: 0)
        let y = try ChannelsLast(n: m, h: 1, w: 1, c: kernel.cout, border: 0)
        x.withUnsafeBufferPointer(as: Float.self) { a.data.update(from: $0.baseAddress!, count: $0.count) }
        kernel.run(a, into: y, residual: nil, relu: false)
        var out = Tensor(uninitialized: [m, kernel.cout])
        out.withUnsafeMutableBufferPointer(as: Float.self) { $0.baseAddress!.update(from: y.data, count: $0.count) }
        return out
    }

    /// One op on concrete inputs: a fast kernel where there is one, else the reference.
    static func execute(_ op: Op, _ inputs: [Tensor?]) throws -> [Tensor] {
        switch op {
        case .conv(let a) where inputs.count >= 2 && inputs[0] != nil && inputs[1] != nil:
            return [try ConvKernel.run(inputs[0]!, weight: inputs[1]!, bias: inputs.count > 2 ? inputs[2] : nil, attributes: a)]
        case .gemm(let a) where inputs.count >= 2 && inputs[0] != nil && inputs[1] != nil:
            return [try GemmKernel.run(inputs[0]!, inputs[1]!, inputs.count > 2 ? inputs[2] : nil, attributes: a)]
        case .matMul where inputs.count == 2 && inputs[0] != nil && inputs[1] != nil:
            return [try GemmKernel.matMul(inputs[0]!, inputs[1]!)]
        case .maxPool(let window) where inputs.count == 1 && inputs[0] != nil:
            return [try PoolingKernel.maxPool(inputs[0]!, window: window)]
        default:
            return try op.evaluate(inputs)
        }
    }

    private func check(_ t: Tensor, against input: ValueInfo, bindings: inout [String: Int]) throws {
        guard t.dtype == input.dtype else {
            throw GraftError(.invalidArgument, "input '\(input.name)' must be \(input.dtype), got \(t.dtype)", tensor: input.name)
        }
        guard t.rank == input.shape.rank else {
            throw GraftError(.invalidArgument, "input '\(input.name)' must have shape \(input.shape), got \(t.shape)", tensor: input.name)
        }
        for (size, dim) in zip(t.shape, input.shape.dims) {
            switch dim {
            case .value(let v) where v != size:
                throw GraftError(.invalidArgument, "input '\(input.name)' must have shape \(input.shape), got \(t.shape)", tensor: input.name)
            case .symbol(let s):
                if let bound = bindings[s], bound != size {
                    throw GraftError(.invalidArgument, "input '\(input.name)': dimension \(s) is \(bound) elsewhere, \(size) here", tensor: input.name)
                }
                bindings[s] = size
            default: break
            }
        }
    }
}

/// A value made on first use.
final class Lazy<Value> {
    private var made: Value?
    private let make: () -> Value

    init(_ make: @escaping () -> Value) { self.make = make }

    var value: Value {
        if let made { return made }
        let v = make()
        made = v
        return v
    }
}
