import COpenBLAS
import Dispatch
import GraftCore
import GraftRuntime

/// How a training run ended.
public enum StopReason: Sendable, Equatable {
    /// Every epoch ran.
    case completed
    /// The validation loss did not improve for `patience` epochs.
    case earlyStopped
    /// `StopFlag.stop()` was called; the epochs completed before it are saved.
    case interrupted
}

/// What a training run produced.
public struct TrainingResult: Sendable {
    /// The grafted model with the best parameters (lowest validation loss, or training loss
    /// without validation).
    public var graph: Graph
    public var history: TrainingHistory
    /// The epoch whose parameters `graph` holds; nil when no epoch completed.
    public var bestEpoch: Int?
    public var stopReason: StopReason
}

/// Trains the head of a grafted graph on trunk features, the trunk frozen: seeded shuffles,
/// mini-batches, one optimizer step per batch, validation after every epoch, early stopping, the
/// best-on-validation checkpoint, and a resumable state after every epoch.
public final class HeadTrainer {
    public let configuration: TrainingConfiguration
    /// The grafted graph; its head's constants are replaced by the trained ones in results.
    public private(set) var graph: Graph
    public private(set) var head: HeadNetwork
    private let optimizer: any Optimizer

    /// - Parameter graph: a grafted model (`ClassifierHead.graft(onto:seed:)`) whose head
    ///   `HeadNetwork` can train.
    /// - Throws: `GraftError` for invalid settings or a head that cannot be trained.
    public init(graph: Graph, configuration: TrainingConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        self.graph = graph
        self.head = try HeadNetwork(graph: graph)
        self.optimizer = configuration.optimizer.makeOptimizer()
    }

    /// Trains on fixed features (computed once, or read from the cache).
    ///
    /// - Parameters:
    ///   - checkpoint: called with the grafted graph whenever an epoch is the best so far; it
    ///     should write the model atomically (the CLI exports ONNX or HDF5).
    ///   - stop: checked before every batch.
    /// - Throws: `GraftError` for labels out of range, features of the wrong width, a loss that
    ///   is no longer finite, a state file that does not fit, or a failed write.
    public func train(_ train: FeatureSet, validation: FeatureSet?, checkpoint: ((Graph) throws -> Void)? = nil,
                      stop: StopFlag? = nil, events: (TrainingEvent) -> Void = { _ in }) throws -> TrainingResult {
        var data = ContentHash()
        train.features.values.withUnsafeBytes { data.combine($0) }
        train.labels.withUnsafeBytes { data.combine($0) }
        return try self.train(epochFeatures: { _ in train }, dataKey: data.hex, validation: validation,
                              checkpoint: checkpoint, stop: stop, events: events)
    }

