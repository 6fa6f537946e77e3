import GraftCore
import GraftRuntime

/// Post-training static quantization into ONNX's QDQ form, the form ONNX Runtime's and
/// OpenVINO's quantizers write and both run with int8 kernels.
///
/// Every `Conv` and `Gemm` with constant float weights is quantized: its weights to symmetric
/// int8 (one scale per output channel, or one for the tensor), stored as int8 constants read
/// through a `DequantizeLinear`; its bias to int32 at the scale of input × weight; and the
/// activation it reads goes through a `QuantizeLinear` → `DequantizeLinear` pair whose scale and
/// zero point come from the ranges that activation took over the calibration inputs. Everything
/// else stays float. Quantize the optimized graph (batch norms folded into their convolutions),
/// so the folded weights are what gets rounded.
public struct Quantizer: Sendable {
    /// How an activation's range is chosen from what calibration saw.
    public enum Method: String, CaseIterable, Sendable {
        /// The smallest and largest values seen (with 0 inside).
        case minmax
        /// The values at `percentile` and 100 − `percentile` of the distribution seen: a few
        /// outliers do not widen the step for everything else.
        case percentile
        /// The clipping threshold whose quantized distribution loses the least information
        /// (Kullback–Leibler divergence from the histogram seen), as TensorRT's calibrator does.
        case entropy
    }

    /// The integer type of activations: uint8 with a zero point (asymmetric), or int8 around 0.
    public enum Activations: String, CaseIterable, Sendable {
        case u8, s8

        var dtype: DType { self == .u8 ? .uint8 : .int8 }
    }

    public var method: Method = .minmax
    /// One weight scale per output channel (else one per tensor).
    public var perChannel = true
    public var activations: Activations = .u8
    /// For `percentile`: the share of values inside the range, in percent.
    public var percentile = 99.999

    public init() {}

    /// What a quantization did, for people.
    public struct Report: Sendable {
        /// The `Conv` and `Gemm` nodes quantized.
        public var quantizedNodes: [String]
        /// Each quantized activation's range, in the graph's order.
        public var ranges: [(name: String, range: ClosedRange<Float>)]
        /// Calibration inputs run (batch elements).
        public var samples: Int
    }

    /// The QDQ graph of `graph`, with activation ranges from running it on `calibration` (each
    /// tensor a batch for the graph's single input).
    ///
    /// - Throws: `GraftError` when the graph has no quantizable node, does not have one input, or
    ///   a calibration batch does not fit it.
    public func quantize(_ graph: Graph, calibration: [Tensor]) throws -> (Graph, Report) {
        let targets = quantizable(graph)
        guard !targets.isEmpty else {
            throw GraftError(.badInput, "the model has no Conv or Gemm with constant float weights to quantize")
        }
        guard graph.inputs.count == 1 else {
            throw GraftError(.badInput, "quantization calibrates a model with one input; this one has \(graph.inputs.count)")
        }
        guard !calibration.isEmpty else { throw GraftError(.invalidArgument, "no calibration input was given") }
        let tensors = quantizedTensors(graph, targets: targets)
        let ranges = try calibrate(graph, activations: tensors.map(\.name), batches: calibration)
        let quantized = try rewrite(graph, targets: targets, tensors: tensors, ranges: ranges)
        let report = Report(quantizedNodes: targets.map { graph.nodes[$0].name },
                            ranges: tensors.map { ($0.name, ranges[$0.name]!) },
                            samples: calibration.reduce(0) { $0 + ($1.shape.first ?? 1) })
        return (quantized, report)
    }

    // MARK: - What is quantized

    /// The nodes to quantize, in graph order: `Conv` with constant float weights (and bias) and
    /// `Gemm` with a constant float B (alpha 1, A not transposed, C a constant row or absent).
    func quantizable(_ graph: Graph) -> [Int] {
        func constant(_ name: String?) -> Tensor? { name.flatMap { graph.constants[$0] }.flatMap { $0.dtype == .float32 ? $0 : nil } }
        return graph.nodes.indices.filter { i in
            let node = graph.nodes[i]
            guard node.inputs.count >= 2, !node.inputs[0].isEmpty else { return false }
            switch node.op {
            case .conv:
                guard let w = constant(node.inputs[1]), w.rank == 4 else { return false }
                return node.input(2).map { constant($0)?.elementCount == w.shape[0] } ?? true
            case .gemm(let a):
                guard a.alpha == 1, !a.transA, let w = constant(node.inputs[1]), w.rank == 2 else { return false }
                let n = a.transB ? w.shape[0] : w.shape[1]
                return node.input(2).map { c in a.beta == 1 && constant(c).map { $0.elementCount == n && $0.shape.last == n } == true } ?? true
            default:
                return false
            }
        }
    }

