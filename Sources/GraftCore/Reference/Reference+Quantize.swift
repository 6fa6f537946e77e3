/// Linear quantization to 8-bit integers and back, as ONNX's QuantizeLinear and
/// DequantizeLinear define it (and ONNX Runtime computes it: a division, then rounding half to
/// even, then the zero point, then saturation).
extension Reference {
    /// The integer types a value can be quantized to, with their ranges.
    public static func quantizedRange(_ dtype: DType) -> ClosedRange<Float>? {
        switch dtype {
        case .uint8: return 0...255
        case .int8: return -128...127
        default: return nil
        }
    }

    /// Whether a zero point of `zeroPoint`'s shape goes with a scale of `scale`'s: the same shape,
    /// or one value each for the whole tensor, whatever their ranks (ONNX Runtime's quantizer
    /// writes a bias's scale as [1] and its zero point as a scalar).
    static func zeroPointFits(_ zeroPoint: [Int], scale: [Int]) -> Bool {
        zeroPoint == scale || (zeroPoint.reduce(1, *) == 1 && scale.reduce(1, *) == 1)
    }

    /// How a quantization's scale and zero point apply to `shape`: one pair for the whole tensor
    /// (a scalar, or a vector of one), or one per slice along `axis` (a vector of that length).
    /// Returns the number of slices and the elements between consecutive slices' starts.
    static func quantizationSlices(_ shape: [Int], scale: Tensor, zeroPoint: Tensor?, axis: Int, op: String) throws -> (count: Int, inner: Int) {
        guard scale.dtype == .float32 else { throw GraftError(.badInput, "the scale is \(scale.dtype); only float32 is supported", op: op) }
        guard scale.rank <= 1 else { throw GraftError(.badInput, "the scale has shape \(scale.shape); it must be a scalar or a vector", op: op) }
        if let zeroPoint, !zeroPointFits(zeroPoint.shape, scale: scale.shape) {
            throw GraftError(.badInput, "the zero point has shape \(zeroPoint.shape), the scale \(scale.shape); they must match", op: op)
        }
        try checkScales(scale, op: op, zeroAllowed: op == "DequantizeLinear")
        if scale.elementCount == 1 { return (1, shape.reduce(1, *)) }
        let a = try Reference.axis(axis, rank: shape.count, op: op)
        guard scale.elementCount == shape[a] else {
            throw GraftError(.badInput, "\(scale.elementCount) scales for axis \(axis) of \(shape), which has \(shape[a])", op: op)
        }
        return (shape[a], shape[(a + 1)...].reduce(1, *))
    }

    /// - Throws: `GraftError` unless every scale is a positive finite number, or 0 where
    ///   `zeroAllowed` (a DequantizeLinear's 0 makes zeros: exporters write it for pruned
    ///   channels; a QuantizeLinear would divide by it). A negative, NaN or infinite scale
    ///   quantizes nothing meaningful: a model holding one is broken.
    static func checkScales(_ scale: Tensor, op: String, zeroAllowed: Bool) throws {
        guard scale.dtype == .float32 else { return }
        if let (i, s) = scale.floats.enumerated().first(where: { !(($0.element > 0 || zeroAllowed && $0.element == 0) && $0.element.isFinite) }) {
            let which = scale.elementCount == 1 ? "the scale is \(s)" : "scale \(i) is \(s)"
            throw GraftError(.badInput, "\(which); scales must be \(zeroAllowed ? "0 or more" : "positive") and finite", op: op)
        }
    }

    /// The elements of an integer tensor (int8, uint8, int32) as `Int`; nil for other types.
    private static func integers(_ t: Tensor) -> [Int]? {
        switch t.dtype {
        case .uint8: return t.withUnsafeBufferPointer(as: UInt8.self) { $0.map(Int.init) }
        case .int8: return t.withUnsafeBufferPointer(as: Int8.self) { $0.map(Int.init) }
        case .int32: return t.withUnsafeBufferPointer(as: Int32.self) { $0.map(Int.init) }
        default: return nil
        }
    }

    /// The zero points, one per slice (0 without a tensor).
    private static func zeroPoints(_ zeroPoint: Tensor?, count: Int) -> [Int] {
        zeroPoint.flatMap(integers) ?? [Int](repeating: 0, count: count)
    }

    /// `saturate(round(x / scale) + zeroPoint)`; a NaN quantizes to the zero point.
    static func quantizeLinear(_ x: Tensor, scale: Tensor, zeroPoint: Tensor?, axis: Int) throws -> Tensor {
        let op = "QuantizeLinear"
        try requireFloat(x, op)
        let dtype = zeroPoint?.dtype ?? .uint8
        guard let range = quantizedRange(dtype) else {
            throw GraftError(.badInput, "the zero point is \(dtype); quantizing to int8 and uint8 is supported", op: op)
        }
        let (count, inner) = try quantizationSlices(x.shape, scale: scale, zeroPoint: zeroPoint, axis: axis, op: op)
        let scales = scale.floats, zeros = zeroPoints(zeroPoint, count: count)
        var out = Tensor(zeros: x.shape, dtype: dtype)
        x.withUnsafeBufferPointer(as: Float.self) { src in
            out.withUnsafeMutableBytes { raw in
                for i in 0..<src.count {
                    let slice = (i / inner) % count
                    let q = (src[i] / scales[slice]).rounded(.toNearestOrEven)
                    let zero = Float(zeros[slice])
                    let v = q.isNaN ? zero : min(max(q + zero, range.lowerBound), range.upperBound)
                    if dtype == .uint8 { raw.storeBytes(of: UInt8(v), toByteOffset: i, as: UInt8.self) }
                    else { raw.storeBytes(of: Int8(v), toByteOffset: i, as: Int8.self) }
                }
            }
        }
        return out
    }

    /// `(x − zeroPoint) · scale` as float32.
    static func dequantizeLinear(_ x: Tensor, scale: Tensor, zeroPoint: Tensor?, axis: Int) throws -> Tensor {
        let op = "DequantizeLinear"
        guard x.dtype == .uint8 || x.dtype == .int8 || x.dtype == .int32 else {
            throw GraftError(.badInput, "the input is \(x.dtype); int8, uint8 and int32 are supported", op: op)
        }
        if let zeroPoint, zeroPoint.dtype != x.dtype {
            throw GraftError(.badInput, "the zero point is \(zeroPoint.dtype), the input \(x.dtype); they must match", op: op)
        }
        let (count, inner) = try quantizationSlices(x.shape, scale: scale, zeroPoint: zeroPoint, axis: axis, op: op)
        let scales = scale.floats, zeros = zeroPoints(zeroPoint, count: count)
        var out = Tensor(zeros: x.shape)
        // Slice by slice, straight from the integers (a model's weights are tens of millions).
        func dequantize<T: BinaryInteger>(_: T.Type) {
            guard inner > 0 else { return }   // no elements
            x.withUnsafeBufferPointer(as: T.self) { src in
                out.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                    for start in stride(from: 0, to: src.count, by: inner) {
                        let slice = start / inner % count
                        let (zero, scale) = (zeros[slice], scales[slice])
                        for i in start..<start + inner { dst[i] = Float(Int(src[i]) - zero) * scale }
                    }
                }
            }
        }
        switch x.dtype {
        case .uint8: dequantize(UInt8.self)
        case .int8: dequantize(Int8.self)
        default: dequantize(Int32.self)
        }
        return out
    }
}
