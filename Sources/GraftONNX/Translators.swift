import GraftCore

/// What a translator sees of one ONNX node: the opset, its inputs and its attributes. A
/// translator may rewrite legacy attributes into constant inputs (Reshape-5's `shape`, Slice-1's
/// `starts`), which the importer then adds to the graph.
struct NodeContext {
    let opset: Int
    let name: String
    var inputs: [String]
    let outputCount: Int
    var attributes: AttributeReader
    /// Shapes of the inputs that are graph inputs or constants (nil for computed values).
    let inputShapes: [Shape?]
    /// The input at an index when it is a constant (an initializer or an earlier Constant node).
    let constantInput: (Int) -> Tensor?
    var newConstants: [(String, Tensor)] = []

    /// Appends a constant input built from a legacy attribute.
    mutating func appendConstantInput(_ suffix: String, _ tensor: Tensor, at index: Int) {
        let constantName = "\(name)::\(suffix)"
        while inputs.count < index { inputs.append("") }
        if inputs.count == index { inputs.append(constantName) } else { inputs[index] = constantName }
        newConstants.append((constantName, tensor))
    }
}

typealias Translator = @Sendable (inout NodeContext) throws -> Op

/// ONNX op type (default domain) → translator. One entry per supported op; attribute defaults
/// and opset differences are spelled out in each.
let translators: [String: Translator] = [
    "Conv": translateConv,
    "BatchNormalization": translateBatchNorm,
    "Relu": unary(.relu),
    "Sigmoid": unary(.sigmoid),
    "Tanh": unary(.tanh),
    "Neg": unary(.neg),
    "Exp": unary(.exp),
    "Sqrt": unary(.sqrt),
    "LeakyRelu": { c in legacyConsumed(&c); return .leakyRelu(alpha: try c.attributes.float("alpha", default: 0.01)) },
    "MaxPool": translateMaxPool,
    "AveragePool": translateAveragePool,
    "GlobalAveragePool": { _ in .globalAveragePool },
    "GlobalMaxPool": { _ in .globalMaxPool },
    "ReduceMean": translateReduceMean,
    "Add": binary(.add),
    "Sub": binary(.sub),
    "Mul": binary(.mul),
    "Div": binary(.div),
    "Sum": { c in legacyConsumed(&c); return .sum },
    "Flatten": { c in .flatten(axis: try c.attributes.int("axis", default: 1)) },
    "Reshape": translateReshape,
    "Gemm": translateGemm,
    "MatMul": { _ in .matMul },
    "Identity": { _ in .identity },
    "Dropout": translateDropout,
    "ConstantOfShape": translateConstantOfShape,
    "Shape": { c in
        .shape(start: try c.attributes.int("start", default: 0), end: c.attributes.has("end") ? try c.attributes.int("end", default: 0) : nil)
    },
    "Gather": { c in .gather(axis: try c.attributes.int("axis", default: 0)) },
    "Unsqueeze": { c in .unsqueeze(axes: c.opset >= 13 ? nil : try c.attributes.ints("axes") ?? []) },
    "Squeeze": { c in .squeeze(axes: c.opset >= 13 ? nil : try c.attributes.ints("axes")) },
    "Concat": { c in .concat(axis: try c.attributes.int("axis", default: c.opset < 4 ? 1 : 0)) },
    "Transpose": { c in .transpose(perm: try c.attributes.ints("perm")) },
    "Softmax": { c in try translateSoftmax(&c, log: false) },
    "LogSoftmax": { c in try translateSoftmax(&c, log: true) },
    "Slice": translateSlice,
    "Pad": translatePad,
    "QuantizeLinear": { c in try translateQuantization(&c, quantize: true) },
    "DequantizeLinear": { c in try translateQuantization(&c, quantize: false) },
]

/// QuantizeLinear and DequantizeLinear: per tensor before opset 13, then per tensor or along
/// `axis`; opset 21's `output_dtype` (QuantizeLinear without a zero point) becomes a zero point
/// of that type. Blocked quantization (`block_size`) is refused.
private func translateQuantization(_ c: inout NodeContext, quantize: Bool) throws -> Op {
    let axis = c.opset >= 13 ? try c.attributes.int("axis", default: 1) : 1
    if try c.attributes.int("block_size", default: 0) != 0 {
        throw GraftError(.badInput, "blocked quantization (block_size) is not supported")
    }
    if quantize {
        _ = try c.attributes.int("saturate", default: 1)  // only float8 outputs saturate or not
        let dtype = try c.attributes.int("output_dtype", default: 0)
        if dtype != 0 {
            guard let type = DType(rawValue: Int32(clamping: dtype)), type == .int8 || type == .uint8 else {
                throw GraftError(.badInput, "output_dtype \(dtype) is not supported (int8 and uint8 are)")
            }
            if c.inputs.count < 3 || c.inputs[2].isEmpty {
                c.appendConstantInput("zero_point", Tensor(zeros: [], dtype: type), at: 2)
            }
        }
    }
    return quantize ? .quantizeLinear(axis: axis) : .dequantizeLinear(axis: axis)
}

