import GraftCore
import GraftTorch

/// A value flowing between Keras layers: its name in the graph and its rank (NCHW when 4).
struct KerasValue {
    let name: String
    let rank: Int
}

typealias KerasTranslator = (KerasModel.Layer, [KerasValue], inout KerasBuild) throws -> KerasValue

/// Keras layer class → translator. Each reads its config with Keras's defaults and refuses
/// settings it does not carry over.
let kerasLayers: [String: KerasTranslator] = [
    "ZeroPadding2D": translateZeroPadding,
    "Conv2D": translateConv,
    "BatchNormalization": translateBatchNorm,
    "Activation": { layer, inputs, build in
        try build.activation(try layer.config.string("activation"), inputs[0], layer: layer.name)
    },
    "ReLU": translateReLU,
    "MaxPooling2D": { layer, inputs, build in try translatePool(layer, inputs, &build, max: true) },
    "AveragePooling2D": { layer, inputs, build in try translatePool(layer, inputs, &build, max: false) },
    "GlobalAveragePooling2D": { layer, inputs, build in try translateGlobalPool(layer, inputs, &build, max: false) },
    "GlobalMaxPooling2D": { layer, inputs, build in try translateGlobalPool(layer, inputs, &build, max: true) },
    "Add": { layer, inputs, build in
        guard inputs.count >= 2, inputs.allSatisfy({ $0.rank == inputs[0].rank }) else {
            throw GraftError(.badInput, "Add needs two or more inputs of one rank")
        }
        let op: Op = inputs.count == 2 ? .add : .sum
        return KerasValue(name: build.node(op, layer: layer.name, inputs: inputs.map(\.name)), rank: inputs[0].rank)
    },
    "Dense": translateDense,
    "Dropout": { layer, inputs, build in
        let rate = Float(try layer.config.double("rate", default: 0.5))
        return KerasValue(name: build.node(.dropout(ratio: rate), layer: layer.name, inputs: [inputs[0].name]), rank: inputs[0].rank)
    },
    "Flatten": { layer, inputs, build in
        try layer.config.requireChannelsLast()
        var x = inputs[0].name
        // Keras flattens NHWC data in H, W, C order.
        if inputs[0].rank == 4 { x = build.node(.transpose(perm: [0, 2, 3, 1]), layer: layer.name, inputs: [x]) }
        return KerasValue(name: build.node(.flatten(axis: 1), layer: layer.name, inputs: [x]), rank: 2)
    },
]

/// The state of one Keras import.
struct KerasBuild {
    let weights: KerasWeights
    var builder = GraphBuilder()
    var constants: [(String, Tensor)] = []
    /// The output of each layer done so far.
    var values: [String: KerasValue] = [:]
    var usedWeights: [String: Set<String>] = [:]
    var input: ValueInfo?

    init(weights: KerasWeights) {
        self.weights = weights
    }

    mutating func add(_ layer: KerasModel.Layer, isInput: Bool) throws {
        if layer.className == "InputLayer" {
            guard isInput, input == nil else { throw GraftError(.badInput, "only one input layer is supported") }
            let config = layer.config
            guard let shape = (config.value("batch_shape") ?? config.value("batch_input_shape")) as? [Any], shape.count == 4 else {
                throw GraftError(.badInput, "the input must be a batch of images [batch, height, width, channels]")
            }
            guard let channels = shape[3] as? Int else { throw GraftError(.badInput, "the input's channel count is not given") }
            func dim(_ v: Any, _ symbol: String) -> Dim { (v as? Int).map(Dim.value) ?? .symbol(symbol) }
            input = ValueInfo(name: "input", dtype: .float32,
                              shape: Shape([.symbol("batch"), .value(channels), dim(shape[1], "height"), dim(shape[2], "width")]))
            values[layer.name] = KerasValue(name: "input", rank: 4)
            return
        }
        guard let translate = kerasLayers[layer.className] else {
            throw GraftError(.badInput, "the layer class is not supported")
        }
        let inputs = try layer.inputs.map { name in
            guard let v = values[name] else { throw GraftError(.badInput, "it reads layer '\(name)', which does not come before it") }
            return v
        }
        guard !inputs.isEmpty else { throw GraftError(.badInput, "it has no inputs") }
        values[layer.name] = try translate(layer, inputs, &self)
    }

