/// How a convolution or pool pads its input when the model does not give explicit pads.
public enum AutoPad: String, Sendable, Equatable {
    case notSet = "NOTSET"
    case sameUpper = "SAME_UPPER"
    case sameLower = "SAME_LOWER"
    case valid = "VALID"
}

/// The geometry of a 2-D sliding window, shared by convolutions and pools.
public struct Window: Sendable, Equatable {
    /// Kernel height and width.
    public var kernel: [Int]
    public var strides: [Int]
    /// ONNX order: `[top, left, bottom, right]`.
    public var pads: [Int]
    public var dilations: [Int]
    public var autoPad: AutoPad
    public var ceilMode: Bool

    public init(kernel: [Int], strides: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0],
                dilations: [Int] = [1, 1], autoPad: AutoPad = .notSet, ceilMode: Bool = false) {
        self.kernel = kernel
        self.strides = strides
        self.pads = pads
        self.dilations = dilations
        self.autoPad = autoPad
        self.ceilMode = ceilMode
    }

    /// The output height and width and the pads actually applied, for an input of `input` (H, W).
    public func resolve(input: [Int]) -> (output: [Int], pads: [Int]) {
        var output = [0, 0]
        var resolved = pads
        for axis in 0..<2 {
            let effective = (kernel[axis] - 1) * dilations[axis] + 1
            switch autoPad {
            case .notSet, .valid:
                if autoPad == .valid { resolved[axis] = 0; resolved[axis + 2] = 0 }
                let span = input[axis] + resolved[axis] + resolved[axis + 2] - effective
                // A window wider than the padded input has no position at all (the division
                // below would round −1/2 up to 0).
                guard span >= 0 else { output[axis] = 0; continue }
                var out = (ceilMode ? (span + strides[axis] - 1) / strides[axis] : span / strides[axis]) + 1
                // With ceil mode the last window must start inside the input or the begin padding.
                if ceilMode && (out - 1) * strides[axis] >= input[axis] + resolved[axis] { out -= 1 }
                output[axis] = max(out, 0)
            case .sameUpper, .sameLower:
                let out = (input[axis] + strides[axis] - 1) / strides[axis]
                let total = max((out - 1) * strides[axis] + effective - input[axis], 0)
                let small = total / 2
                resolved[axis] = autoPad == .sameUpper ? small : total - small
                resolved[axis + 2] = total - resolved[axis]
                output[axis] = out
            }
        }
        return (output, resolved)
    }
}

/// Attributes of `Conv`; the weight has shape `[Cout, Cin / group, kH, kW]`.
public struct ConvAttributes: Sendable, Equatable {
    public var window: Window
    public var group: Int

    public init(window: Window, group: Int = 1) {
        self.window = window
        self.group = group
    }
}

/// Attributes of `Gemm`: `Y = alpha * A' * B' + beta * C`.
public struct GemmAttributes: Sendable, Equatable {
    public var alpha: Float
    public var beta: Float
    public var transA: Bool
    public var transB: Bool

    public init(alpha: Float = 1, beta: Float = 1, transA: Bool = false, transB: Bool = false) {
        self.alpha = alpha
        self.beta = beta
        self.transA = transA
        self.transB = transB
    }
}