    // MARK: - Calibration

    /// Each activation's range over the calibration batches, by `method`.
    func calibrate(_ graph: Graph, activations: [String], batches: [Tensor]) throws -> [String: ClosedRange<Float>] {
        var probe = graph
        let facts = (try? graph.inferShapes()) ?? [:]
        let existing = Set(graph.outputs.map(\.name))
        for name in activations where !existing.contains(name) {
            probe.outputs.append(ValueInfo(name: name, dtype: .float32, shape: facts[name]?.shape ?? Shape([Dim]())))
        }
        let model = try CompiledModel(probe, optimize: false)
        let input = graph.inputs[0].name
        func run(_ body: (String, UnsafeBufferPointer<Float>) -> Void) throws {
            for batch in batches {
                let outputs = try model.run([input: batch])
                for name in activations {
                    guard let t = outputs[name], t.dtype == .float32 else {
                        throw GraftError(.internal, "calibration did not produce activation '\(name)'")
                    }
                    t.withUnsafeBufferPointer(as: Float.self) { body(name, $0) }
                }
            }
        }
        var low: [String: Float] = [:], high: [String: Float] = [:]
        try run { name, values in
            var lo = low[name] ?? 0, hi = high[name] ?? 0
            for v in values where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
            (low[name], high[name]) = (lo, hi)
        }
        if method == .minmax { return activations.reduce(into: [:]) { $0[$1] = low[$1]!...high[$1]! } }
        // A histogram over each activation's whole range, then the range the method picks.
        var histograms: [String: Histogram] = [:]
        for name in activations { histograms[name] = Histogram(low: low[name]!, high: high[name]!) }
        try run { name, values in histograms[name]!.add(values) }
        return activations.reduce(into: [:]) { ranges, name in
            let h = histograms[name]!
            ranges[name] = method == .percentile ? h.percentileRange(percentile) : h.entropyRange(levels: self.activations == .u8 && h.low >= 0 ? 256 : 128)
        }
    }

    // MARK: - Scales

    /// The scale and zero point of an activation whose values lie in `range`.
    func activationParameters(_ range: ClosedRange<Float>) -> (scale: Float, zeroPoint: Float) {
        let lo = min(range.lowerBound, 0), hi = max(range.upperBound, 0)
        switch activations {
        case .u8:
            let scale = hi > lo ? (hi - lo) / 255 : 1
            return (scale, min(max((-lo / scale).rounded(.toNearestOrEven), 0), 255))
        case .s8:
            let m = max(-lo, hi)
            return (m > 0 ? m / 127 : 1, 0)
        }
    }

    // MARK: - The QDQ graph

    /// A float activation that gets a QuantizeLinear → DequantizeLinear pair: `name` is what the
    /// readers read; `source` is what the QuantizeLinear reads (a `Relu`'s input, where the Relu
    /// is dropped because a uint8 zero point of 0 clips the same values).
    struct QuantizedTensor: Equatable {
        var name: String
        var source: String
        /// The node after which the pair goes (nil: the graph's input, at the start).
        var after: Int?
    }

    /// The ops whose float activations (inputs and outputs) are quantized, as ONNX Runtime's
    /// quantizer does for a ResNet: the int8 kernels of ONNX Runtime and OpenVINO fuse a
    /// DequantizeLinear → op → QuantizeLinear group.
    static func quantizesActivations(_ op: Op) -> Bool {
        switch op {
        case .conv, .gemm, .add, .maxPool, .averagePool, .globalAveragePool: return true
        default: return false
        }
    }