    /// Adds a node `/<layer>/<Op>` scoped to the layer; returns its output.
    mutating func node(_ op: Op, layer: String, inputs: [String]) -> String {
        builder.add(op, scopes: [layer], module: layer, inputs: inputs)
    }

    /// Adds the constant `<layer>.<name>` and returns its name.
    mutating func constant(_ layer: String, _ name: String, _ tensor: Tensor) -> String {
        let key = "\(layer).\(name)"
        constants.append((key, tensor))
        return key
    }

    /// The layer's weight `role`, checked to have `shape` (nil when absent and not required).
    mutating func weight(_ layer: String, _ role: String, shape: [Int], required: Bool = true) throws -> Tensor? {
        guard let dataset = weights.roles(of: layer)[role] else {
            if required { throw GraftError(.badInput, "weight '\(role)' of Keras layer '\(layer)' is missing from '\(KerasModel.weightsGroup)'") }
            return nil
        }
        usedWeights[layer, default: []].insert(role)
        let actual = try dataset.shape()
        guard actual == shape else {
            throw GraftError(.badInput, "dataset '\(dataset.path)' has shape \(actual), expected \(shape)")
        }
        guard case .float = try dataset.elementType() else {
            throw GraftError(.badInput, "dataset '\(dataset.path)' holds \(try dataset.elementType()); weights must be floating point")
        }
        return try dataset.read(as: .float32, shape: shape)
    }

    /// The shape of the layer's weight `role`, checked to have `rank`.
    func weightShape(_ layer: String, _ role: String, rank: Int) throws -> [Int] {
        guard let dataset = weights.roles(of: layer)[role] else {
            throw GraftError(.badInput, "weight '\(role)' of Keras layer '\(layer)' is missing from '\(KerasModel.weightsGroup)'")
        }
        let shape = try dataset.shape()
        guard shape.count == rank else {
            throw GraftError(.badInput, "dataset '\(dataset.path)' has shape \(shape) (rank \(shape.count)), expected rank \(rank)")
        }
        return shape
    }

    /// A Keras activation by name applied to `x` (`linear` adds nothing).
    mutating func activation(_ name: String, _ x: KerasValue, layer: String) throws -> KerasValue {
        let op: Op
        switch name {
        case "linear": return x
        case "relu": op = .relu
        case "sigmoid": op = .sigmoid
        case "tanh": op = .tanh
        // Keras's softmax works on the last axis: the channels, axis 1 of NCHW data.
        case "softmax": op = .softmax(axis: x.rank == 4 ? 1 : -1, coerce2D: false)
        default: throw GraftError(.badInput, "activation '\(name)' is not supported")
        }
        return KerasValue(name: node(op, layer: layer, inputs: [x.name]), rank: x.rank)
    }
}

/// A window from a Keras layer's `padding` (`valid`, or `same`: TensorFlow's SAME, which pads
/// the extra row and column at the end).
private func window(kernel: [Int], strides: [Int], dilations: [Int] = [1, 1], padding: String) throws -> Window {
    switch padding {
    case "valid": return Window(kernel: kernel, strides: strides, dilations: dilations)
    case "same": return Window(kernel: kernel, strides: strides, dilations: dilations, autoPad: .sameUpper)
    default: throw GraftError(.badInput, "padding '\(padding)' is not supported (valid or same)")
    }
}

private func require4D(_ x: KerasValue, _ what: String) throws {
    guard x.rank == 4 else { throw GraftError(.badInput, "\(what) needs a 4-D input, this one has rank \(x.rank)") }
}

