import GraftCore

/// Everything the runtime decides about a graph once, as a value: the steps in order, the kernel,
/// precision and epilogue of each, the layout of every value, the values that die after each
/// step, and the weights packed for the kernels. `Planner` makes it; a `Session` runs it, and
/// any number of sessions can run one plan at once.
///
/// A new kernel or precision is a new case of `Kernel` or `Precision` and the planner's rule
/// that picks it.
public struct Plan: @unchecked Sendable {
    /// The number format a step computes in.
    public enum Precision: String, Sendable, CaseIterable {
        case f32
        /// bfloat16 products with f32 sums (AVX512_BF16): weights rounded once, activations as
        /// they are read (or stored in bfloat16 where only bf16 products read them); epilogues
        /// and everything else in f32.
        case bf16
        /// 8-bit products with int32 sums (AVX512_VNNI) for the convolutions of a quantized (QDQ)
        /// model: s8 weights, u8 activations (quantized once per step, or passed as bytes between
        /// int8 steps), the output's quantization applied in the epilogue; everything else as the
        /// model says, in f32.
        case int8
    }

    /// A `QuantizeLinear`'s scale and zero point (one for the whole tensor) and its type.
    public struct Quantization: Sendable, Equatable {
        public var scale: Float
        public var zeroPoint: Int
        /// int8 (else uint8).
        public var signed: Bool

        public init(scale: Float, zeroPoint: Int, signed: Bool) {
            (self.scale, self.zeroPoint, self.signed) = (scale, zeroPoint, signed)
        }
    }

    /// How a value's elements are laid out in memory.
    public enum Layout: Sendable, Equatable {
        /// `[N, C, H, W]`, as the graph's tensors are.
        case nchw
        /// `[N, H, W, C]` with a zero border of `border` pixels around each image, which the
        /// convolutions reading it use as padding.
        case channelsLast(border: Int)
        /// `channelsLast`'s layout in bytes: each value's integer on the grid of an int8 step's
        /// output, for int8 steps to read (the border holds the zero point's byte).
        case quantized(border: Int, Quantization)
        /// `channelsLast`'s layout in bfloat16, for bf16 steps to read (a bf16 product rounds
        /// its operands to bfloat16 anyway); the border holds zeros.
        case bfloat16(border: Int)
    }

    /// What a step applies to its product before storing it, in order.
    public struct Epilogue: Sendable, Equatable {
        public enum Activation: String, Sendable { case relu }

        /// A per-output-channel bias.
        public var bias: Bool
        /// A value of the output's shape added (a ResNet block's shortcut): its name.
        public var residual: String?
        public var activation: Activation?
        /// For an int8 step: the output's `QuantizeLinear → DequantizeLinear` (rounding to its
        /// grid) applied before the residual, and the one applied last.
        public var quantizeBefore: Quantization?
        public var quantizeAfter: Quantization?

        public init(bias: Bool, residual: String?, activation: Activation?, quantizeBefore: Quantization? = nil,
                    quantizeAfter: Quantization? = nil) {
            (self.bias, self.residual, self.activation) = (bias, residual, activation)
            (self.quantizeBefore, self.quantizeAfter) = (quantizeBefore, quantizeAfter)
        }

        /// The grid the output ends on (that bytes of it would hold): `quantizeAfter`, or
        /// `quantizeBefore` where nothing follows it; nil where it ends on none.
        var lastGrid: Quantization? { quantizeAfter ?? (residual == nil && activation == nil ? quantizeBefore : nil) }

        /// `Conv+Add+Relu`, as profiles name a fused convolution.
        func label(_ op: String) -> String {
            op + (quantizeBefore != nil ? "+QDQ" : "") + (residual != nil ? "+Add" : "") + (activation == .relu ? "+Relu" : "")
                + (quantizeAfter != nil ? "+QDQ" : "")
        }
    }