    /// Trains on features that may differ per epoch (augmented images); `epochFeatures(e)` gives
    /// epoch `e`'s (from 1), or nil when stopped while computing them.
    ///
    /// - Parameter dataKey: identifies the training data for resuming.
    func train(epochFeatures: (Int) throws -> FeatureSet?, dataKey: String, validation: FeatureSet?,
               checkpoint: ((Graph) throws -> Void)?, stop: StopFlag?, events: (TrainingEvent) -> Void) throws -> TrainingResult {
        let c = configuration
        var fingerprint = c.fingerprint
        fingerprint["data"] = dataKey
        fingerprint["classes"] = "\(head.classCount)"
        fingerprint["head"] = head.parameters.map { "\($0.name)\($0.shape)" }.joined(separator: ",")
        if let names = graph.classNames { fingerprint["classNames"] = "\(names)" }

        var history = TrainingHistory()
        var bestEpoch: Int?
        var bestLoss = Double.infinity
        var bestParameters = head.parameters
        var stale = 0
        var firstEpoch = 1
        if c.resume, let statePath = c.statePath {
            let state = try TrainingState.read(statePath, fingerprint: fingerprint, like: head.parameters)
            head.parameters = state.parameters
            bestParameters = state.bestParameters
            try optimizer.restore(state.optimizer)
            history = state.meta.history
            bestEpoch = state.meta.bestEpoch
            bestLoss = state.meta.bestLoss ?? .infinity
            stale = state.meta.epochsWithoutImprovement
            firstEpoch = state.meta.completedEpochs + 1
            events(.resumed(completedEpochs: state.meta.completedEpochs))
        }
        func result(_ reason: StopReason) -> TrainingResult {
            var best = head
            best.parameters = bestParameters
            var out = graph
            best.write(into: &out)
            return TrainingResult(graph: out, history: history, bestEpoch: bestEpoch, stopReason: reason)
        }
        if let validation { try check(validation, "validation") }

        var epoch = firstEpoch
        while epoch <= c.epochs {
            if let patience = c.patience, stale >= patience, let best = bestEpoch {
                events(.stoppedEarly(epoch: epoch - 1, bestEpoch: best))
                return result(.earlyStopped)
            }
            guard let train = try epochFeatures(epoch) else { return result(.interrupted) }
            // The epoch's time is the head's: the trunk features have their own event.
            let start = DispatchTime.now().uptimeNanoseconds
            try check(train, "training")
            guard train.count > 0 else {
                throw GraftError(.invalidArgument, "there are no training samples")
            }
            var shuffle = SeededGenerator(seed: c.seed, purpose: .shuffle, epoch: epoch)
            let order = shuffle.permutation(train.count)
            var dropout: SeededGenerator? = SeededGenerator(seed: c.seed, purpose: .dropout, epoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0
            // The head's products are the only work now: OpenBLAS may use every core (the
            // runtime keeps it to one thread while its own kernels run).
            openblas_set_num_threads(Int32(Parallel.threads))
            defer { openblas_set_num_threads(1) }
            for batchStart in stride(from: 0, to: order.count, by: c.batchSize) {
                if stop?.isStopped == true { return result(.interrupted) }
                let rows = Array(order[batchStart..<min(batchStart + c.batchSize, order.count)])
                let x = train.features.gatheringRows(rows)
                let labels = rows.map { train.labels[$0] }
                let step = head.lossAndGradients(x, labels: labels, random: &dropout)
                guard step.loss.isFinite else {
                    throw GraftError(.invalidArgument, "the training loss became \(step.loss) in epoch \(epoch); try a lower learning rate")
                }
                optimizer.update(&head.parameters, gradients: step.gradients)
                lossSum += Double(step.loss) * Double(rows.count)
                correct += step.correct
                seen += rows.count
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                events(.progress(TrainingProgress(phase: .training(epoch: epoch, epochs: c.epochs), completed: seen,
                                                  total: train.count, elapsed: elapsed)))
            }
            let measured = validation.map { evaluate($0) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let record = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: Double(correct) / Double(seen),
                                     validationLoss: measured?.loss, validationAccuracy: measured?.accuracy, seconds: seconds)
            history.epochs.append(record)
            let monitored = record.validationLoss ?? record.trainLoss
            let isBest = monitored < bestLoss
            if isBest {
                bestLoss = monitored
                bestEpoch = epoch
                bestParameters = head.parameters
                stale = 0
                try checkpoint?(result(.completed).graph)
            } else {
                stale += 1
            }
            if let statePath = c.statePath {
                let o = optimizer.state
                let meta = TrainingState.Meta(fingerprint: fingerprint, completedEpochs: epoch, bestEpoch: bestEpoch,
                                              bestLoss: bestLoss.isFinite ? bestLoss : nil, epochsWithoutImprovement: stale,
                                              history: history, parameterNames: head.parameters.map(\.name),
                                              optimizerKind: o.kind, optimizerSettings: o.settings, optimizerStep: o.step)
                try TrainingState(meta: meta, parameters: head.parameters, bestParameters: bestParameters, optimizer: o).write(to: statePath)
            }
            if let path = c.historyPath { try history.writeCSV(to: path) }
            if let path = c.plotPath { try history.writeSVG(to: path, bestEpoch: bestEpoch) }
            events(.epochEnded(record, isBest: isBest))
            epoch += 1
        }
        return result(.completed)
    }

    /// The mean NLL loss and the accuracy of the current head on `set`, dropout off.
    public func evaluate(_ set: FeatureSet) -> (loss: Double, accuracy: Double) {
        guard set.count > 0 else { return (0, 0) }
        var lossSum = 0.0, correct = 0
        for start in stride(from: 0, to: set.count, by: 1024) {
            let rows = Array(start..<min(start + 1024, set.count))
            let labels = rows.map { set.labels[$0] }
            let y = head.logProbabilities(set.features.gatheringRows(rows))
            lossSum += Double(NLLLossOp.forward(y, labels: labels)) * Double(rows.count)
            correct += zip(y.argmaxRows(), labels).filter { $0 == $1 }.count
        }
        return (lossSum / Double(set.count), Double(correct) / Double(set.count))
    }

    private func check(_ set: FeatureSet, _ name: String) throws {
        guard set.features.columns == head.featureCount else {
            throw GraftError(.invalidArgument, "the \(name) features have \(set.features.columns) columns; the head reads \(head.featureCount)")
        }
        if let bad = set.labels.first(where: { $0 < 0 || $0 >= head.classCount }) {
            throw GraftError(.invalidArgument, "a \(name) label is \(bad); the head has \(head.classCount) classes")
        }
    }
}
