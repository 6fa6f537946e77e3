import Dispatch
import Foundation
import GraftCore
import GraftRuntime
import GraftVision

/// Computes the trunk features of images with the fast runtime: the model cut at the value its
/// classifier reads (`[N, 2048]` for ResNet-50), optimized by the graph passes, run in batches
/// while the next batch is decoded.
public final class FeatureExtractor {
    /// The trunk's output value.
    public let featureValue: String
    /// The width of a feature row.
    public let featureCount: Int
    /// A hash of the trunk's nodes and weights, for the feature cache's key.
    let trunkKey: String
    private let compiled: CompiledModel
    private let inputName: String

    /// - Parameters:
    ///   - model: a model that ends in a fully connected classifier (a pretrained ResNet, or a
    ///     grafted one: the same trunk either way).
    ///   - optimize: run the graph passes on the trunk first.
    ///   - precision: the trunk's convolutions' precision (features in bf16 are cached apart
    ///     from f32's).
    /// - Throws: `GraftError` when the model has no classifier to cut off, more than one input, or
    ///   a graph the passes or the runtime refuse.
    public init(model: Graph, optimize: Bool = true, precision: Plan.Precision = .f32) throws {
        let chain = try ClassifierChain(graph: model)
        let trunk = chain.trunk(of: model)
        guard trunk.inputs.count == 1 else {
            throw GraftError(.invalidArgument, "the trunk must have one image input; it has \(trunk.inputs.count)")
        }
        featureValue = chain.featureValue
        featureCount = chain.featureCount
        inputName = trunk.inputs[0].name
        trunkKey = FeatureExtractor.hash(trunk) + (precision == .f32 ? "" : "-" + precision.rawValue)
        compiled = try CompiledModel(trunk, optimize: optimize, precision: precision)
    }

    /// The features `[n, features]` of a batch of images `[n, 3, H, W]`.
    ///
    /// - Throws: `GraftError` when the images do not fit the trunk's input.
    public func features(of images: Tensor) throws -> Matrix {
        guard let y = try compiled.run([inputName: images]).values.first else {
            throw GraftError(.internal, "the trunk produced no output")
        }
        return try Matrix(y.rank == 2 ? y : y.reshaped([images.shape[0], y.elementCount / max(images.shape[0], 1)]))
    }