/// Every operation the IR knows, with typed attributes. Inputs are the node's input values in
/// ONNX order; optional trailing inputs may be absent.
public enum Op: Sendable, Equatable {
    /// `Y = conv(X, W) + B`. Inputs: X, W, B?.
    case conv(ConvAttributes)
    /// Inference batch normalization. Inputs: X, scale, bias, mean, var. `momentum` is ONNX's
    /// (the weight of the running value, 1 − PyTorch's), kept for export and summaries.
    case batchNorm(epsilon: Float, momentum: Float)
    case relu
    case sigmoid
    case tanh
    /// `max(x, alpha * x)`.
    case leakyRelu(alpha: Float)
    case maxPool(Window)
    case averagePool(Window, countIncludePad: Bool)
    case globalAveragePool
    case globalMaxPool
    /// Mean over `axes` (all axes when nil and no axes input). Inputs: X, axes? (opset 18).
    case reduceMean(axes: [Int]?, keepDims: Bool, noopWithEmptyAxes: Bool)
    /// Element-wise with NumPy broadcasting.
    case add, sub, mul, div
    /// Element-wise sum of any number of inputs.
    case sum
    case neg, exp, sqrt
    /// Collapse to 2-D around `axis`.
    case flatten(axis: Int)
    /// Inputs: data, shape.
    case reshape(allowZero: Bool)
    /// Inputs: A, B, C?.
    case gemm(GemmAttributes)
    case matMul
    case identity
    /// Inference dropout: the identity. Inputs: data, ratio?, training_mode?. `ratio` is the
    /// drop probability used in training.
    case dropout(ratio: Float)
    /// A tensor of the shape given by the input, filled with `value` (a one-element tensor).
    case constantOfShape(value: Tensor)
    /// The shape of the input as int64, sliced to `start..<end`.
    case shape(start: Int, end: Int?)
    /// Inputs: data, indices.
    case gather(axis: Int)
    /// Inputs: data, axes? (from opset 13 the axes are an input).
    case unsqueeze(axes: [Int]?)
    case squeeze(axes: [Int]?)
    case concat(axis: Int)
    case transpose(perm: [Int]?)
    /// Before opset 13 softmax works on the input coerced to 2-D at `axis`.
    case softmax(axis: Int, coerce2D: Bool)
    case logSoftmax(axis: Int, coerce2D: Bool)
    /// Inputs: data, starts, ends, axes?, steps?.
    case slice
    /// Inputs: input, pads, constant_value?. Constant mode only.
    case pad
    /// `y = saturate(round(x / scale) + zero_point)`, rounding half to even, into the zero
    /// point's type (uint8 without one), with one scale for the tensor or one per slice along
    /// `axis`. Inputs: x, y_scale, y_zero_point?.
    case quantizeLinear(axis: Int)
    /// `y = (x − zero_point) · scale`, as float32, per tensor or per slice along `axis`. Inputs:
    /// x (int8, uint8 or int32), x_scale, x_zero_point?.
    case dequantizeLinear(axis: Int)

    /// The ONNX operator name.
    public var name: String {
        switch self {
        case .conv: return "Conv"
        case .batchNorm: return "BatchNormalization"
        case .relu: return "Relu"
        case .sigmoid: return "Sigmoid"
        case .tanh: return "Tanh"
        case .leakyRelu: return "LeakyRelu"
        case .maxPool: return "MaxPool"
        case .averagePool: return "AveragePool"
        case .globalAveragePool: return "GlobalAveragePool"
        case .globalMaxPool: return "GlobalMaxPool"
        case .reduceMean: return "ReduceMean"
        case .add: return "Add"
        case .sub: return "Sub"
        case .mul: return "Mul"
        case .div: return "Div"
        case .sum: return "Sum"
        case .neg: return "Neg"
        case .exp: return "Exp"
        case .sqrt: return "Sqrt"
        case .flatten: return "Flatten"
        case .reshape: return "Reshape"
        case .gemm: return "Gemm"
        case .matMul: return "MatMul"
        case .identity: return "Identity"
        case .dropout: return "Dropout"
        case .constantOfShape: return "ConstantOfShape"
        case .shape: return "Shape"
        case .gather: return "Gather"
        case .unsqueeze: return "Unsqueeze"
        case .squeeze: return "Squeeze"
        case .concat: return "Concat"
        case .transpose: return "Transpose"
        case .softmax: return "Softmax"
        case .logSoftmax: return "LogSoftmax"
        case .slice: return "Slice"
        case .pad: return "Pad"
        case .quantizeLinear: return "QuantizeLinear"
        case .dequantizeLinear: return "DequantizeLinear"
        }
    }
}