    /// The algorithm a step runs, with what it prepared (packed weights).
    enum Kernel {
        /// A convolution channels-last, as a product whose rows are read in place from the
        /// bordered input (a grouped one that `grouped` does not take strip by strip over its
        /// groups' input channels).
        case direct(any ConvolutionKernel)
        /// A 3×3 convolution by Winograd's F(2×2, 3×3), falling back to `direct` at sizes where
        /// it does not pay (`WinogradConv.worthIt`); its weights are transformed on first use.
        case winograd(any ConvolutionKernel, LazyWinograd)
        /// A grouped convolution channels-last, only each group's own products.
        case grouped(GroupedConv)
        /// `Gemm` with constant weights (a classifier), as a 1×1 convolution over its rows.
        case dense(any ConvolutionKernel)
        /// Max pooling over a channels-last value.
        case maxPool(Window)
        /// Global average pooling of a channels-last value, to NCHW.
        case globalAveragePool
        /// The node's op on NCHW tensors: a fast kernel where one exists (`Session.execute`),
        /// else the reference evaluator.
        case reference

        /// A channels-last convolution step's kernel whatever the size (a Winograd step's
        /// direct product: the same channels, window and multiply-adds); nil for the others.
        var convolution: (any ConvolutionKernel)? {
            switch self {
            case .direct(let kernel), .winograd(let kernel, _): return kernel
            case .grouped(let kernel): return kernel
            case .dense, .maxPool, .globalAveragePool, .reference: return nil
            }
        }

        /// The convolution a channels-last step runs on an input of `n` images of `h`×`w`:
        /// Winograd's method where it pays at that size.
        func convolution(n: Int, h: Int, w: Int) -> (any ConvolutionKernel)? {
            if case .winograd(_, let winograd) = self, winograd.worthIt(n, h, w) { return winograd.conv }
            return convolution
        }

        var choice: KernelChoice {
            switch self {
            case .direct: return .direct
            case .winograd: return .winograd
            case .grouped: return .grouped
            case .dense: return .dense
            case .maxPool: return .maxPool
            case .globalAveragePool: return .globalAveragePool
            case .reference: return .reference
            }
        }
    }

    /// The kernel of a step, by name.
    public enum KernelChoice: String, Sendable, CaseIterable {
        case direct, winograd, grouped, dense, maxPool, globalAveragePool, reference
    }

    /// A second convolution whose products a step sums into its own before the epilogue (a
    /// ResNet block's downsampling shortcut, added to the block's last convolution): neither
    /// output is stored on its own.
    public struct Summed: @unchecked Sendable {
        /// The convolution's node, and the value it reads.
        public let node: Int
        public let input: String
        let kernel: any ConvolutionKernel
    }

    /// One step of the run: a node, or a convolution with the nodes it absorbed.
    public struct Step: @unchecked Sendable {
        /// The node the step runs (a convolution's, for a fused step).
        public let node: Int
        /// Every node the step stands for: a convolution, then the `Add` and `Relu` it absorbed
        /// (with a summed convolution, that one before the `Add`).
        public let nodes: [Int]
        /// The value the step reads (its first input); nil for a step that reads none.
        public let input: String?
        /// The value the step makes (for a fused step, the last absorbed node's output).
        public let output: String
        let kernel: Kernel
        /// The epilogue of a convolution or dense step; nil for the others.
        public let epilogue: Epilogue?
        public let precision: Precision
        /// Why the planner chose the kernel, for people reading a plan.
        public let reason: String
        /// The kernel that runs at the planned batch (a Winograd step runs `direct` at sizes
        /// where Winograd does not pay).
        public let kernelChoice: KernelChoice
        /// The convolution whose products a direct step adds to its own; nil for the others.
        public let summed: Summed?

        init(node: Int, nodes: [Int], input: String?, output: String, kernel: Kernel, epilogue: Epilogue?,
             precision: Precision, reason: String, choice: KernelChoice? = nil, summed: Summed? = nil) {
            self.summed = summed
            self.node = node
            self.nodes = nodes
            self.input = input
            self.output = output
            self.kernel = kernel
            self.epilogue = epilogue
            self.precision = precision
            self.reason = reason
            kernelChoice = choice ?? kernel.choice
        }
    }

    /// The graph the plan runs.
    public let graph: Graph
    public let steps: [Step]
    /// For each step, the values that die after it.
    public let releases: [[String]]
    /// The layout each value is made in: channels-last with its border for those the planner
    /// made so; values not listed are NCHW.
    public let layouts: [String: Layout]
    /// The batch the weights were packed for (the model's own, or 1 where it is symbolic).
    public let plannedBatch: Int
    /// Each value's shape where shape inference knows it, the batch left symbolic.
    let shapes: [String: Shape]
    /// Whether a batch may run as smaller ones (`Planner.splitsBatch`).
    public let splitsBatch: Bool

