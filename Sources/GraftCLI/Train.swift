import ArgumentParser
import Foundation
import Graft
import GraftCore
import GraftRuntime
import GraftTrain
import GraftVision

extension GraftCommand {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Graft a new classifier head onto a pretrained trunk and train it on a folder of images.",
            discussion: """
            The trunk is frozen: its features are computed once (cached beside the output) and every \
            epoch trains only the head. DIR holds class folders (DIR/train/cat/*.jpg, DIR/val/..., \
            DIR/test/..., or DIR/cat/*.jpg) or Kaggle's flat names (DIR/train/cat.1.jpg), split \
            deterministically. The best epoch on validation is written to --out (ONNX or HDF5), with \
            the per-epoch history as CSV and SVG beside it. Ctrl-C stops after the current batch; \
            --resume continues (an interrupted feature extraction keeps the images it did, and the \
            next run goes on from there).
            """
        )

        @OptionGroup var model: ModelArgument

        @Option(help: "The image folder.", completion: .directory)
        var data: String?

        // Training on trunk features computed before, without images (what the benchmark
        // against PyTorch times): float32 [N, features] and integer labels [N], classes named
        // by their index.
        @Option(help: .hidden)
        var features: String?

        @Option(help: .hidden)
        var labels: String?

        @Option(help: "Where to write the grafted model: .onnx or .h5.")
        var out: String

        @Option(parsing: .unconditional, help: "Epochs to train.")
        var epochs = 10

        @Option(parsing: .unconditional, help: "Learning rate (default 0.001 for Adam, 0.01 for SGD).")
        var lr: Float?

        @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Images per optimizer step.")
        var batchSize = 32

        @Option(parsing: .unconditional, help: "Seed for the head's initialization, the shuffles, dropout and augmentation.")
        var seed: UInt64 = 0

        @Option(parsing: .unconditional, help: "Hidden layer widths of the head, e.g. 1024,256.")
        var head = "1024,256"

        @Option(parsing: .unconditional, help: "Dropout before each hidden layer, e.g. 0.5,0.3 (default: 0.5 before the first, 0.3 before the others).")
        var dropout: String?

        @Option(help: "adam or sgd.")
        var optimizer = "adam"

        @Option(parsing: .unconditional, help: "Momentum for SGD.")
        var momentum: Float = 0.9

        @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "L2 weight decay.")
        var weightDecay: Float = 0

        @Option(parsing: .unconditional, help: "Stop after this many epochs without a better validation loss (0: never).")
        var patience = 3

        @Flag(help: "Train on random resized crops and horizontal flips (features then change every epoch).")
        var augment = false

        @Flag(name: .customLong("no-optimize"), help: "Extract the trunk's features from the graph as imported, without the graph passes.")
        var noOptimize = false

        @Option(help: precisionHelp)
        var precision: PrecisionOption = .f32

        @Flag(help: "Replace an existing --out (and start its run afresh) instead of refusing.")
        var force = false

        @Flag(help: "Continue an interrupted run from its saved state.")
        var resume = false

        @Option(parsing: .unconditional, help: "Threads for the trunk and the head (default: all cores).")
        var threads = Parallel.defaultThreads

        @Option(name: .customLong("timings-json"), help: "Write how long the trunk features of each split and each epoch took, as JSON.")
        var timingsJSON: String?

        func validate() throws {
            guard data != nil || features != nil else { throw ValidationError("missing --data: give the image folder") }
            guard (data == nil) == (features != nil), (features == nil) == (labels == nil) else {
                throw ValidationError("--features and --labels go together, instead of --data")
            }
            try Limits.check("--threads", threads, 1...Limits.threads)
            if FileManager.default.fileExists(atPath: out) && !force && !resume {
                throw ValidationError("\(out) exists: --resume continues its run, --force replaces it")
            }
            guard [.onnx, .hdf5].contains(ModelFormat(pathExtension: out)) else {
                throw ValidationError("\(out): --out must be an .onnx or .h5 file")
            }
            try Limits.check("--epochs", epochs, 1...Limits.epochs)
            try Limits.check("--batch-size", batchSize, 1...Limits.batch)
            try Limits.check("--patience", patience, 0...Limits.epochs)
            if let lr, !(lr.isFinite && lr > 0) { throw ValidationError("--lr must be a positive number") }
            guard momentum.isFinite, momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1)") }
            guard weightDecay.isFinite, weightDecay >= 0 else { throw ValidationError("--weight-decay must be a number at least 0") }
            _ = try hiddenWidths()
            _ = try dropouts()
            guard optimizer == "adam" || optimizer == "sgd" else { throw ValidationError("--optimizer must be adam or sgd") }
        }

        func hiddenWidths() throws -> [Int] {
            if head.isEmpty { return [] }
            let parts = head.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("--head '\(head)' is not a list of positive widths like 1024,256") }
            guard parts.count <= Limits.hiddenLayers, parts.allSatisfy({ $0! <= Limits.width }) else {
                throw ValidationError("--head '\(head)' is too large: at most \(Limits.hiddenLayers) hidden layers of at most \(Limits.width) units")
            }
            return parts.map { $0! }
        }

        func dropouts() throws -> [Float] {
            let layers = try hiddenWidths().count
            guard let dropout else { return (0..<layers).map { $0 == 0 ? 0.5 : 0.3 } }
            let parts = dropout.isEmpty ? [] : dropout.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.allSatisfy({ $0 != nil && $0! >= 0 && $0! < 1 }) else {
                throw ValidationError("--dropout '\(dropout)' is not a list of probabilities in [0, 1) like 0.5,0.3")
            }
            guard parts.count == layers else {
                throw ValidationError("--dropout gives \(parts.count) probabilities for \(layers) hidden layers (--head \(head)): give one per layer")
            }
            return parts.map { $0! }
        }

        func run() throws {
            Parallel.threads = threads
            let trunk = try model.load()
            var c = TrainingConfiguration()
            c.hidden = try hiddenWidths()
            c.dropout = try dropouts()
            c.epochs = epochs
            c.batchSize = batchSize
            c.seed = seed
            c.patience = patience == 0 ? nil : patience
            c.optimizer = optimizer == "sgd"
                ? .sgd(learningRate: lr ?? 0.01, momentum: momentum, weightDecay: weightDecay)
                : .adam(learningRate: lr ?? 1e-3, weightDecay: weightDecay)
            c.transform = .matching(trunk)
            c.optimizeTrunk = !noOptimize
            c.trunkPrecision = precision.resolved(for: trunk)
            c.augmentation = augment ? Augmentation() : nil
            c.cacheDirectory = out + ".cache"
            c.statePath = out + ".state"
            c.resume = resume
            c.historyPath = out + ".history.csv"
            c.plotPath = out + ".history.svg"
            let progress = ProgressLine()
            if resume && !FileManager.default.fileExists(atPath: out + ".state") {
                // Stopped while computing the features: no epoch was saved, the features done were.
                guard FileManager.default.fileExists(atPath: out + ".cache") else {
                    throw GraftError(.invalidArgument, "nothing to resume: no run has written \(out).state or \(out).cache")
                }
                c.resume = false
                progress.note("no epoch of the run before was saved (\(out).state does not exist); training starts at epoch 1")
            }
            let stop = StopFlag()
            let interrupt = Interrupt(stop)
            defer { interrupt.cancel() }
            let output = out
            var timings = Timings(threads: threads, batchSize: batchSize, featureBatchSize: c.featureBatchSize)
            func events(_ event: TrainingEvent) {
                timings.record(event)
                progress.handle(event)
            }
            // The split goes into every model written, for `evaluate` to use the same one.
            var record: SplitRecord?
            let checkpoint = { (graph: Graph) in
                var graph = graph
                graph.splitRecord = record
                try ModelFile.write(graph, to: output)
            }
            let result: TrainingResult
            if let features, let labels {
                let (set, classes) = try Self.featureSet(features, labels)
                result = try Trainer(configuration: c).run(model: trunk, features: set, classNames: classes,
                                                           checkpoint: checkpoint, stop: stop, events: events)
            } else {
                let data = data!
                let splits = try ImageDataset.load(data, seed: seed)
                record = SplitRecord(splits, root: data, seed: seed)
                progress.note("\(data): \(splits.layout); train \(splits.train.count), validation \(splits.validation?.count ?? 0), test \(splits.test?.count ?? 0) images; classes \(splits.train.classNames.joined(separator: ", "))")
                result = try Trainer(configuration: c).run(model: trunk, train: splits.train, validation: splits.validation,
                                                           checkpoint: checkpoint, stop: stop, events: events)
            }
            progress.finish()
            if let timingsJSON { try timings.write(to: timingsJSON) }
            switch result.stopReason {
            case .interrupted where result.history.epochs.isEmpty:
                throw GraftError(.io, "interrupted before the first epoch ended; the trunk features done are kept in \(out).cache: run the same command again to continue")
            case .interrupted:
                throw GraftError(.io, "interrupted; completed epochs are saved (\(out).state): run again with --resume to continue")
            default:
                if result.bestEpoch == nil { try checkpoint(result.graph) }
                print("best epoch \(result.bestEpoch.map(String.init) ?? "-"); model written to \(out); history in \(out).history.csv and \(out).history.svg")
            }
        }

        /// The `--features` and `--labels` arrays as a feature set, and the class names (the
        /// label values, 0 to the largest).
        static func featureSet(_ featuresFile: String, _ labelsFile: String) throws -> (FeatureSet, [String]) {
            let x = try NPY.read(featuresFile), y = try NPY.read(labelsFile)
            guard x.dtype == .float32, x.rank == 2 else {
                throw GraftError(.badInput, "the features must be a float32 array [rows, features]; this is \(x.dtype) \(x.shape)", file: featuresFile)
            }
            guard [.int64, .int32].contains(y.dtype), y.shape == [x.shape[0]] else {
                throw GraftError(.badInput, "the labels must be an int64 or int32 array [\(x.shape[0])]; this is \(y.dtype) \(y.shape)", file: labelsFile)
            }
            let labels = y.int64s
            guard let top = labels.max(), labels.allSatisfy({ $0 >= 0 }), top < 100_000 else {
                throw GraftError(.badInput, "the labels must be class indices from 0", file: labelsFile)
            }
            let set = FeatureSet(features: try Matrix(x), labels: labels.map { Int($0) })
            return (set, (0...top).map { "\($0)" })
        }
    }
}