private func translateZeroPadding(_ layer: KerasModel.Layer, _ inputs: [KerasValue], _ build: inout KerasBuild) throws -> KerasValue {
    let c = layer.config
    try c.requireChannelsLast()
    try require4D(inputs[0], "ZeroPadding2D")
    // ((top, bottom), (left, right)), or (rows, columns) for both sides, or one number.
    var p: [Int]
    if let n = c.value("padding") as? Int {
        p = [n, n, n, n]
    } else if let pair = c.value("padding") as? [Any], pair.count == 2 {
        if let rows = pair[0] as? [Any], let cols = pair[1] as? [Any], rows.count == 2, cols.count == 2,
           let t = rows[0] as? Int, let b = rows[1] as? Int, let l = cols[0] as? Int, let r = cols[1] as? Int {
            p = [t, b, l, r]
        } else if let rows = pair[0] as? Int, let cols = pair[1] as? Int {
            p = [rows, rows, cols, cols]
        } else {
            throw GraftError(.badInput, "padding \(pair) is not ((top, bottom), (left, right))")
        }
    } else {
        throw GraftError(.badInput, "padding is not ((top, bottom), (left, right))")
    }
    let pads = build.constant(layer.name, "pads", Tensor(shape: [8], int64s: [0, 0, p[0], p[2], 0, 0, p[1], p[3]].map(Int64.init)))
    return KerasValue(name: build.node(.pad, layer: layer.name, inputs: [inputs[0].name, pads]), rank: 4)
}

private func translateConv(_ layer: KerasModel.Layer, _ inputs: [KerasValue], _ build: inout KerasBuild) throws -> KerasValue {
    let c = layer.config
    try c.requireChannelsLast()
    try require4D(inputs[0], "Conv2D")
    let kernel = try c.pair("kernel_size")
    let filters = try c.int("filters")
    let groups = try c.int("groups", default: 1)
    let w = try window(kernel: kernel, strides: try c.pair("strides", default: [1, 1]),
                   dilations: try c.pair("dilation_rate", default: [1, 1]), padding: try c.string("padding", default: "valid"))
    let channelsPerGroup = try build.weightShape(layer.name, "kernel", rank: 4)[2]
    let kerasKernel = try build.weight(layer.name, "kernel", shape: kernel + [channelsPerGroup, filters])!
    // [kh, kw, cin/groups, cout] → [cout, cin/groups, kh, kw]
    var nodeInputs = [inputs[0].name, build.constant(layer.name, "weight", try Reference.transpose(kerasKernel, perm: [3, 2, 0, 1]))]
    if try c.bool("use_bias", default: true) {
        nodeInputs.append(build.constant(layer.name, "bias", try build.weight(layer.name, "bias", shape: [filters])!))
    }
    let y = KerasValue(name: build.node(.conv(ConvAttributes(window: w, group: groups)), layer: layer.name, inputs: nodeInputs), rank: 4)
    return try build.activation(try c.string("activation", default: "linear"), y, layer: layer.name)
}

private func translateBatchNorm(_ layer: KerasModel.Layer, _ inputs: [KerasValue], _ build: inout KerasBuild) throws -> KerasValue {
    let c = layer.config
    let x = inputs[0]
    // The normalized axis must be the channels: the last of Keras's NHWC (or [N, C]) data.
    var axis = c.value("axis") as? Int
    if let list = c.value("axis") as? [Any], list.count == 1 { axis = list[0] as? Int }
    guard let a = axis, a == -1 || a == x.rank - 1 else {
        throw GraftError(.badInput, "axis \(c.value("axis").map { "\($0)" } ?? "none") is not the channel axis")
    }
    let channels = try build.weightShape(layer.name, "moving_mean", rank: 1)[0]
    let shape = [channels]
    let scale = try c.bool("scale", default: true) ? try build.weight(layer.name, "gamma", shape: shape)! : Tensor(shape: shape, floats: .init(repeating: 1, count: channels))
    let center = try c.bool("center", default: true) ? try build.weight(layer.name, "beta", shape: shape)! : Tensor(zeros: shape)
    let names = [
        build.constant(layer.name, "weight", scale),
        build.constant(layer.name, "bias", center),
        build.constant(layer.name, "running_mean", try build.weight(layer.name, "moving_mean", shape: shape)!),
        build.constant(layer.name, "running_var", try build.weight(layer.name, "moving_variance", shape: shape)!),
    ]
    let op = Op.batchNorm(epsilon: Float(try c.double("epsilon", default: 1e-3)), momentum: Float(try c.double("momentum", default: 0.99)))
    return KerasValue(name: build.node(op, layer: layer.name, inputs: [x.name] + names), rank: x.rank)
}