    /// The activations to quantize, in the order their pairs go into the graph: every float,
    /// non-constant input and output of the ops that quantize their activations, except the
    /// graph's outputs (left float).
    func quantizedTensors(_ graph: Graph, targets: [Int]) -> [QuantizedTensor] {
        var producer: [String: Int] = [:], consumers: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() {
            for o in node.outputs where !o.isEmpty { producer[o] = i }
            for x in node.inputs where !x.isEmpty { consumers[x, default: []].append(i) }
        }
        let outputs = Set(graph.outputs.map(\.name))
        let targetSet = Set(targets)
        var wanted = Set<String>()
        for (i, node) in graph.nodes.enumerated() {
            let quantizes: Bool
            switch node.op {
            case .conv, .gemm: quantizes = targetSet.contains(i)
            default: quantizes = Self.quantizesActivations(node.op)
            }
            guard quantizes else { continue }
            let activations = (targetSet.contains(i) ? [node.inputs[0]] : node.inputs) + node.outputs
            for name in activations where !name.isEmpty && graph.constants[name] == nil && !outputs.contains(name) {
                wanted.insert(name)
            }
        }
        var list: [QuantizedTensor] = []
        for input in graph.inputs where wanted.contains(input.name) && input.dtype == .float32 {
            list.append(QuantizedTensor(name: input.name, source: input.name, after: nil))
        }
        for (i, node) in graph.nodes.enumerated() {
            for o in node.outputs where wanted.contains(o) {
                list.append(QuantizedTensor(name: o, source: o, after: i))
            }
            // A Relu between two quantized values, the sole reader of its input: with uint8
            // activations the pair of its output clips the negatives itself, so the Relu goes
            // and the pair reads the Relu's input.
            guard activations == .u8, node.op == .relu, let x = node.input(0), let out = node.outputs.first,
                  !outputs.contains(out), !outputs.contains(x), consumers[x]?.count == 1, let p = producer[x],
                  Self.quantizesActivations(graph.nodes[p].op),
                  (consumers[out] ?? []).contains(where: { Self.quantizesActivations(graph.nodes[$0].op) }) else { continue }
            list.removeAll { $0.name == x || $0.name == out }
            list.append(QuantizedTensor(name: out, source: x, after: i))
        }
        return list
    }

