import CKernels
import GraftCore

/// A convolution over channels-last activations computed in bfloat16 with f32 sums (AVX512_BF16's
/// `vdpbf16ps`): the same inputs and outputs as `ChannelsLastConv`, each product of a weight and
/// an activation taken after rounding both to bfloat16 (8 significant bits, round to nearest even).
///
/// The kernel reads each window in pairs of consecutive values (`vdpbf16ps` multiplies a pair by
/// a pair and adds both products to one f32 lane); an odd `k` ends with a zero. The window's
/// order, the k-blocks and the tile loop are `LaneProduct`'s; the activations of a tile are
/// converted to bfloat16 one k-block at a time as their windows are gathered.
final class BF16Conv {
    let product: LaneProduct
    /// The bfloat16 weights in `LaneProduct`'s order, each word a k-pair of one column (value 2t
    /// in the low half, 2t + 1 in the high one), zero past `cout` and past `k`.
    private let weights: UnsafeMutablePointer<UInt32>
    /// The bias padded to whole strips.
    private let bias: FloatBuffer?

    /// Output channels per strip and output pixels per kernel call.
    static let columns = LaneProduct.columns, rowCount = LaneProduct.rowCount
    /// Pairs per k-block at most.
    static let blockPairs = LaneProduct.blockWords

    /// Packs the weights `[Cout, Cin, kH, kW]` (float32) to bfloat16.
    /// - Throws: `GraftError` where the processor lacks AVX512_BF16 (the kernels would stop it
    ///   with an illegal instruction), for a grouped convolution, or for weights or a bias that
    ///   are not float32 of matching sizes.
    init(weight: Tensor, bias: Tensor?, attributes: ConvAttributes, processorHasBF16: Bool = MicroKernel.supportsBF16) throws {
        try Self.requireBF16(processorHasBF16)
        let product = try LaneProduct(weight: weight, attributes: attributes, perWord: 2, precision: "bf16")
        self.product = product
        guard weight.dtype == .float32, bias.map({ $0.dtype == .float32 && $0.elementCount == weight.shape[0] }) ?? true else {
            throw GraftError(.badInput, "expected float32 weights [Cout, Cin, kH, kW] and a bias of Cout floats, got \(weight.dtype) \(weight.shape)", op: "Conv")
        }
        self.bias = bias.map { FloatBuffer($0, paddedTo: product.strips * Self.columns) }
        // The floats laid out in the kernel's order first, then converted in one pass by the
        // same instruction as the activations.
        let count = product.packedCount
        let staged = FloatBuffer(zeros: count)
        weight.withUnsafeBufferPointer(as: Float.self) { w in product.layOut { staged.base[$0] = w[$1] } }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: count * 2, alignment: 64)
        graft_avx512bf16_convert(staged.base, count, packed.bindMemory(to: UInt16.self, capacity: count))
        weights = packed.bindMemory(to: UInt32.self, capacity: count / 2)
    }

    deinit { weights.deallocate() }

    /// - Throws: `GraftError` unless the processor has AVX512_BF16 (the kernels would stop it with
    ///   an illegal instruction).
    static func requireBF16(_ processorHasBF16: Bool) throws {
        guard processorHasBF16 else {
            throw GraftError(.invalidArgument, "bf16 convolutions need a processor with AVX512_BF16 (avx512_bf16 in /proc/cpuinfo's flags), which this one lacks: run in f32", op: "Conv")
        }
    }

    /// `y = relu?(conv(x) + bias + residual?)` with bfloat16 products; `y` has the output size
    /// and `x` a border at least the pads. Each of `x`, `y` and the residual may hold floats or
    /// bfloat16 (`BF16Activation`): read as they are (bfloat16 windows copied, floats converted
    /// as gathered), and the output stored in its own type.
    func run(image x: any ChannelsLastImage, into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?, relu: Bool) {
        LaneProduct.run([term(x, into: y, residual: residual, relu: relu)], into: y, residual: residual)
    }

    func run(_ x: ChannelsLast, into y: ChannelsLast, residual: ChannelsLast?, relu: Bool) {
        run(image: x, into: y, residual: residual, relu: relu)
    }

    /// `y = relu?(conv(x) + other(x2) + bias)`: the other convolution's products summed into
    /// this one's before the epilogue (`sums(with:)` says which it takes); the values of either
    /// element type, as `run(image:into:residual:relu:)` takes them.
    func run(_ x: any ChannelsLastImage, plus other: BF16Conv, _ x2: any ChannelsLastImage, into y: any ChannelsLastImage, relu: Bool) {
        precondition(other.bias == nil)
        LaneProduct.run([term(x, into: y, residual: nil, relu: relu), other.term(x2, into: y, residual: nil, relu: relu)], into: y, residual: nil)
    }

    /// This convolution over `x` into `y` as a term of `LaneProduct.run`: its gather copies
    /// bfloat16 windows or converts floats, its product adds the bias on the first block and
    /// the residual and ReLU on the last, storing `y`'s type there.
    private func term(_ x: any ChannelsLastImage, into y: any ChannelsLastImage, residual: (any ChannelsLastImage)?, relu: Bool) -> LaneProduct.Term {
        let (weights, bias, runLength) = (UnsafePointer(self.weights), self.bias.map { UnsafePointer($0.base) }, product.runLength)
        let halves = x.pixels.elementSize == 2, outputHalves = y.pixels.elementSize == 2, residualHalves = residual?.pixels.elementSize == 2
        func rows<T>(_ p: UnsafePointer<UnsafeRawPointer>, _: T.Type) -> UnsafePointer<UnsafePointer<T>> {
            UnsafeRawPointer(p).assumingMemoryBound(to: UnsafePointer<T>.self)
        }
        return LaneProduct.Term(product: product, input: x, weights: UnsafeRawPointer(weights), gather: { count, pixels, offsets, first, length, a, pitch in
            a.withMemoryRebound(to: UInt16.self, capacity: 2 * count * pitch) {
                if halves {
                    graft_avx512bf16_gather(count, rows(pixels, UInt16.self), offsets, runLength, first, length, $0, 2 * pitch)
                } else {
                    graft_avx512bf16_pack(count, rows(pixels, Float.self), offsets, runLength, first, length, $0, 2 * pitch)
                }
            }
        }, multiply: { words, a, pitch, strip, outs, sums, column, count, columns, first, last, residuals, fetch, step in
            let sums = UnsafeRawPointer(sums).assumingMemoryBound(to: UnsafePointer<Float>.self)
            graft_avx512bf16_rows(words, a, pitch, weights + strip, outs, sums, column, count, columns, !first,
                                  first ? bias.map { $0 + column } : nil, last ? residuals : nil, residualHalves, last && relu,
                                  last && outputHalves, fetch.base, fetch.perCall, step)
        })
    }
}

extension BF16Conv: ConvolutionKernel {
    func sums(with other: any ConvolutionKernel) -> Bool {
        guard let other = other as? BF16Conv else { return false }
        return other.cout == cout && other.bias == nil
    }

    func run(_ x: any ChannelsLastImage, plus other: any ConvolutionKernel, _ x2: any ChannelsLastImage, into y: any ChannelsLastImage, relu: Bool) {
        run(x, plus: other as! BF16Conv, x2, into: y, relu: relu)
    }

    var cin: Int { product.cin }
    var cout: Int { product.cout }
    var window: Window { product.window }
    var multiplyAdds: Int { product.k }
    func border(h: Int, w: Int) -> Int { product.outputSize(h, w).2.max() ?? 0 }
}