private func translateReLU(_ layer: KerasModel.Layer, _ inputs: [KerasValue], _ build: inout KerasBuild) throws -> KerasValue {
    let c = layer.config
    guard c.value("max_value") == nil, try c.double("threshold", default: 0) == 0 else {
        throw GraftError(.badInput, "ReLU with max_value or threshold is not supported")
    }
    let slope = try c.double("negative_slope", default: 0)
    let op: Op = slope == 0 ? .relu : .leakyRelu(alpha: Float(slope))
    return KerasValue(name: build.node(op, layer: layer.name, inputs: [inputs[0].name]), rank: inputs[0].rank)
}

private func translatePool(_ layer: KerasModel.Layer, _ inputs: [KerasValue], _ build: inout KerasBuild, max: Bool) throws -> KerasValue {
    let c = layer.config
    try c.requireChannelsLast()
    try require4D(inputs[0], layer.className)
    let size = try c.pair("pool_size", default: [2, 2])
    let w = try window(kernel: size, strides: try c.pair("strides", default: size), padding: try c.string("padding", default: "valid"))
    // TensorFlow averages over the window's cells inside the input only.
    let op: Op = max ? .maxPool(w) : .averagePool(w, countIncludePad: false)
    return KerasValue(name: build.node(op, layer: layer.name, inputs: [inputs[0].name]), rank: 4)
}

private func translateGlobalPool(_ layer: KerasModel.Layer, _ inputs: [KerasValue], _ build: inout KerasBuild, max: Bool) throws -> KerasValue {
    let c = layer.config
    try c.requireChannelsLast()
    try require4D(inputs[0], layer.className)
    let pooled = build.node(max ? .globalMaxPool : .globalAveragePool, layer: layer.name, inputs: [inputs[0].name])
    if try c.bool("keepdims", default: false) { return KerasValue(name: pooled, rank: 4) }
    return KerasValue(name: build.node(.flatten(axis: 1), layer: layer.name, inputs: [pooled]), rank: 2)
}

private func translateDense(_ layer: KerasModel.Layer, _ inputs: [KerasValue], _ build: inout KerasBuild) throws -> KerasValue {
    let c = layer.config
    guard inputs[0].rank == 2 else {
        throw GraftError(.badInput, "Dense on a tensor of rank \(inputs[0].rank) is not supported (only [batch, features])")
    }
    let units = try c.int("units")
    let features = try build.weightShape(layer.name, "kernel", rank: 2)[0]
    let kernel = try build.weight(layer.name, "kernel", shape: [features, units])!
    var nodeInputs = [inputs[0].name, build.constant(layer.name, "weight", try Reference.transpose(kernel, perm: [1, 0]))]
    if try c.bool("use_bias", default: true) {
        nodeInputs.append(build.constant(layer.name, "bias", try build.weight(layer.name, "bias", shape: [units])!))
    }
    let y = KerasValue(name: build.node(.gemm(GemmAttributes(transB: true)), layer: layer.name, inputs: nodeInputs), rank: 2)
    return try build.activation(try c.string("activation", default: "linear"), y, layer: layer.name)
}
