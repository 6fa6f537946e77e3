import GraftCore
import GraftRuntime
import GraftVision

/// The settings of a head training run (`graft train`'s options).
public struct TrainingConfiguration: Sendable, Equatable {
    /// The width of each hidden layer of the head.
    public var hidden: [Int] = [1024, 256]
    /// The dropout probability before each hidden layer.
    public var dropout: [Float] = [0.5, 0.3]
    /// The most epochs to train (a resumed run counts the epochs already done).
    public var epochs = 10
    /// Feature rows per optimizer step.
    public var batchSize = 32
    public var optimizer: OptimizerChoice = .default
    /// Seeds the head's initialization, the shuffles and the dropout masks (and augmentation).
    public var seed: UInt64 = 0
    /// Stop after this many epochs without a better validation loss; nil trains every epoch.
    public var patience: Int? = 3
    /// Images per trunk batch when computing features.
    public var featureBatchSize = 32
    /// Run the graph passes on the trunk before extracting features (off: the graph as imported).
    public var optimizeTrunk = true
    /// The precision the trunk computes features in (the head always trains in f32).
    public var trunkPrecision: Plan.Precision = .f32
    /// The image transform; with `augmentation` its crop size and normalization.
    public var transform = ImageTransform()
    /// Random crops and flips of the training images; each epoch then computes fresh training
    /// features (nothing is cached for training).
    public var augmentation: Augmentation?
    /// Where trunk features are cached; nil computes them every run.
    public var cacheDirectory: String?
    /// Where the resumable state (latest and best parameters, optimizer state, history) is
    /// written after every epoch; nil writes none.
    public var statePath: String?
    /// Continue from `statePath` instead of starting afresh.
    public var resume = false
    /// Where the per-epoch history is written as CSV, and drawn as SVG, after every epoch.
    public var historyPath: String?
    public var plotPath: String?

    public init() {}

    /// - Throws: `GraftError` (`invalidArgument`) for a setting out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws {
            if !ok { throw GraftError(.invalidArgument, message) }
        }
        try check(epochs >= 1, "the number of epochs must be at least 1; got \(epochs)")
        try check(batchSize >= 1, "the batch size must be at least 1; got \(batchSize)")
        try check(featureBatchSize >= 1, "the feature batch size must be at least 1; got \(featureBatchSize)")
        try check(patience.map { $0 >= 1 } ?? true, "the patience must be at least 1 epoch; got \(patience ?? 0)")
        try check(!resume || statePath != nil, "resuming needs the training state file")
        switch optimizer {
        case .adam(let lr, let wd), .sgd(let lr, _, let wd):
            try check(lr > 0 && lr.isFinite, "the learning rate must be positive; got \(lr)")
            try check(wd >= 0 && wd.isFinite, "the weight decay must not be negative; got \(wd)")
        }
        if case .sgd(_, let momentum, _) = optimizer {
            try check(momentum >= 0 && momentum < 1, "the momentum must be in [0, 1); got \(momentum)")
        }
        try ClassifierHead(classNames: ["a", "b"], hidden: hidden, dropout: dropout).validate()
    }

    /// The settings a resumed run must share with the run it continues.
    var fingerprint: [String: String] {
        ["hidden": "\(hidden)", "dropout": "\(dropout)", "batchSize": "\(batchSize)", "seed": "\(seed)",
         "optimizer": "\(optimizer)", "augmentation": augmentation.map { "\($0)" } ?? "none"]
    }
}