    /// The features of every readable image of `samples`, from `cache` when it holds them.
    ///
    /// Images that cannot be decoded are left out and listed in the result's `skipped`. With an
    /// `augmentation` the images are randomized (by `seed`), and nothing is cached. Without, the
    /// features go to the cache in chunks as they are computed, so a run stopped (or killed)
    /// part way keeps what it did, and the next one with the same images starts after it.
    ///
    /// - Parameters:
    ///   - split: the name events use (`train`, `validation`).
    /// - Returns: the features, or nil when `stop` was raised first.
    /// - Throws: `GraftError` when the trunk fails or the cache cannot be written.
    public func extract(_ samples: [ImageSample], transform: ImageTransform, augmentation: Augmentation? = nil,
                        seed: UInt64 = 0, batchSize: Int, split: String, cache: FeatureCache?,
                        stop: StopFlag? = nil, events: (TrainingEvent) -> Void) throws -> FeatureSet? {
        precondition(batchSize > 0, "the batch size must be positive")
        let useCache = augmentation == nil ? cache : nil
        let key = useCache.map { _ in FeatureCache.key(trunkKey: trunkKey, transform: Self.describe(transform), samples: samples) }
        var rebuildReason: String?
        var done = FeatureCache.Progress()
        if let useCache, let key {
            switch useCache.lookup(key: key, samples: samples, featureValue: featureValue, featureCount: featureCount) {
            case .hit(let set):
                useCache.removeChunks(key: key)
                events(.featureCache(split: split, file: useCache.path(forKey: key), status: .hit))
                if !set.skipped.isEmpty { events(.skippedImages(split: split, images: set.skipped)) }
                return set
            case .missing: break
            case .unusable(let reason): rebuildReason = reason
            }
            done = useCache.resume(key: key, samples: samples, featureValue: featureValue, featureCount: featureCount)
            if done.end > 0 {
                events(.featureCache(split: split, file: useCache.path(forKey: key), status: .resumed(done: done.end, total: samples.count)))
            }
        }

        let start = DispatchTime.now().uptimeNanoseconds
        let resumed = done.end
        done.values.reserveCapacity(samples.count * featureCount)
        // What is not yet in a chunk file: from sample `pending` on, its first value and row.
        var pending = (sample: done.end, value: done.values.count, row: done.rows.count, skipped: done.skipped.count)
        func storeChunk() throws {
            guard let useCache, let key, done.end > pending.sample else { return }
            try useCache.storeChunk(values: Array(done.values[pending.value...]), rows: Array(done.rows[pending.row...]),
                                    skipped: Array(done.skipped[pending.skipped...]), start: pending.sample, end: done.end,
                                    key: key, samples: samples, featureValue: featureValue, featureCount: featureCount)
            pending = (done.end, done.values.count, done.rows.count, done.skipped.count)
        }
        let batches = stride(from: done.end, to: samples.count, by: batchSize).map { $0..<min($0 + batchSize, samples.count) }
        let prefetch = Prefetch()
        func load(_ b: Int) {
            let range = batches[b]
            // Each batch draws its augmentations from its own stream of the seed.
            prefetch.start(Array(samples[range]), transform: transform, augmentation: augmentation,
                           seed: seed &* 1_000_003 &+ UInt64(b))
        }
        if !batches.isEmpty { load(0) }
        for b in batches.indices {
            let batch = prefetch.wait()
            if stop?.isStopped == true {
                try storeChunk()
                if let useCache, let key, done.end > 0 {
                    events(.featureCache(split: split, file: useCache.path(forKey: key), status: .kept(done: done.end, total: samples.count)))
                }
                return nil
            }
            if b + 1 < batches.count { load(b + 1) }
            done.skipped += batch.skipped.map { UnreadableImage(file: $0.path, reason: $0.error.description) }
            if !batch.samples.isEmpty {
                done.values += try features(of: batch.images).values
                // The decoded samples are the batch's in order, less the skipped ones.
                var next = 0
                for i in batches[b] where next < batch.samples.count && samples[i] == batch.samples[next] {
                    done.rows.append(Int64(i))
                    next += 1
                }
            }
            done.end = batches[b].upperBound
            if done.end - pending.sample >= (useCache?.chunkSize ?? .max), done.end < samples.count { try storeChunk() }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            events(.progress(TrainingProgress(phase: .features(split: split), completed: done.end,
                                              total: samples.count, elapsed: elapsed, initial: resumed)))
        }
        let kept = done.rows.map { samples[Int($0)] }
        let set = FeatureSet(features: Matrix(rows: kept.count, columns: featureCount, values: done.values),
                             labels: kept.map(\.label), files: kept.map(\.path), skipped: done.skipped)
        if !set.skipped.isEmpty { events(.skippedImages(split: split, images: set.skipped)) }
        events(.featuresComputed(split: split, images: samples.count - resumed,
                                 seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        if let useCache, let key {
            try useCache.store(set, rows: done.rows, key: key, samples: samples, featureValue: featureValue)
            events(.featureCache(split: split, file: useCache.path(forKey: key),
                                 status: rebuildReason.map { .rebuilt(reason: $0) } ?? .written))
        }
        return set
    }

    /// The transform's settings as text, for the cache key.
    static func describe(_ t: ImageTransform) -> String {
        "resize=\(t.resize) crop=\(t.crop) mean=\(t.mean) std=\(t.std)"
    }

    /// A hash of a graph's nodes, inputs, outputs and constants.
    static func hash(_ graph: Graph) -> String {
        var h = ContentHash()
        for node in graph.nodes { h.combine(String(describing: node)) }
        for value in graph.inputs + graph.outputs { h.combine(String(describing: value)) }
        for name in graph.constants.keys.sorted() {
            let t = graph.constants[name]!
            h.combine(name)
            h.combine("\(t.dtype)\(t.shape)")
            t.withUnsafeBytes { h.combine($0) }
        }
        return h.hex
    }
}

/// Decodes the next batch on another thread while the trunk runs on this one.
private final class Prefetch: @unchecked Sendable {
    private let queue = DispatchQueue(label: "graft.features.prefetch")
    private let ready = DispatchSemaphore(value: 0)
    private var batch: ImageBatch?

    func start(_ samples: [ImageSample], transform: ImageTransform, augmentation: Augmentation?, seed: UInt64) {
        queue.async {
            self.batch = ImageBatch.load(samples, transform: transform, augmentation: augmentation, seed: seed)
            self.ready.signal()
        }
    }

    func wait() -> ImageBatch {
        ready.wait()
        defer { batch = nil }
        return batch!
    }
}
