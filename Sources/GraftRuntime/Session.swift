import Dispatch
import GraftCore

/// One run's state over a `Plan`: the values alive, the scratch memory of the kernels, and the
/// activation arena of the batch size it last ran. Run one session per thread; any number of
/// sessions may share a plan.
public final class Session {
    public let plan: Plan
    /// The activation arena of the batch last run, planned anew when the batch changes (one
    /// buffer at a time, whatever batches a caller sends).
    private var arena: (batch: Int, memory: Arena)?
    /// The sub-batch of each batch size run so far (`Plan.subBatch`, which plans arenas to decide).
    private var subBatches: [Int: Int] = [:]

    /// A value in the layouts it has been made in so far (converted once, where a reader needs
    /// the other layout).
    enum Value {
        case nchw(Tensor)
        case channelsLast(ChannelsLast)
        case both(Tensor, ChannelsLast)
        /// Quantized bytes, as int8 steps pass them to one another (`Plan.Layout.quantized`).
        case bytes(QuantizedActivation)
        /// bfloat16, as bf16 steps pass them to one another (`Plan.Layout.bfloat16`).
        case halves(BF16Activation)

        /// A channels-last value just made, by its element type.
        init(_ image: any ChannelsLastImage) {
            switch image {
            case let bytes as QuantizedActivation: self = .bytes(bytes)
            case let halves as BF16Activation: self = .halves(halves)
            default: self = .channelsLast(image as! ChannelsLast)
            }
        }

        /// The value as a channels-last image, whatever its element type.
        var image: (any ChannelsLastImage)? {
            switch self {
            case .bytes(let q): return q
            case .halves(let h): return h
            default: return channelsLast
            }
        }

        var nchw: Tensor? {
            switch self {
            case .nchw(let t), .both(let t, _): return t
            case .channelsLast, .bytes, .halves: return nil
            }
        }

        var channelsLast: ChannelsLast? {
            switch self {
            case .channelsLast(let l), .both(_, let l): return l
            case .nchw, .bytes, .halves: return nil
            }
        }
    }

    /// One buffer with a slot for each channels-last activation the plan places.
    final class Arena {
        let layout: ActivationArena
        let base: UnsafeMutableRawPointer

        init(_ layout: ActivationArena) {
            self.layout = layout
            base = UnsafeMutableRawPointer.allocate(byteCount: max(layout.byteCount, 64), alignment: 64)
        }

        deinit { base.deallocate() }
    }

    public init(plan: Plan) {
        self.plan = plan
    }

    /// Runs the plan.
    ///
    /// - Parameter feeds: a tensor for every graph input, by name.
    /// - Returns: the graph outputs by name.
    /// - Throws: `GraftError` for inputs that do not fit the graph (naming the input), or a
    ///   node that fails (naming it).
    public func run(_ feeds: [String: Tensor]) throws -> [String: Tensor] {
        var profile: Profile?
        return try run(feeds, profile: &profile)
    }

    /// Runs the plan, adding each step's time to `profile` when one is given. A batch larger
    /// than the plan's sub-batch for it (`Plan.subBatch`) runs a sub-batch at a time.
    public func run(_ feeds: [String: Tensor], profile: inout Profile?) throws -> [String: Tensor] {
        profile?.startRun()
        let batch = plan.graph.inputs.first.flatMap { feeds[$0.name]?.shape.first } ?? plan.plannedBatch
        let chunk = subBatches[batch] ?? plan.subBatch(for: batch)
        subBatches[batch] = chunk
        guard chunk < batch, feeds.values.allSatisfy({ $0.rank >= 1 && $0.shape[0] == batch }) else { return try runWhole(feeds, profile: &profile) }
        var parts: [[String: Tensor]] = []
        for start in stride(from: 0, to: batch, by: chunk) {
            parts.append(try runWhole(feeds.mapValues { Self.items($0, start..<start + chunk) }, profile: &profile))
        }
        var outputs: [String: Tensor] = [:]
        for name in parts[0].keys { outputs[name] = Self.stacked(parts.map { $0[name]! }) }
        return outputs
    }

