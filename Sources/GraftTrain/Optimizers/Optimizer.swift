import Dispatch
import GraftCore
import GraftRuntime

/// Updates parameters from their gradients, keeping its own state per parameter (Adam's moment
/// estimates, SGD's momentum buffers) keyed by the parameter's name.
public protocol Optimizer: AnyObject {
    /// Applies one step to every parameter: `parameters[i]` moves against `gradients[i]`.
    func update(_ parameters: inout [Parameter], gradients: [[Float]])

    /// Everything needed to continue exactly where this optimizer is: for `--resume`.
    var state: OptimizerState { get }

    /// Continues from a saved state.
    ///
    /// - Throws: `GraftError` when the state is another optimizer's or has other settings.
    func restore(_ state: OptimizerState) throws
}

/// The saved state of an optimizer: its kind and settings, its step count and its per-parameter
/// buffers (`fc.1.weight.exp_avg`).
public struct OptimizerState: Sendable, Equatable {
    /// `adam` or `sgd`.
    public var kind: String
    /// The hyper-parameters it ran with, to refuse a resume with other settings.
    public var settings: [String: Double]
    public var step: Int
    public var buffers: [String: [Float]]

    public init(kind: String, settings: [String: Double], step: Int, buffers: [String: [Float]]) {
        self.kind = kind
        self.settings = settings
        self.step = step
        self.buffers = buffers
    }

    /// Checks that a saved state is one `kind` with `settings` can continue from.
    func check(kind: String, settings: [String: Double]) throws {
        guard self.kind == kind else {
            throw GraftError(.invalidArgument, "the saved optimizer state is \(self.kind)'s; this run uses \(kind)")
        }
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) where self.settings[key] != value {
            throw GraftError(.invalidArgument, "the saved \(kind) state has \(key) \(self.settings[key].map { "\($0)" } ?? "unset"); this run uses \(value)")
        }
    }
}

/// The optimizer a training run uses, as settings (the run makes the optimizer).
public enum OptimizerChoice: Sendable, Equatable {
    /// Adam with the given learning rate and L2 weight decay (PyTorch's other defaults).
    case adam(learningRate: Float = 1e-3, weightDecay: Float = 0)
    /// SGD with momentum (PyTorch's, dampening 0, not Nesterov) and L2 weight decay.
    case sgd(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0)

    /// PyTorch's default Adam.
    public static let `default` = OptimizerChoice.adam()

    /// A fresh optimizer with these settings.
    public func makeOptimizer() -> any Optimizer {
        switch self {
        case .adam(let lr, let wd): return Adam(learningRate: lr, weightDecay: wd)
        case .sgd(let lr, let momentum, let wd): return SGD(learningRate: lr, momentum: momentum, weightDecay: wd)
        }
    }

    /// The learning rate.
    public var learningRate: Float {
        switch self {
        case .adam(let lr, _), .sgd(let lr, _, _): return lr
        }
    }
}

extension Float {
    /// The double a user most likely typed for this float: its shortest decimal (`0.9`, not
    /// `0.899999976`). PyTorch keeps hyper-parameters as Python floats, and the scalars it derives
    /// from them (`1 − β`, bias corrections) differ in the last bit otherwise.
    var typedValue: Double { Double(description) ?? Double(self) }
}
