import GraftCore
import GraftVision

extension Predictor {
    /// One image and its most probable classes.
    public struct Classified: Sendable {
        public var file: String
        public var scores: [ClassScore]
    }

    /// Classifies image files in batches, each through the evaluation transform that matches
    /// the model's input (`ImageTransform.matching`).
    ///
    /// - Returns: the images that decoded, in order, each with its `topK` classes; and those
    ///   that did not, with why.
    /// - Throws: `GraftError` when the model fails.
    public func classify(files: [String], topK: Int, batchSize: Int = 32) throws -> (classified: [Classified], skipped: [SkippedImage]) {
        precondition(batchSize > 0 && topK > 0, "the batch size and k must be positive")
        let transform = ImageTransform.matching(model.graph)
        var classified: [Classified] = []
        var skipped: [SkippedImage] = []
        for start in stride(from: 0, to: files.count, by: batchSize) {
            let samples = files[start..<min(start + batchSize, files.count)].map { ImageSample(path: $0, label: 0) }
            let batch = ImageBatch.load(samples, transform: transform)
            skipped += batch.skipped
            guard !batch.samples.isEmpty else { continue }
            let top = self.top(topK, of: try probabilities(batch.images))
            classified += zip(batch.samples, top).map { Classified(file: $0.path, scores: $1) }
        }
        return (classified, skipped)
    }
}
