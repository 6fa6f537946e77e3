import GraftCore

/// Stochastic gradient descent with momentum, as `torch.optim.SGD` computes it (dampening 0, not
/// Nesterov): with `g ← g + λp` when weight decay `λ` is set,
///
///     b ← g (first step), b ← μb + g (after)        p ← p − lr · b
///
/// and `p ← p − lr · g` when the momentum `μ` is 0.
public final class SGD: Optimizer {
    /// The step size `lr`.
    public var learningRate: Float
    /// The momentum factor `μ`.
    public var momentum: Float
    /// L2 penalty `λ` added to the gradient.
    public var weightDecay: Float

    private var step = 0
    private var buffers: [String: [Float]] = [:]

    /// - Parameters:
    ///   - learningRate: the step size (PyTorch has no default).
    ///   - momentum: PyTorch's default is 0; 0.9 is the usual choice.
    ///   - weightDecay: PyTorch's default is 0.
    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        precondition(learningRate >= 0, "SGD's learning rate must not be negative: \(learningRate)")
        precondition(momentum >= 0, "SGD's momentum must not be negative: \(momentum)")
        precondition(weightDecay >= 0, "SGD's weight decay must not be negative: \(weightDecay)")
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public func update(_ parameters: inout [Parameter], gradients: [[Float]]) {
        precondition(parameters.count == gradients.count, "\(gradients.count) gradients for \(parameters.count) parameters")
        step += 1
        let (lr, mu, wd) = (learningRate, momentum, weightDecay)
        for i in parameters.indices {
            let name = parameters[i].name
            let count = parameters[i].values.count
            precondition(gradients[i].count == count, "gradient of \(gradients[i].count) for \(name) of \(count)")
            // Taken out of the dictionary while updated, so it is not copied.
            let previous = buffers.removeValue(forKey: name)
            let first = previous == nil
            var buffer = previous ?? [Float](repeating: 0, count: count)
            gradients[i].withUnsafeBufferPointer { g in
                parameters[i].values.withUnsafeMutableBufferPointer { p in
                    buffer.withUnsafeMutableBufferPointer { b in
                        let (g, p, b) = (g.baseAddress!, p.baseAddress!, b.baseAddress!)
                        Parallel.forEachRun(count, minimumRun: 65_536) { range in
                            for j in range {
                                var d = wd == 0 ? g[j] : g[j] + wd * p[j]
                                if mu != 0 {
                                    b[j] = first ? d : b[j] * mu + d
                                    d = b[j]
                                }
                                p[j] -= lr * d
                            }
                        }
                    }
                }
            }
            if mu != 0 { buffers[name] = buffer }
        }
    }

    var settings: [String: Double] {
        ["lr": learningRate.typedValue, "momentum": momentum.typedValue, "weight_decay": weightDecay.typedValue]
    }

    public var state: OptimizerState {
        OptimizerState(kind: "sgd", settings: settings, step: step,
                       buffers: Dictionary(uniqueKeysWithValues: buffers.map { ($0.key + ".momentum_buffer", $0.value) }))
    }

    public func restore(_ state: OptimizerState) throws {
        try state.check(kind: "sgd", settings: settings)
        step = state.step
        buffers = Dictionary(uniqueKeysWithValues: state.buffers.compactMap { key, values in
            key.hasSuffix(".momentum_buffer") ? (String(key.dropLast(16)), values) : nil
        })
    }
}