    /// The layout of `value`.
    public func layout(of value: String) -> Layout { layouts[value] ?? .nchw }

    /// The zero border a channels-last value is made with (0 for NCHW values).
    func border(_ value: String) -> Int {
        switch layouts[value] {
        case .channelsLast(let border)?, .quantized(let border, _)?, .bfloat16(let border)?: return border
        default: return 0
        }
    }

    /// Where each channels-last activation lives in one buffer at `batch`: values whose
    /// lifetimes overlap get disjoint bytes.
    public func arena(batch: Int) -> ActivationArena {
        var lifetimes: [ActivationArena.Lifetime] = []
        var lastUse: [String: Int] = [:]
        for (position, names) in releases.enumerated() { for name in names { lastUse[name] = position } }
        for (position, step) in steps.enumerated() {
            let size: (Int, Int, Int, Int, Int) throws -> Int
            switch layout(of: step.output) {
            case .channelsLast: size = ChannelsLast.byteCount
            case .quantized: size = QuantizedActivation.byteCount
            case .bfloat16: size = BF16Activation.byteCount
            case .nchw: continue
            }
            guard let shape = shapes[step.output], shape.rank == 4, let c = shape.dims[1].value, let h = shape.dims[2].value,
                  let w = shape.dims[3].value, shape.dims[0].value.map({ $0 == batch }) ?? true,
                  let bytes = try? size(batch, h, w, c, border(step.output)) else { continue }
            lifetimes.append(.init(value: step.output, bytes: bytes, first: position, last: lastUse[step.output] ?? steps.count))
        }
        return ActivationArena(lifetimes)
    }

    /// The bytes of the activation arena at the planned batch.
    public var peakActivationBytes: Int { arena(batch: plannedBatch).byteCount }

    /// The images a batch of `batch` runs at a time: the largest divisor of it whose activations
    /// stay within the cache (`CacheBudget.activations`), so that each layer's output is still
    /// there when the next one reads it; all of it where the plan cannot split a batch.
    /// (ResNet-50 on 2 threads, batch 8: 8 % faster in f32 and 15 % in bf16 as four batches of 2.)
    public func subBatch(for batch: Int, budget: Int = CacheBudget.standard.activations) -> Int {
        guard splitsBatch, batch > 1 else { return batch }
        return (1...batch).reversed().first { batch % $0 == 0 && ($0 == 1 || arena(batch: $0).byteCount <= budget) } ?? 1
    }
}

/// Winograd's transformed weights of a convolution, made on first use (sizes where the method
/// does not pay never need them) by whichever session asks first: f32's, or bf16's.
final class LazyWinograd: @unchecked Sendable {
    private let once = Once<any ConvolutionKernel>()
    private let make: () -> any ConvolutionKernel
    /// Whether the method pays for `n` images of `h`×`w`, in either precision.
    let worthIt: (Int, Int, Int) -> Bool = WinogradConv.worthIt

    init(weight: Tensor, bias: Tensor?, precision: Plan.Precision = .f32) throws {
        switch precision {
        case .f32:
            make = { WinogradConv(weight: weight, bias: bias) }
        case .int8:
            throw GraftError(.internal, "int8 convolutions have no Winograd kernel")
        case .bf16:
            // Made now, to refuse here what it cannot run; it transforms its weights at once.
            let conv = try BF16WinogradConv(weight: weight, bias: bias)
            make = { conv }
        }
    }

    var conv: any ConvolutionKernel { once.value { make() } }
}

extension Plan.Precision {
    /// The fastest precision this processor runs `graph` at (`--precision auto`): int8 for a
    /// quantized model (one with a `DequantizeLinear`) on a processor with AVX512_VNNI; else bf16
    /// where the processor has AVX512_BF16, as OpenVINO's default picks it on such processors;
    /// else f32.
    public static func fastest(for graph: Graph) -> Plan.Precision {
        let quantized = graph.nodes.contains { if case .dequantizeLinear = $0.op { return true }; return false }
        if quantized && MicroKernel.supportsVNNI { return .int8 }
        return MicroKernel.supportsBF16 ? .bf16 : .f32
    }
}