    /// Items `range` of a tensor's first dimension.
    private static func items(_ t: Tensor, _ range: Range<Int>) -> Tensor {
        let itemBytes = t.byteCount / max(t.shape[0], 1)
        var out = Tensor(uninitialized: [range.count] + t.shape.dropFirst(), dtype: t.dtype)
        t.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[range.lowerBound * itemBytes..<range.upperBound * itemBytes])) }
        }
        return out
    }

    /// Tensors of the same type and item shape, one after another along the first dimension.
    private static func stacked(_ parts: [Tensor]) -> Tensor {
        var out = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }] + parts[0].shape.dropFirst(), dtype: parts[0].dtype)
        out.withUnsafeMutableBytes { dst in
            var at = 0
            for part in parts {
                part.withUnsafeBytes { dst.baseAddress!.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                at += part.byteCount
            }
        }
        return out
    }

    private func runWhole(_ feeds: [String: Tensor], profile: inout Profile?) throws -> [String: Tensor] {
        let graph = plan.graph
        var values: [String: Value] = [:]
        var bindings: [String: Int] = [:]
        for input in graph.inputs {
            guard let t = feeds[input.name] else {
                throw GraftError(.invalidArgument, "no value given for input '\(input.name)'", tensor: input.name)
            }
            try check(t, against: input, bindings: &bindings)
            // An input that only bf16 steps read is made bfloat16 channels-last at once.
            // (Another type or rank is left to the step that reads it, to refuse.)
            if case .bfloat16(let border) = plan.layout(of: input.name), t.dtype == .float32, t.rank == 4 {
                values[input.name] = .halves(try BF16Activation(t, border: border))
            } else {
                values[input.name] = .nchw(t)
            }
        }
        let batch = graph.inputs.first.flatMap { feeds[$0.name]?.shape.first } ?? plan.plannedBatch
        let arena = self.arena(batch: batch)
        // Quantized bytes or bfloat16 as floats (once), for a reader that takes neither.
        func floats(_ name: String) {
            switch values[name] {
            case .bytes(let q)?: if let l = try? q.floats(border: q.border) { values[name] = .channelsLast(l) }
            case .halves(let h)?: if let l = try? h.floats(border: h.border) { values[name] = .channelsLast(l) }
            default: break
            }
        }
        // A value in NCHW, converted from channels-last (once) where it was made that way.
        func value(_ name: String) -> Tensor? {
            if let t = graph.constants[name] { return t }
            floats(name)
            guard let v = values[name] else { return nil }
            if let t = v.nchw { return t }
            guard let l = v.channelsLast else { return nil }
            let t = l.tensor()
            values[name] = .both(t, l)
            return t
        }
        // A value channels-last with at least `border`, converted (once) where it is not.
        func last(_ name: String, border: Int) throws -> ChannelsLast? {
            floats(name)
            let have = values[name]
            if let l = have?.channelsLast, l.border >= border { return l }
            let l: ChannelsLast
            if let old = have?.channelsLast {
                l = try old.withBorder(border)
            } else {
                guard let t = have?.nchw ?? graph.constants[name] else { return nil }
                l = try ChannelsLast(t, border: max(border, plan.border(name)))
            }
            values[name] = have?.nchw.map { .both($0, l) } ?? .channelsLast(l)
            return l
        }
        // The channels-last output of a step: its slot of the arena where the plan placed it.
        func make(_ name: String, n: Int, h: Int, w: Int, c: Int) throws -> ChannelsLast {
            let border = plan.border(name)
            if let offset = arena.layout.offsets[name],
               arena.layout.sizes[name] == (try? ChannelsLast.byteCount(n: n, h: h, w: w, c: c, border: border)) {
                return try ChannelsLast(n: n, h: h, w: w, c: c, border: border, memory: arena.base + offset)
            }
            return try ChannelsLast(n: n, h: h, w: w, c: c, border: border)
        }
        // A convolution's output as the plan lays it out: bytes of an int8 step, bfloat16 of a
        // bf16 one, else floats; in its slot of the arena where it has one of that size.
        func image(_ name: String, n: Int, h: Int, w: Int, c: Int, halves: Bool = false) throws -> any ChannelsLastImage {
            func slot(_ bytes: Int) -> UnsafeMutableRawPointer? {
                arena.layout.offsets[name].flatMap { arena.layout.sizes[name] == bytes ? arena.base + $0 : nil }
            }
            switch plan.layout(of: name) {
            case .quantized(let border, let grid):
                let bytes = try QuantizedActivation.byteCount(n: n, h: h, w: w, c: c, border: border)
                return try QuantizedActivation(n: n, h: h, w: w, c: c, border: border, quantization: grid, memory: slot(bytes))
            case .bfloat16(let border) where halves:
                let bytes = try BF16Activation.byteCount(n: n, h: h, w: w, c: c, border: border)
                return try BF16Activation(n: n, h: h, w: w, c: c, border: border, memory: slot(bytes))
            default:
                return try make(name, n: n, h: h, w: w, c: c)
            }
        }
        // A convolution's input or residual with at least `border`: its bytes where `reads` is
        // `.bytes` (on that grid, if given), its bfloat16 where `.halves`, as they are; else floats.
        func input(_ name: String, border: Int, reads: Reads) throws -> (any ChannelsLastImage)? {
            switch (reads, values[name]) {
            case (.bytes(let grid), .bytes(let q)?) where q.border >= border && (grid == nil || q.quantization == grid): return q
            case (.halves, .halves(let h)?) where h.border >= border: return h
            case (.anything, let value?) where value.image != nil: return value.image
            default: return try last(name, border: border)
            }
        }
        for (position, step) in plan.steps.enumerated() {
            let start = profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            let node = graph.nodes[step.node]
            do {
                switch step.kernel {
                case .direct, .winograd, .grouped:
                    values[step.output] = try runConv(step, image: { try image($0, n: $1, h: $2, w: $3, c: $4, halves: $5) },
                                                      input: { try input(step.input!, border: $0, reads: $1) },
                                                      residual: { reads in try step.epilogue?.residual.flatMap { try input($0, border: 0, reads: reads) } },
                                                      shortcut: { try input($0, border: $1, reads: $2) })
                case .maxPool(let window):
                    // Bytes or bfloat16 pooled as they are where the plan keeps the output so; else floats.
                    let x: any ChannelsLastImage
                    switch (values[step.input!], plan.layout(of: step.output)) {
                    case (.bytes(let q)?, .quantized(_, let grid)) where grid == q.quantization: x = q
                    case (.halves(let h)?, .bfloat16): x = h
                    default:
                        guard let l = try last(step.input!, border: 0) else { throw GraftError(.badInput, "input '\(step.input!)' is missing") }
                        x = l
                    }
                    let (out, _) = window.resolve(input: [x.h, x.w])
                    guard out[0] > 0, out[1] > 0 else {
                        throw GraftError(.badInput, "input [\(x.n), \(x.c), \(x.h), \(x.w)] is smaller than the \(window.kernel[0])×\(window.kernel[1]) window")
                    }
                    let y = x is ChannelsLast ? try make(step.output, n: x.n, h: out[0], w: out[1], c: x.c)
                        : try image(step.output, n: x.n, h: out[0], w: out[1], c: x.c, halves: true)
                    ChannelsLastPool.max(x, window: window, into: y)
                    values[step.output] = Value(y)
                case .globalAveragePool:
                    guard let x = try last(step.input!, border: 0) else {
                        throw GraftError(.badInput, "input '\(step.input!)' is missing")
                    }
                    values[step.output] = .nchw(ChannelsLastPool.globalAverage(x))
                case .dense(let kernel):
                    values[step.output] = .nchw(try Self.dense(kernel, step.input.flatMap(value)))
                case .reference:
                    let inputs: [Tensor?] = node.inputs.map { $0.isEmpty ? nil : value($0) }
                    let outputs = try Self.execute(node.op, inputs)
                    for (name, tensor) in zip(node.outputs, outputs) where !name.isEmpty { values[name] = .nchw(tensor) }
                }
            } catch let error as GraftError {
                throw error.atNode(node.name, op: node.op.name)
            }
            if profile != nil {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                profile!.record(step: position, label: label(step), seconds: seconds, flops: flops(step, values))
            }
            for name in plan.releases[position] { values[name] = nil }
        }
        var result: [String: Tensor] = [:]
        for output in graph.outputs { result[output.name] = value(output.name) }
        return result
    }

    /// The arena for `batch`: the last one, or one planned for this batch in its place.
    private func arena(batch: Int) -> Arena {
        if let arena, arena.batch == batch { return arena.memory }
        arena = nil
        let memory = Arena(plan.arena(batch: batch))
        arena = (batch, memory)
        return memory
    }

    /// The op name of a step, with what a convolution absorbed (`Conv+Add+Relu`).
    private func label(_ step: Plan.Step) -> (kind: String, node: String) {
        let node = plan.graph.nodes[step.node]
        switch step.kernel {
        case .direct, .winograd, .grouped:
            return (step.epilogue!.label(node.op.name + (step.summed == nil ? "" : "+Conv+Add")), node.name)
        default:
            return (node.op.name, node.name)
        }
    }

    /// Floating-point operations of a step just run (2 per multiply-add), for convolutions and
    /// matrix products; 0 for the rest.
    private func flops(_ step: Plan.Step, _ values: [String: Value]) -> Double {
        switch step.kernel {
        case .direct, .winograd, .grouped:
            guard let kernel = step.kernel.convolution else { return 0 }
            let multiplyAdds = Double(kernel.multiplyAdds + (step.summed?.kernel.multiplyAdds ?? 0))
            guard let y = values[step.output]?.image else { return 0 }
            return 2 * Double(y.n * y.h * y.w * y.c) * multiplyAdds
        case .dense(let kernel):
            guard let y = values[step.output]?.nchw else { return 0 }
            return 2 * Double(y.elementCount) * Double(kernel.multiplyAdds)
        case .maxPool, .globalAveragePool:
            return 0
        case .reference:
            let node = plan.graph.nodes[step.node]
            guard case .gemm(let a) = node.op, let out = values[node.outputs[0]]?.nchw,
                  let w = node.input(1).flatMap({ plan.graph.constants[$0] ?? values[$0]?.nchw }) else { return 0 }
            return 2 * Double(out.elementCount) * Double(a.transB ? w.shape[1] : w.shape[0])
        }
    }

    /// What a convolution reads as it is, other than floats: an int8 kernel bytes (on its input's
    /// grid, or any for a residual), a bf16 one bfloat16.
    enum Reads {
        case floats
        case bytes(Plan.Quantization?)
        case halves
        /// Whatever the value is (for its size).
        case anything

        /// Whether the kernel reads bfloat16 as it is (and so writes it where the plan says).
        var takesBFloat16: Bool { if case .halves = self { return true } else { return false } }

        init(_ kernel: any ConvolutionKernel, residual: Bool = false) {
            switch kernel {
            case let int8 as Int8Conv: self = .bytes(residual ? nil : int8.input)
            case is BF16Conv, is BF16WinogradConv: self = .halves
            default: self = .floats
            }
        }
    }

    /// A channels-last convolution step, by the kernel its plan chose for the input's size:
    /// `input(border, reads)` gives the input with the border the kernel needs (known once its
    /// size is) in what the kernel reads; `image(name, n, h, w, c, halves)` the output, as the
    /// plan lays it out (bfloat16 only where the kernel writes it); `shortcut(name, border, reads)`
    /// a summed convolution's input.
    private func runConv(_ step: Plan.Step, image: (String, Int, Int, Int, Int, Bool) throws -> any ChannelsLastImage,
                         input: (Int, Reads) throws -> (any ChannelsLastImage)?, residual: (Reads) throws -> (any ChannelsLastImage)?,
                         shortcut: (String, Int, Reads) throws -> (any ChannelsLastImage)?) throws -> Value {
        guard let probe = try input(0, .anything), let kernel = step.kernel.convolution(n: probe.n, h: probe.h, w: probe.w), probe.c == kernel.cin else {
            throw GraftError(.badInput, "input does not fit a convolution over \(step.kernel.convolution?.cin ?? 0) channels")
        }
        let (oh, ow, _) = kernel.outputSize(probe.h, probe.w)
        guard oh > 0, ow > 0 else {
            let size = kernel.window.kernel
            throw GraftError(.badInput, "input [\(probe.n), \(probe.c), \(probe.h), \(probe.w)] is smaller than the \(size[0])×\(size[1]) window")
        }
        let reads = Reads(kernel)
        guard let x = try bordered(for: kernel, { try input($0, reads) }) else { throw GraftError(.internal, "input vanished") }
        let y = try image(step.output, x.n, oh, ow, kernel.cout, reads.takesBFloat16)
        let r = try residual(Reads(kernel, residual: true))
        if let r, r.n != y.n || r.h != oh || r.w != ow || r.c != y.c {
            // Sizes that shape inference left symbolic came out different (the Add broadcasting
            // one term over the other): the convolution alone, then the Add and the ReLU as the
            // ops define them.
            guard !(r is QuantizedActivation), !(y is QuantizedActivation), step.epilogue?.quantizeAfter == nil else {
                throw GraftError(.badInput, "the convolution's output [\(y.n), \(y.c), \(oh), \(ow)] and the value it is added to [\(r.n), \(r.c), \(r.h), \(r.w)] differ in size, which int8 steps do not broadcast")
            }
            let output = try ChannelsLast(n: y.n, h: oh, w: ow, c: y.c, border: 0)
            kernel.run(image: x, into: output, residual: nil, relu: false)
            let residual = try (r as? BF16Activation)?.floats(border: 0) ?? r as! ChannelsLast
            let sum = try Op.add.evaluate([output.tensor(), residual.tensor()])[0]
            return .nchw(step.epilogue?.activation == .relu ? try Op.relu.evaluate([sum])[0] : sum)
        }
        if let summed = step.summed {
            // The other convolution's input, with the border its window needs.
            guard let x2 = try bordered(for: summed.kernel, { try shortcut(summed.input, $0, Reads(summed.kernel)) }),
                  case let (oh2, ow2, _) = summed.kernel.outputSize(x2.h, x2.w), (x2.n, oh2, ow2, x2.c) == (y.n, oh, ow, summed.kernel.cin) else {
                throw GraftError(.badInput, "the inputs of the convolutions added do not give outputs of the same size")
            }
            kernel.run(x, plus: summed.kernel, x2, into: y, relu: step.epilogue?.activation == .relu)
            return Value(y)
        }
        kernel.run(image: x, into: y, residual: r, relu: step.epilogue?.activation == .relu)
        return Value(y)
    }

    /// What `fetch(border)` gives, with the border `kernel`'s window needs at the value's size
    /// (known once it is fetched).
    private func bordered(for kernel: any ConvolutionKernel, _ fetch: (Int) throws -> (any ChannelsLastImage)?) throws -> (any ChannelsLastImage)? {
        guard let probe = try fetch(0) else { return nil }
        let border = kernel.border(h: probe.h, w: probe.w)
        return border > probe.border ? try fetch(border) : probe
    }

    /// `x [M, K]` times the kernel's constant `[K, N]` plus its bias.
    private static func dense(_ kernel: any ConvolutionKernel, _ input: Tensor?) throws -> Tensor {
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