    private func rewrite(_ graph: Graph, targets: [Int], tensors: [QuantizedTensor], ranges: [String: ClosedRange<Float>]) throws -> Graph {
        var names = Set(graph.constants.keys).union(graph.inputs.map(\.name))
        for node in graph.nodes { names.insert(node.name); names.formUnion(node.outputs) }
        func fresh(_ base: String) -> String {
            var name = base, n = 1
            while names.contains(name) { n += 1; name = "\(base)_\(n)" }
            names.insert(name)
            return name
        }
        var out = graph
        out.nodes = []
        var renamed: [String: String] = [:]   // activation → its DequantizeLinear output
        var scales: [String: Float] = [:]
        func pair(_ t: QuantizedTensor, scope: ModuleScope?) {
            let (scale, zero) = activationParameters(ranges[t.name]!)
            scales[t.name] = scale
            let s = fresh(t.name + "_scale"), z = fresh(t.name + "_zero_point")
            out.setConstant(s, Tensor(scalar: scale))
            out.setConstant(z, integerTensor([zero], shape: [], dtype: activations.dtype))
            let q = fresh(t.name + "_quantized"), dq = fresh(t.name + "_dequantized")
            out.nodes.append(Node(name: fresh(t.name + "_QuantizeLinear"), op: .quantizeLinear(axis: 1), inputs: [renamed[t.source] ?? t.source, s, z],
                                  outputs: [q], scope: scope))
            out.nodes.append(Node(name: fresh(t.name + "_DequantizeLinear"), op: .dequantizeLinear(axis: 1), inputs: [q, s, z], outputs: [dq], scope: scope))
            renamed[t.name] = dq
        }
        let targetSet = Set(targets)
        let dropped = Set(tensors.filter { $0.source != $0.name }.compactMap(\.after))
        for t in tensors where t.after == nil { pair(t, scope: nil) }
        for (index, node) in graph.nodes.enumerated() {
            defer { for t in tensors where t.after == index { pair(t, scope: node.scope) } }
            if dropped.contains(index) { continue }
            var rewired = node
            rewired.inputs = node.inputs.map { renamed[$0] ?? $0 }
            guard targetSet.contains(index) else { out.nodes.append(rewired); continue }
            // The weights: int8, symmetric, per output channel (axis 0 of a Conv's and of a
            // transposed Gemm's B, axis 1 of a plain Gemm's B).
            let wName = node.inputs[1], w = graph.constants[wName]!
            var axis = 0
            if case .gemm(let a) = node.op, !a.transB { axis = 1 }
            let (q, weightScales) = quantizeWeights(w, axis: axis)
            let wq = fresh(wName + "_quantized"), ws = fresh(wName + "_scale"), wz = fresh(wName + "_zero_point"), wd = fresh(wName + "_dequantized")
            out.setConstant(wq, q)
            let perSlice = weightScales.count > 1
            out.setConstant(ws, perSlice ? Tensor(shape: [weightScales.count], floats: weightScales) : Tensor(scalar: weightScales[0]))
            out.setConstant(wz, integerTensor([Float](repeating: 0, count: weightScales.count), shape: perSlice ? [weightScales.count] : [], dtype: .int8))
            out.nodes.append(Node(name: fresh(wName + "_DequantizeLinear"), op: .dequantizeLinear(axis: axis), inputs: [wq, ws, wz], outputs: [wd], scope: node.scope))
            rewired.inputs[1] = wd
            // The bias: int32 at the scale of input × weight, zero point 0.
            if let bName = node.input(2), let b = graph.constants[bName], let inputScale = scales[node.inputs[0]] {
                let count = b.elementCount
                let bScales = (0..<count).map { inputScale * weightScales[perSlice ? $0 : 0] }
                let values = b.floats
                var bq = Tensor(zeros: b.shape, dtype: .int32)
                bq.withUnsafeMutableBufferPointer(as: Int32.self) { dst in
                    for i in 0..<count {
                        let v = (values[i] / bScales[i]).rounded(.toNearestOrEven)
                        dst[i] = v.isFinite ? Int32(min(max(v, -2_147_483_520), 2_147_483_520)) : 0
                    }
                }
                let bqName = fresh(bName + "_quantized"), bs = fresh(bName + "_scale"), bd = fresh(bName + "_dequantized")
                out.setConstant(bqName, bq)
                out.setConstant(bs, Tensor(shape: [count], floats: bScales))
                out.nodes.append(Node(name: fresh(bName + "_DequantizeLinear"), op: .dequantizeLinear(axis: b.rank - 1), inputs: [bqName, bs], outputs: [bd], scope: node.scope))
                rewired.inputs[2] = bd
            }
            out.nodes.append(rewired)
        }
        out.removeUnusedConstants()
        if out.metadata.opset < 13 { out.metadata.opset = 13 }
        return out
    }

    /// `w` as int8 in −127…127 with one scale per slice along `axis` (or one for all), each the
    /// largest magnitude over 127.
    func quantizeWeights(_ w: Tensor, axis: Int) -> (Tensor, [Float]) {
        let shape = w.shape
        let count = perChannel ? shape[axis] : 1
        let inner = perChannel ? shape[(axis + 1)...].reduce(1, *) : w.elementCount
        let values = w.floats
        var largest = [Float](repeating: 0, count: count)
        for (i, v) in values.enumerated() where v.isFinite { largest[(i / inner) % count] = max(largest[(i / inner) % count], abs(v)) }
        let scales = largest.map { $0 > 0 ? $0 / 127 : 1 }
        var q = Tensor(zeros: shape, dtype: .int8)
        q.withUnsafeMutableBufferPointer(as: Int8.self) { dst in
            for (i, v) in values.enumerated() {
                let r = (v / scales[(i / inner) % count]).rounded(.toNearestOrEven)
                dst[i] = r.isFinite ? Int8(min(max(r, -127), 127)) : 0
            }
        }
        return (q, scales)
    }

    private func integerTensor(_ values: [Float], shape: [Int], dtype: DType) -> Tensor {
        var t = Tensor(zeros: shape, dtype: dtype)
        t.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() {
                if dtype == .uint8 { raw.storeBytes(of: UInt8(v), toByteOffset: i, as: UInt8.self) }
                else { raw.storeBytes(of: Int8(v), toByteOffset: i, as: Int8.self) }
            }
        }
        return t
    }
}