/// What `--timings-json` writes: the seconds of each split's trunk features and of each epoch.
struct Timings: Encodable {
    struct Features: Encodable {
        var split: String
        var images: Int
        var seconds, imagesPerSecond: Double

        enum CodingKeys: String, CodingKey {
            case split, images, seconds, imagesPerSecond = "images_per_second"
        }
    }

    struct Epoch: Encodable {
        var epoch: Int
        var seconds, trainLoss: Double

        enum CodingKeys: String, CodingKey {
            case epoch, seconds, trainLoss = "train_loss"
        }
    }

    var threads, batchSize, featureBatchSize: Int
    var features: [Features] = []
    var epochs: [Epoch] = []

    enum CodingKeys: String, CodingKey {
        case threads, batchSize = "batch_size", featureBatchSize = "feature_batch_size", features, epochs
    }

    init(threads: Int, batchSize: Int, featureBatchSize: Int) {
        self.threads = threads
        self.batchSize = batchSize
        self.featureBatchSize = featureBatchSize
    }

    mutating func record(_ event: TrainingEvent) {
        switch event {
        case .featuresComputed(let split, let images, let seconds):
            features.append(Features(split: split, images: images, seconds: seconds, imagesPerSecond: seconds > 0 ? Double(images) / seconds : 0))
        case .epochEnded(let r, _):
            epochs.append(Epoch(epoch: r.epoch, seconds: r.seconds, trainLoss: Double(r.trainLoss)))
        default: break
        }
    }

    func write(to path: String) throws {
        try AtomicFile.write(Data(try JSONOutput.string(self).utf8), to: path)
    }
}
