import GraftCore
import GraftVision

/// Transfer learning end to end, what `graft train` runs: grafts a new classifier head onto a
/// pretrained model, computes the frozen trunk's features of the images once (cached on disk),
/// and trains the head on them.
public struct Trainer {
    public var configuration: TrainingConfiguration

    public init(configuration: TrainingConfiguration) {
        self.configuration = configuration
    }

    /// Trains a head for `train`'s classes on top of `model`'s trunk.
    ///
    /// A run stopped before its first epoch ends returns the untrained grafted model with
    /// `bestEpoch` nil, having written no checkpoint.
    ///
    /// - Parameters:
    ///   - model: the pretrained model; its classifier is replaced.
    ///   - train: the training images; their class names become the head's outputs.
    ///   - validation: the images the best epoch and early stopping are judged on; without any,
    ///     the training loss is.
    ///   - checkpoint: writes the grafted model whenever an epoch is the best so far.
    ///   - stop: raised by the CLI on Ctrl-C; the run stops at the next batch.
    ///   - events: progress and messages, for the CLI to draw.
    /// - Throws: `GraftError` for invalid settings, a model without a classifier, a validation
    ///   set whose classes differ, no readable training image, or a failed write.
    public func run(model: Graph, train: ImageDataset, validation: ImageDataset?,
                    checkpoint: ((Graph) throws -> Void)? = nil, stop: StopFlag? = nil,
                    events: (TrainingEvent) -> Void = { _ in }) throws -> TrainingResult {
        let c = configuration
        try c.validate()
        if let validation, validation.classNames != train.classNames {
            throw GraftError(.invalidArgument, "the validation classes (\(validation.classNames.joined(separator: ", "))) are not the training classes (\(train.classNames.joined(separator: ", ")))")
        }
        let head = ClassifierHead(classNames: train.classNames, hidden: c.hidden, dropout: c.dropout)
        let grafted = try head.graft(onto: model, seed: c.seed)
        let extractor = try FeatureExtractor(model: grafted, optimize: configuration.optimizeTrunk, precision: configuration.trunkPrecision)
        let cache = c.cacheDirectory.map { FeatureCache(directory: $0) }
        let trainer = try HeadTrainer(graph: grafted, configuration: c)
        func features(_ set: ImageDataset, _ split: String, augmented: Bool, epoch: Int) throws -> FeatureSet? {
            let result = try extractor.extract(set.samples, transform: c.transform, augmentation: augmented ? c.augmentation : nil,
                                               seed: c.seed &+ UInt64(epoch), batchSize: c.featureBatchSize, split: split,
                                               cache: cache, stop: stop, events: events)
            if let result, result.count == 0 {
                throw GraftError(.badInput, "none of the \(set.count) \(split) images could be read")
            }
            return result
        }
        var validationFeatures: FeatureSet?
        if let validation, validation.count > 0 {
            guard let v = try features(validation, "validation", augmented: false, epoch: 0) else {
                return TrainingResult(graph: grafted, history: TrainingHistory(), bestEpoch: nil, stopReason: .interrupted)
            }
            validationFeatures = v
        }
        var fixed: FeatureSet?
        let dataKey = FeatureCache.key(trunkKey: extractor.trunkKey, transform: FeatureExtractor.describe(c.transform), samples: train.samples)
        return try trainer.train(epochFeatures: { epoch in
            if c.augmentation != nil { return try features(train, "train", augmented: true, epoch: epoch) }
            if fixed == nil { fixed = try features(train, "train", augmented: false, epoch: 0) }
            return fixed
        }, dataKey: dataKey, validation: validationFeatures, checkpoint: checkpoint, stop: stop, events: events)
    }

    /// Trains a head for `classNames` on trunk features computed before (rows of what
    /// `FeatureExtractor` gives for `model`): the head training of `run(model:train:...)`
    /// without the images.
    ///
    /// - Throws: `GraftError` for invalid settings, a model without a classifier, features of
    ///   another width than the trunk's, labels out of range, or a failed write.
    public func run(model: Graph, features train: FeatureSet, classNames: [String], validation: FeatureSet? = nil,
                    checkpoint: ((Graph) throws -> Void)? = nil, stop: StopFlag? = nil,
                    events: (TrainingEvent) -> Void = { _ in }) throws -> TrainingResult {
        let c = configuration
        try c.validate()
        let grafted = try ClassifierHead(classNames: classNames, hidden: c.hidden, dropout: c.dropout).graft(onto: model, seed: c.seed)
        return try HeadTrainer(graph: grafted, configuration: c).train(train, validation: validation, checkpoint: checkpoint,
                                                                       stop: stop, events: events)
    }
}