/// Before opset 6 many ops carried `consumed_inputs`, an in-place hint with no meaning here.
private func legacyConsumed(_ c: inout NodeContext) {
    _ = try? c.attributes.ints("consumed_inputs")
}

private func unary(_ op: Op) -> Translator {
    { c in legacyConsumed(&c); return op }
}

private func binary(_ op: Op) -> Translator {
    { c in
        legacyConsumed(&c)
        // Before opset 7, broadcasting had to be asked for, and `axis` aligned B inside A.
        // NumPy broadcasting covers the case where `axis` aligns B with A's trailing axes.
        if c.opset < 7, try c.attributes.int("broadcast", default: 0) == 1, c.attributes.has("axis") {
            let axis = try c.attributes.int("axis", default: -1)
            let ranks = c.inputShapes.map { $0?.rank }
            guard ranks.count == 2, let a = ranks[0], let b = ranks[1], axis == a - b || axis == -b else {
                throw GraftError(.badInput, "legacy broadcasting along axis \(axis) that is not trailing is not supported")
            }
        }
        return op
    }
}

/// The window attributes as the model gives them; `Graph.validate()` checks them against the
/// input (2-D, in range).
private func window(_ c: inout NodeContext, kernel: [Int]) throws -> Window {
    let strides = try c.attributes.ints("strides") ?? [1, 1]
    let pads = try c.attributes.ints("pads") ?? [0, 0, 0, 0]
    let dilations = try c.attributes.ints("dilations") ?? [1, 1]
    let autoPadName = try c.attributes.string("auto_pad", default: "NOTSET")
    guard let autoPad = AutoPad(rawValue: autoPadName) else {
        throw GraftError(.badInput, "auto_pad '\(autoPadName)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    }
    let ceil = c.attributes.has("ceil_mode") ? try c.attributes.int("ceil_mode", default: 0) != 0 : false
    return Window(kernel: kernel, strides: strides, pads: pads, dilations: dilations, autoPad: autoPad, ceilMode: ceil)
}

private func translateConv(_ c: inout NodeContext) throws -> Op {
    // Without kernel_shape the kernel is the weight's spatial size, known here when the weight
    // is a constant or a graph input.
    guard let kernel = try c.attributes.ints("kernel_shape") ?? weightKernel(c) else {
        throw GraftError(.badInput, "attribute kernel_shape is required when the weight is computed")
    }
    let group = try c.attributes.int("group", default: 1)
    return .conv(ConvAttributes(window: try window(&c, kernel: kernel), group: group))
}

/// The spatial dimensions of a Conv's weight, when its shape is known at import.
private func weightKernel(_ c: NodeContext) -> [Int]? {
    guard c.inputShapes.count > 1, let shape = c.inputShapes[1], shape.rank >= 3 else { return nil }
    let spatial = shape.dims.dropFirst(2).compactMap(\.value)
    return spatial.count == shape.rank - 2 ? spatial : nil
}

private func translateBatchNorm(_ c: inout NodeContext) throws -> Op {
    legacyConsumed(&c)
    let epsilon = try c.attributes.float("epsilon", default: 1e-5)
    let momentum = try c.attributes.float("momentum", default: 0.9)
    if c.opset < 7 { _ = try c.attributes.int("is_test", default: 0) }
    if c.opset < 9 { try c.attributes.require("spatial", equals: 1, default: 1, "per-activation batch normalization") }
    try c.attributes.require("training_mode", equals: 0, default: 0, "training-mode batch normalization; export the model in eval mode")
    if c.outputCount > 1 {
        throw GraftError(.badInput, "training-mode outputs (running mean and variance) are not supported; export the model in eval mode")
    }
    return .batchNorm(epsilon: epsilon, momentum: momentum)
}

private func translateMaxPool(_ c: inout NodeContext) throws -> Op {
    guard let kernel = try c.attributes.ints("kernel_shape") else {
        throw GraftError(.badInput, "attribute kernel_shape is required")
    }
    try c.attributes.require("storage_order", equals: 0, default: 0, "column-major indices")
    if c.outputCount > 1 { throw GraftError(.badInput, "the Indices output is not supported") }
    return .maxPool(try window(&c, kernel: kernel))
}

private func translateAveragePool(_ c: inout NodeContext) throws -> Op {
    guard let kernel = try c.attributes.ints("kernel_shape") else {
        throw GraftError(.badInput, "attribute kernel_shape is required")
    }
    let include = try c.attributes.int("count_include_pad", default: 0) != 0
    return .averagePool(try window(&c, kernel: kernel), countIncludePad: include)
}

private func translateReduceMean(_ c: inout NodeContext) throws -> Op {
    let keepDims = try c.attributes.int("keepdims", default: 1) != 0
    if c.opset >= 18 {
        let noop = try c.attributes.int("noop_with_empty_axes", default: 0) != 0
        return .reduceMean(axes: nil, keepDims: keepDims, noopWithEmptyAxes: noop)
    }
    return .reduceMean(axes: try c.attributes.ints("axes"), keepDims: keepDims, noopWithEmptyAxes: false)
}

private func translateReshape(_ c: inout NodeContext) throws -> Op {
    if c.opset < 5 {
        legacyConsumed(&c)
        guard let shape = try c.attributes.ints("shape") else { throw GraftError(.badInput, "attribute shape is required") }
        c.appendConstantInput("shape", Tensor(shape: [shape.count], int64s: shape.map { Int64($0) }), at: 1)
        return .reshape(allowZero: false)
    }
    return .reshape(allowZero: try c.attributes.int("allowzero", default: 0) != 0)
}

private func translateGemm(_ c: inout NodeContext) throws -> Op {
    if c.opset < 7 { _ = try c.attributes.int("broadcast", default: 0) }
    return .gemm(GemmAttributes(alpha: try c.attributes.float("alpha", default: 1), beta: try c.attributes.float("beta", default: 1),
                                transA: try c.attributes.int("transA", default: 0) != 0,
                                transB: try c.attributes.int("transB", default: 0) != 0))
}

private func translateDropout(_ c: inout NodeContext) throws -> Op {
    legacyConsumed(&c)
    if c.opset < 7 { _ = try c.attributes.int("is_test", default: 0) }
    _ = try c.attributes.int("seed", default: 0)
    // From opset 12 the ratio is an optional input (default 0.5); before, an attribute.
    if c.opset >= 12 {
        return .dropout(ratio: c.constantInput(1)?.floats.first ?? 0.5)
    }
    return .dropout(ratio: try c.attributes.float("ratio", default: 0.5))
}

private func translateConstantOfShape(_ c: inout NodeContext) throws -> Op {
    let value = try c.attributes.tensor("value") ?? Tensor(shape: [1], floats: [0])
    guard value.elementCount == 1 else {
        throw GraftError(.badInput, "value must hold one element, it holds \(value.elementCount)")
    }
    return .constantOfShape(value: value.reshaped([1]))
}

private func translateSoftmax(_ c: inout NodeContext, log: Bool) throws -> Op {
    // Opset 13 changed both the default axis (1 → -1) and the meaning (2-D coercion → one axis).
    let legacy = c.opset < 13
    let axis = try c.attributes.int("axis", default: legacy ? 1 : -1)
    return log ? .logSoftmax(axis: axis, coerce2D: legacy) : .softmax(axis: axis, coerce2D: legacy)
}

private func translateSlice(_ c: inout NodeContext) throws -> Op {
    if c.opset < 10 {
        guard let starts = try c.attributes.ints("starts"), let ends = try c.attributes.ints("ends") else {
            throw GraftError(.badInput, "attributes starts and ends are required")
        }
        func tensor(_ v: [Int]) -> Tensor { Tensor(shape: [v.count], int64s: v.map { Int64($0) }) }
        c.appendConstantInput("starts", tensor(starts), at: 1)
        c.appendConstantInput("ends", tensor(ends), at: 2)
        if let axes = try c.attributes.ints("axes") { c.appendConstantInput("axes", tensor(axes), at: 3) }
    }
    return .slice
}

private func translatePad(_ c: inout NodeContext) throws -> Op {
    let mode = try c.attributes.string("mode", default: "constant")
    guard mode == "constant" else { throw GraftError(.badInput, "pad mode '\(mode)' is not supported (only constant)") }
    if c.opset < 11 {
        guard let pads = try c.attributes.ints(c.opset < 2 ? "paddings" : "pads") else {
            throw GraftError(.badInput, "attribute pads is required")
        }
        let value = try c.attributes.float("value", default: 0)
        c.appendConstantInput("pads", Tensor(shape: [pads.count], int64s: pads.map { Int64($0) }), at: 1)
        c.appendConstantInput("value", Tensor(shape: [], floats: [value]), at: 2)
    } else if c.inputs.count > 3, !c.inputs[3].isEmpty {
        throw GraftError(.badInput, "the axes input of Pad is not supported")
    }
    return .pad
}
