import GraftCore

/// How an int8 plan reads a quantized (QDQ) model: which convolutions run in 8-bit integers, what
/// each reads, and the `QuantizeLinear → DequantizeLinear` pairs their epilogues absorb.
///
/// A convolution runs in int8 where its input is a `DequantizeLinear` of one scale and zero
/// point (u8 or s8) and its weights lie on a symmetric 8-bit grid (`Int8Conv.grid`: what a folded
/// `DequantizeLinear` of int8 weights leaves). Its input's values are that `DequantizeLinear`'s,
/// on the grid, so quantizing them again with its scale and zero point gives back its integers
/// exactly; where that `DequantizeLinear` reads a `QuantizeLinear` of the same scale and zero
/// point that no step absorbed, the convolution reads the `QuantizeLinear`'s input instead and
/// quantizes it itself (the pair then runs only if something else reads it).
struct QuantizedPatterns {
    let graph: Graph
    let facts: [String: ValueFact]
    let soleConsumer: (String) -> Int?
    let producers: [String: Int]

    /// An int8 convolution's plan: the value it reads, the quantization it applies while reading,
    /// its weights' grid, and why it runs in int8.
    struct Convolution {
        let reads: String
        let quantization: Plan.Quantization
        let grid: Int8Conv.WeightGrid
        let reason: String
    }

    /// The scales the int8 kernels take. They compute the model's arithmetic with its scales
    /// folded together (input × weight over the output's grid, one grid over the next): within
    /// this range such a product of three scales stays within 1e±24, and times an int32 sum
    /// within f32's normal numbers, so the folded arithmetic overflows or underflows nowhere the
    /// model's would not. Outside it (a scale of 1e36 makes the model's own values infinite) the
    /// step runs as the model defines it.
    static let scales: ClosedRange<Float> = 1e-8...1e8

    /// The most values a window may hold for int8: u8 × s8 products (at most 255 · 128 in
    /// magnitude) summed over it, and the zero point's share, stay within int32.
    static let windowValues = Int(Int32.max) / (255 * 128)

    /// The quantization a `QuantizeLinear` or `DequantizeLinear` node applies: one scale within
    /// `scales` and one zero point in its type's range (u8 or s8); nil for any other node or form
    /// (per-axis, other types: those stay f32, as the model says).
    func quantization(_ index: Int) -> Plan.Quantization? {
        let node = graph.nodes[index]
        let quantizes: Bool
        switch node.op {
        case .quantizeLinear: quantizes = true
        case .dequantizeLinear: quantizes = false
        default: return nil
        }
        guard let scale = node.input(1).flatMap({ graph.constants[$0] }), scale.dtype == .float32, scale.elementCount == 1,
              let s = scale.floats.first, Self.scales.contains(s) else { return nil }
        let zero = node.input(2).flatMap { graph.constants[$0] }
        if node.input(2) != nil && zero == nil { return nil }
        // The integer type: the zero point's, else a QuantizeLinear's uint8, a DequantizeLinear's input's.
        let dtype = zero?.dtype ?? (quantizes ? .uint8 : node.input(0).flatMap { facts[$0]?.dtype } ?? .float32)
        guard Reference.quantizedRange(dtype) != nil, (zero?.elementCount ?? 1) == 1 else { return nil }
        return Plan.Quantization(scale: s, zeroPoint: zero.map { Int($0.int64s[0]) } ?? 0, signed: dtype == .int8)
    }

    /// The `QuantizeLinear → DequantizeLinear` pair of one quantization that reads `value` (each
    /// the other's sole reader): its quantization, the `DequantizeLinear`'s output and the two nodes.
    func pair(after value: String) -> (quantization: Plan.Quantization, output: String, nodes: [Int])? {
        guard let q = soleConsumer(value), case .quantizeLinear = graph.nodes[q].op, graph.nodes[q].input(0) == value,
              let quantization = quantization(q), let d = soleConsumer(graph.nodes[q].outputs[0]),
              case .dequantizeLinear = graph.nodes[d].op, graph.nodes[d].input(0) == graph.nodes[q].outputs[0],
              self.quantization(d) == quantization, let output = graph.nodes[d].outputs.first, !output.isEmpty else { return nil }
        return (quantization, output, [q, d])
    }

    /// What an int8 plan makes of a convolution or dense product: an int8 step, or an f32 one
    /// and why.
    enum Decision {
        case int8(Convolution)
        /// Why the step stays f32, with a leading "; f32: " (for its reason).
        case f32(String)

        var convolution: Convolution? {
            if case .int8(let c) = self { return c }
            return nil
        }

        var whyNot: String {
            if case .f32(let why) = self { return why }
            return ""
        }
    }

    /// `node` (a Conv or Gemm with constant weights, as a convolution's `weight` and
    /// `attributes`) in an int8 plan; `grid` its weights' integers and scales where they are
    /// known (a `DequantizeLinear` of int8 constants), else found from the floats. `steps` are
    /// those planned so far: a `DequantizeLinear` that a step absorbed has its output made, and
    /// is read as it is.
    func convolution(_ node: Node, weight: Tensor, grid known: Int8Conv.WeightGrid? = nil, attributes: ConvAttributes,
                     steps: [Plan.Step]) -> Decision {
        if attributes.group != 1 { return .f32("; f32: grouped convolutions have no int8 kernel") }
        if weight.rank >= 2, weight.shape[1...].reduce(1, *) > Self.windowValues {
            return .f32("; f32: its windows of more than \(Self.windowValues) values could overflow int8's int32 sums")
        }
        guard let x = node.input(0), let d = producers[x], case .dequantizeLinear = graph.nodes[d].op else {
            return .f32("; f32: its input is not a DequantizeLinear's")
        }
        guard let quantization = quantization(d) else {
            return .f32("; f32: its input's DequantizeLinear is not one u8/s8 scale (within 1e-8…1e8) and zero point")
        }
        guard let grid = known ?? Int8Conv.grid(weight) else { return .f32("; f32: its weights are not on a symmetric 8-bit grid") }
        guard grid.scales.allSatisfy({ $0 == 0 || Self.scales.contains($0) }) else {
            return .f32("; f32: its weights' scales are outside 1e-8…1e8, where the int8 kernels' folded arithmetic could overflow")
        }
        var reads = x
        // The pair's QuantizeLinear input, where no step made the DequantizeLinear's output.
        if let source = graph.nodes[d].input(0), let q = producers[source], case .quantizeLinear = graph.nodes[q].op,
           self.quantization(q) == quantization, let input = graph.nodes[q].input(0), graph.constants[input] == nil,
           facts[input]?.dtype ?? .float32 == .float32,
           !steps.contains(where: { $0.output == x && $0.kernel.choice != .reference }) {
            reads = input
        }
        let type = quantization.signed ? "s8" : "u8"
        let scales = Set(grid.scales).count == 1 ? "per tensor" : "per channel"
        return .int8(Convolution(reads: reads, quantization: quantization, grid: grid,
                                 reason: "\(type) activations × s8 weights (\(scales)), VNNI products, the output's quantization in the epilogue"))
    }
}
