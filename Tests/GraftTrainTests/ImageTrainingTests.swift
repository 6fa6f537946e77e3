import Foundation
import GraftCore
import GraftRuntime
import GraftONNX
import GraftTestSupport
@testable import GraftTrain
import GraftVision
import XCTest

/// The whole flow on images: synthetic cat and dog pictures through the tiny ResNet's frozen
/// trunk, features cached on disk, a grafted head trained and evaluated.
final class ImageTrainingTests: XCTestCase {
    /// The tiny trunk reads 64×64 images.
    static let transform = ImageTransform(resize: 64, crop: 64)

    static func trunk() throws -> Graph {
        try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_dynamic.onnx"))
    }

    static func images(perClass: Int, in dir: TemporaryDirectory) throws -> ImageDataset.Splits {
        try SyntheticImages.write(to: dir.path, perClass: perClass, seed: 1, layout: .classFolders)
        return try ImageDataset.load(dir.path, proportions: SplitProportions(validation: 0.2, test: 0.3))
    }

    func testTheTrainedHeadClassifiesSyntheticImages() throws {
        let dir = try TemporaryDirectory()
        let splits = try Self.images(perClass: 60, in: dir)
        var c = TrainingConfiguration()
        c.hidden = [64, 32]
        c.dropout = [0.5, 0.3]
        c.epochs = 15
        c.batchSize = 8
        c.patience = 5
        c.transform = Self.transform
        c.cacheDirectory = dir.file("cache")
        c.historyPath = dir.file("history.csv")
        c.plotPath = dir.file("history.svg")
        var messages: [String] = []
        var checkpoints = 0
        let result = try Trainer(configuration: c).run(model: try Self.trunk(), train: splits.train, validation: splits.validation,
                                                       checkpoint: { _ in checkpoints += 1 }, events: { if let m = $0.message { messages.append(m) } })
        XCTAssertEqual(result.graph.classNames, ["cat", "dog"])
        XCTAssertGreaterThanOrEqual(checkpoints, 1)
        XCTAssertTrue(messages.contains { $0.hasPrefix("train: trunk features computed and cached in \(dir.file("cache"))/features-") }, "\(messages)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.file("history.svg")))

        let report = try XCTUnwrap(try Evaluator(model: CompiledModel(result.graph)).evaluate(splits.test!, transform: Self.transform, batchSize: 16))
        print(report.render(.text))
        XCTAssertEqual(report.count, 36)
        XCTAssertGreaterThanOrEqual(report.classification.accuracy, 0.95)

        // A second run reads every split's features from the cache and trains the same head.
        var again: [String] = []
        let second = try Trainer(configuration: c).run(model: try Self.trunk(), train: splits.train, validation: splits.validation,
                                                       events: { if let m = $0.message { again.append(m) } })
        XCTAssertEqual(again.filter { $0.contains("read from the cache") }.count, 2, "\(again)")
        XCTAssertEqual(second.graph, result.graph)
    }

    /// With augmentation every epoch sees freshly cropped training images, so their features are
    /// computed per epoch and not cached; validation's are.
    func testAugmentedTrainingComputesFeaturesEveryEpoch() throws {
        let dir = try TemporaryDirectory()
        let splits = try Self.images(perClass: 6, in: dir)
        var c = TrainingConfiguration()
        c.hidden = [8]
        c.dropout = [0.2]
        c.epochs = 2
        c.transform = Self.transform
        c.augmentation = Augmentation(scale: 0.5...1)
        c.cacheDirectory = dir.file("cache")
        var phases: [TrainingProgress.Phase] = []
        var messages: [String] = []
        let result = try Trainer(configuration: c).run(model: try Self.trunk(), train: splits.train, validation: splits.validation, events: {
            if case .progress(let p) = $0, phases.last != p.phase { phases.append(p.phase) }
            if let m = $0.message { messages.append(m) }
        })
        XCTAssertEqual(result.history.epochs.count, 2)
        XCTAssertEqual(phases, [.features(split: "validation"), .features(split: "train"), .training(epoch: 1, epochs: 2),
                                .features(split: "train"), .training(epoch: 2, epochs: 2)])
        XCTAssertEqual(messages.filter { $0.contains("cache") }.map { String($0.prefix(11)) }, ["validation:"])
        XCTAssertNotEqual(result.history.epochs[0].trainLoss, result.history.epochs[1].trainLoss)
    }

    func testTheFeatureCacheIsKeyedCheckedAndRebuilt() throws {
        let dir = try TemporaryDirectory()
        let splits = try Self.images(perClass: 4, in: dir)
        var samples = splits.train.samples
        FileManager.default.createFile(atPath: dir.file("cat/empty.jpg"), contents: Data())
        samples.append(ImageSample(path: dir.file("cat/empty.jpg"), label: 0))
        let extractor = try FeatureExtractor(model: try Self.trunk())
        let cache = FeatureCache(directory: dir.file("cache"))
        func extract() throws -> (FeatureSet, [TrainingEvent]) {
            var events: [TrainingEvent] = []
            let set = try extractor.extract(samples, transform: Self.transform, batchSize: 3, split: "train", cache: cache) {
                if case .progress = $0 { return }
                events.append($0)
            }
            return (try XCTUnwrap(set), events)
        }
        let (first, written) = try extract()
        XCTAssertEqual(first.count, samples.count - 1)
        XCTAssertEqual(first.files, samples.dropLast().map(\.path))
        XCTAssertEqual(first.skipped.map(\.file), [dir.file("cat/empty.jpg")])
        guard case .featureCache(_, let file, .written)? = written.last else { return XCTFail("\(written)") }
        XCTAssertEqual(written.first, .skippedImages(split: "train", images: first.skipped))

        let (hit, events) = try extract()
        XCTAssertEqual(hit, first)
        XCTAssertEqual(events, [.featureCache(split: "train", file: file, status: .hit), .skippedImages(split: "train", images: first.skipped)])

        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: file))
        let (rebuilt, rebuildEvents) = try extract()
        XCTAssertEqual(rebuilt, first)
        XCTAssertEqual(rebuildEvents.last, .featureCache(split: "train", file: file,
                                                          status: .rebuilt(reason: "not a valid Graft feature cache file: the checksum does not match (the file is truncated or corrupted)")))

