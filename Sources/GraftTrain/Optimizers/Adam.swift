import Foundation
import GraftCore

/// Adam (Kingma & Ba), as `torch.optim.Adam` computes it: with `g ← g + λp` when weight decay
/// `λ` is set,
///
///     m ← m + (1 − β₁)(g − m)        v ← β₂v + (1 − β₂)g²
///     p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
public final class Adam: Optimizer {
    /// The step size `lr`.
    public var learningRate: Float
    /// The decay rates `(β₁, β₂)` of the first and second moment estimates.
    public var betas: (Float, Float)
    /// Added to the denominator for numerical stability.
    public var eps: Float
    /// L2 penalty `λ` added to the gradient (not AdamW's decoupled decay).
    public var weightDecay: Float

    private var step = 0
    private var firstMoments: [String: [Float]] = [:]
    private var secondMoments: [String: [Float]] = [:]

    /// - Parameters:
    ///   - learningRate: PyTorch's default is 1e-3.
    ///   - betas: PyTorch's default is (0.9, 0.999).
    ///   - eps: PyTorch's default is 1e-8.
    ///   - weightDecay: PyTorch's default is 0.
    public init(learningRate: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8, weightDecay: Float = 0) {
        precondition(learningRate >= 0, "Adam's learning rate must not be negative: \(learningRate)")
        precondition(betas.0 >= 0 && betas.0 < 1 && betas.1 >= 0 && betas.1 < 1, "Adam's betas must be in [0, 1): \(betas)")
        precondition(eps >= 0, "Adam's eps must not be negative: \(eps)")
        precondition(weightDecay >= 0, "Adam's weight decay must not be negative: \(weightDecay)")
        self.learningRate = learningRate
        self.betas = betas
        self.eps = eps
        self.weightDecay = weightDecay
    }

    public func update(_ parameters: inout [Parameter], gradients: [[Float]]) {
        precondition(parameters.count == gradients.count, "\(gradients.count) gradients for \(parameters.count) parameters")
        step += 1
        let (beta1, beta2) = betas
        // PyTorch computes the scalars from the Python floats the user gave, in double precision,
        // and the element-wise update in float.
        let t = Double(step)
        let (b1, b2) = (beta1.typedValue, beta2.typedValue)
        let stepSize = Float(learningRate.typedValue / (1 - Foundation.pow(b1, t)))
        let correction2 = Float((1 - Foundation.pow(b2, t)).squareRoot())
        let (wd, epsilon) = (weightDecay, eps)
        let (keep1, keep2) = (Float(1 - b1), Float(1 - b2))
        for i in parameters.indices {
            let name = parameters[i].name
            let count = parameters[i].values.count
            // Taken out of the dictionaries while updated, so they are not copied.
            var m = firstMoments.removeValue(forKey: name) ?? [Float](repeating: 0, count: count)
            var v = secondMoments.removeValue(forKey: name) ?? [Float](repeating: 0, count: count)
            precondition(gradients[i].count == count && m.count == count, "gradient of \(gradients[i].count) for \(name) of \(count)")
            gradients[i].withUnsafeBufferPointer { g in
                parameters[i].values.withUnsafeMutableBufferPointer { p in
                    m.withUnsafeMutableBufferPointer { m in
                        v.withUnsafeMutableBufferPointer { v in
                            let (g, p, m, v) = (g.baseAddress!, p.baseAddress!, m.baseAddress!, v.baseAddress!)
                            Parallel.forEachRun(count, minimumRun: 65_536) { range in
                                for j in range {
                                    let grad = wd == 0 ? g[j] : g[j] + wd * p[j]
                                    m[j] += keep1 * (grad - m[j])
                                    v[j] = v[j] * beta2 + keep2 * grad * grad
                                    p[j] -= stepSize * (m[j] / (v[j].squareRoot() / correction2 + epsilon))
                                }
                            }
                        }
                    }
                }
            }
            firstMoments[name] = m
            secondMoments[name] = v
        }
    }

    var settings: [String: Double] {
        ["lr": learningRate.typedValue, "beta1": betas.0.typedValue, "beta2": betas.1.typedValue, "eps": eps.typedValue,
         "weight_decay": weightDecay.typedValue]
    }

    public var state: OptimizerState {
        var buffers: [String: [Float]] = [:]
        for (name, m) in firstMoments { buffers[name + ".exp_avg"] = m }
        for (name, v) in secondMoments { buffers[name + ".exp_avg_sq"] = v }
        return OptimizerState(kind: "adam", settings: settings, step: step, buffers: buffers)
    }

    public func restore(_ state: OptimizerState) throws {
        try state.check(kind: "adam", settings: settings)
        step = state.step
        firstMoments = [:]
        secondMoments = [:]
        for (key, values) in state.buffers {
            if key.hasSuffix(".exp_avg") { firstMoments[String(key.dropLast(8))] = values }
            if key.hasSuffix(".exp_avg_sq") { secondMoments[String(key.dropLast(11))] = values }
        }
    }
}
