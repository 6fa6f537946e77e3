import Dispatch
import GraftCore
import GraftRuntime
import GraftVision

/// Runs a grafted model over labeled images and reports how it classifies them: what
/// `graft evaluate` runs.
public struct Evaluator {
    public let predictor: Predictor
    /// The model's classes, in the order of its outputs.
    public let classNames: [String]

    /// - Parameter model: a grafted model (its class names are in its metadata).
    /// - Throws: `GraftError` when the model records no class names or cannot run.
    public init(model: CompiledModel) throws {
        guard let names = model.imported.classNames else {
            throw GraftError(.invalidArgument, "the model records no class names (\(Graph.classNamesKey)); evaluate a model made by graft train", file: model.file)
        }
        predictor = try Predictor(model: model)
        classNames = names
    }

    /// Classifies every readable image of `dataset` and compares with its labels, matched to the
    /// model's classes by name.
    ///
    /// - Parameter reference: the same model at f32, where this one runs at a reduced precision:
    ///   its outputs on the same images are compared with this one's (`PrecisionComparison`).
    /// - Returns: the report, or nil when `stop` was raised.
    /// - Throws: `GraftError` when the dataset has a class the model does not know, no image can
    ///   be read, or the model fails.
    public func evaluate(_ dataset: ImageDataset, transform: ImageTransform = ImageTransform(), batchSize: Int = 32,
                         reference: Predictor? = nil, stop: StopFlag? = nil,
                         events: (TrainingEvent) -> Void = { _ in }) throws -> EvaluationReport? {
        precondition(batchSize > 0, "the batch size must be positive")
        let mapping = try dataset.classNames.map { name -> Int in
            guard let i = classNames.firstIndex(of: name) else {
                throw GraftError(.invalidArgument, "the images have a class '\(name)' the model does not know (it knows \(classNames.joined(separator: ", ")))")
            }
            return i
        }
        let start = DispatchTime.now().uptimeNanoseconds
        var truth: [Int] = [], predicted: [Int] = [], confidence: [Double] = [], files: [String] = []
        var skipped: [UnreadableImage] = []
        var tally = PrecisionComparison.Tally()
        for batchStart in stride(from: 0, to: dataset.count, by: batchSize) {
            if stop?.isStopped == true { return nil }
            let samples = Array(dataset.samples[batchStart..<min(batchStart + batchSize, dataset.count)])
            let batch = ImageBatch.load(samples, transform: transform)
            skipped += batch.skipped.map { UnreadableImage(file: $0.path, reason: $0.error.description) }
            if !batch.samples.isEmpty {
                let outputs = try predictor.outputs(batch.images)
                if let reference {
                    tally.add(outputs, reference: try reference.outputs(batch.images), truth: batch.labels.map { mapping[$0] })
                }
                let p = predictor.probabilities(outputs)
                for (row, best) in p.argmaxRows().enumerated() {
                    predicted.append(best)
                    confidence.append(Double(p[row, best]))
                }
                truth += batch.labels.map { mapping[$0] }
                files += batch.samples.map(\.path)
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            events(.progress(TrainingProgress(phase: .evaluation, completed: batchStart + samples.count, total: dataset.count, elapsed: elapsed)))
        }
        if !skipped.isEmpty { events(.skippedImages(split: "evaluation", images: skipped)) }
        guard !truth.isEmpty else {
            throw GraftError(.badInput, "none of the \(dataset.count) images could be read")
        }
        var report = EvaluationReport(classNames: classNames, truth: truth, predicted: predicted, confidence: confidence,
                                      files: files, skipped: skipped)
        if reference != nil { report.precision = tally.comparison(predictor.model.precision.rawValue) }
        return report
    }
}