        // A touched image, another transform or another trunk is another key.
        let later = Date().addingTimeInterval(10)
        try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: samples[0].path)
        let (_, touched) = try extract()
        guard case .featureCache(_, let other, .written)? = touched.last else { return XCTFail("\(touched)") }
        XCTAssertNotEqual(other, file)
        let key = FeatureCache.key(trunkKey: extractor.trunkKey, transform: FeatureExtractor.describe(Self.transform), samples: samples)
        XCTAssertNotEqual(FeatureCache.key(trunkKey: extractor.trunkKey, transform: FeatureExtractor.describe(ImageTransform(resize: 72, crop: 64)),
                                           samples: samples), key)
        var retrained = try Self.trunk()
        let weight = retrained.nodes.first { $0.op.name == "Conv" }!.inputs[1]
        retrained.constants[weight] = retrained.constants[weight].map { t in Tensor(shape: t.shape, floats: t.floats.map { $0 * 2 }) }
        XCTAssertNotEqual(FeatureCache.key(trunkKey: try FeatureExtractor(model: retrained).trunkKey,
                                           transform: FeatureExtractor.describe(Self.transform), samples: samples), key)
    }

    /// Ctrl-C during the feature extraction keeps the chunks done; the next run reads them, computes
    /// only the rest, and gives the features of one uninterrupted run.
    func testAnInterruptedExtractionResumesFromItsChunks() throws {
        let dir = try TemporaryDirectory()
        let splits = try Self.images(perClass: 10, in: dir)
        var samples = splits.train.samples
        FileManager.default.createFile(atPath: dir.file("cat/empty.jpg"), contents: Data())
        samples.insert(ImageSample(path: dir.file("cat/empty.jpg"), label: 0), at: 2)
        XCTAssertGreaterThan(samples.count, 10)
        let extractor = try FeatureExtractor(model: try Self.trunk())
        func extract(_ cache: FeatureCache, stopAfter: Int? = nil) throws -> (FeatureSet?, [TrainingEvent]) {
            var events: [TrainingEvent] = []
            let stop = StopFlag()
            let set = try extractor.extract(samples, transform: Self.transform, batchSize: 3, split: "train", cache: cache, stop: stop) {
                if case .progress(let p) = $0, let n = stopAfter, p.completed >= n { stop.stop() }
                events.append($0)
            }
            return (set, events)
        }
        func completed(_ events: [TrainingEvent]) -> [Int] {
            events.compactMap { if case .progress(let p) = $0 { return p.completed } else { return nil } }
        }
        let (straight, _) = try extract(FeatureCache(directory: dir.file("straight")))
        let uninterrupted = try XCTUnwrap(straight)
        XCTAssertEqual(uninterrupted.skipped.map(\.file), [dir.file("cat/empty.jpg")])

        // Chunks of two batches: [0, 6) is written on the way, [6, 9) when the run stops.
        let cache = FeatureCache(directory: dir.file("cache"), chunkSize: 4)
        let key = FeatureCache.key(trunkKey: extractor.trunkKey, transform: FeatureExtractor.describe(Self.transform), samples: samples)
        let (stopped, stopEvents) = try extract(cache, stopAfter: 9)
        XCTAssertNil(stopped)
        XCTAssertEqual(completed(stopEvents), [3, 6, 9])
        XCTAssertEqual(stopEvents.last, .featureCache(split: "train", file: cache.path(forKey: key), status: .kept(done: 9, total: samples.count)))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.directory).sorted(),
                       ["features-\(key).part-0.bin", "features-\(key).part-6.bin"])

        let (resumed, events) = try extract(cache)
        XCTAssertEqual(events.first, .featureCache(split: "train", file: cache.path(forKey: key), status: .resumed(done: 9, total: samples.count)))
        XCTAssertEqual(completed(events), Array(stride(from: 12, to: samples.count, by: 3)) + [samples.count])
        guard case .featuresComputed(_, samples.count - 9, _)? = events.first(where: { if case .featuresComputed = $0 { return true } else { return false } }) else {
            return XCTFail("\(events)")
        }
        XCTAssertEqual(events.last, .featureCache(split: "train", file: cache.path(forKey: key), status: .written))
        XCTAssertEqual(resumed, uninterrupted)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.directory), ["features-\(key).bin"])

        // A damaged chunk and those after it are computed again.
        let again = FeatureCache(directory: dir.file("again"), chunkSize: 4)
        _ = try extract(again, stopAfter: 9)
        let second = again.chunkPath(forKey: key, start: 6)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: second))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: second))
        let (repaired, repairEvents) = try extract(again)
        XCTAssertEqual(repairEvents.first, .featureCache(split: "train", file: again.path(forKey: key), status: .resumed(done: 6, total: samples.count)))
        XCTAssertEqual(completed(repairEvents).first, 9)
        XCTAssertEqual(repaired, uninterrupted)
    }

    func testEvaluationMatchesClassesByNameAndRefusesUnknownOnes() throws {
        let dir = try TemporaryDirectory()
        let splits = try Self.images(perClass: 3, in: dir)
        let grafted = try ClassifierHead(classNames: ["dog", "cat"], hidden: [4], dropout: [0.1]).graft(onto: try Self.trunk())
        let report = try XCTUnwrap(try Evaluator(model: CompiledModel(grafted)).evaluate(splits.train, transform: Self.transform))
        XCTAssertEqual(report.classNames, ["dog", "cat"])
        XCTAssertEqual(report.classification.classes.map(\.support), [splits.train.classCounts[1], splits.train.classCounts[0]])
        let renamed = try ClassifierHead(classNames: ["cat", "wolf"], hidden: [4], dropout: [0.1]).graft(onto: try Self.trunk())
        XCTAssertThrowsError(try Evaluator(model: CompiledModel(renamed)).evaluate(splits.train, transform: Self.transform)) { error in
            XCTAssertEqual((error as? GraftError)?.description, "the images have a class 'dog' the model does not know (it knows cat, wolf)")
        }
        XCTAssertThrowsError(try Evaluator(model: CompiledModel(try Self.trunk()))) { error in
            XCTAssertEqual((error as? GraftError)?.description,
                           "the model records no class names (graft.class_names); evaluate a model made by graft train")
        }
    }

    func testPredictorGivesProbabilitiesAndNames() throws {
        let grafted = try ClassifierHead(classNames: ["cat", "dog"], hidden: [4], dropout: [0.1]).graft(onto: try Self.trunk())
        let x = try NPY.read(Fixtures.tiny("input_b3.npy"))
        let predictor = try Predictor(model: CompiledModel(grafted))
        let p = try predictor.probabilities(x)
        XCTAssertEqual(p.rows, 3)
        for r in 0..<3 { XCTAssertEqual(p[r, 0] + p[r, 1], 1, accuracy: 1e-5) }
        let top = predictor.top(1, of: p)
        XCTAssertEqual(top.map { $0.first?.name }, p.argmaxRows().map { ["cat", "dog"][$0] })
        // A plain trunk's logits go through a softmax; without names only indices are known.
        let plain = try Predictor(model: CompiledModel(try Self.trunk()))
        let q = try plain.probabilities(x)
        XCTAssertEqual(q.columns, 10)
        XCTAssertEqual((0..<10).reduce(Float(0)) { $0 + q[0, $1] }, 1, accuracy: 1e-5)
        XCTAssertNil(plain.top(2, of: q)[0][0].name)
        let reference = try NPY.read(Fixtures.tiny("output_b3.npy")).floats
        XCTAssertEqual(plain.top(1, of: q)[0][0].index, (0..<10).max { reference[$0] < reference[$1] })
    }
}
