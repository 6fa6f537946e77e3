import Foundation

/// How far a long phase (feature extraction, an epoch, an evaluation) has come: what a progress
/// bar shows.
public struct TrainingProgress: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        /// Computing trunk features of a split (`train`, `validation`, `test`).
        case features(split: String)
        /// Training the head, epoch `epoch` (from 1) of `epochs`.
        case training(epoch: Int, epochs: Int)
        /// Running a grafted model over a labeled set.
        case evaluation
    }

    public var phase: Phase
    /// Images (or feature rows) done.
    public var completed: Int
    public var total: Int
    /// Seconds since the phase began.
    public var elapsed: Double
    /// Of `completed`, what an earlier run had done (a resumed feature extraction): not counted
    /// in the rate.
    public var initial: Int

    public init(phase: Phase, completed: Int, total: Int, elapsed: Double, initial: Int = 0) {
        self.phase = phase
        self.completed = completed
        self.total = total
        self.elapsed = elapsed
        self.initial = initial
    }

    /// The rate so far, in images per second.
    public var imagesPerSecond: Double { elapsed > 0 ? Double(completed - initial) / elapsed : 0 }

    /// The estimated seconds left at the rate so far; nil before anything is done.
    public var remainingSeconds: Double? {
        guard completed > initial, elapsed > 0 else { return nil }
        return Double(total - completed) / imagesPerSecond
    }

    /// `epoch 3/10 [##########..........]  9216/18398  5120 img/s  ETA 0:02`: one line for a
    /// terminal, which the CLI redraws after a carriage return.
    public func line(barWidth: Int = 24) -> String {
        let label: String
        switch phase {
        case .features(let split): label = "features \(split)"
        case .training(let epoch, let epochs): label = "epoch \(epoch)/\(epochs)"
        case .evaluation: label = "evaluate"
        }
        let fraction = total > 0 ? min(Double(completed) / Double(total), 1) : 1
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled)
        let eta = remainingSeconds.map { "ETA \(Self.clock($0))" } ?? "ETA --:--"
        return "\(label) [\(bar)] \(completed)/\(total)  \(Int(imagesPerSecond.rounded())) img/s  \(eta)"
    }

    /// `m:ss`, or `h:mm:ss` from an hour.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        let (h, m, r) = (s / 3600, s / 60 % 60, s % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, r) : String(format: "%d:%02d", m, r)
    }
}

/// What happened to a split's feature cache.
public enum FeatureCacheStatus: Sendable, Equatable {
    /// The features were read from the cache.
    case hit
    /// The features were computed and written to the cache.
    case written
    /// The cache file was unusable (the reason), so the features were computed and written again.
    case rebuilt(reason: String)
    /// An earlier run was stopped after `done` of the `total` images; their chunks are reused.
    case resumed(done: Int, total: Int)
    /// This run was stopped; the features of the first `done` of the `total` images are kept in
    /// chunks for the next.
    case kept(done: Int, total: Int)
}

/// Something a training run reports as it goes; the CLI draws `progress` as a bar and prints
/// the others' `message`.
public enum TrainingEvent: Sendable, Equatable {
    case progress(TrainingProgress)
    case featureCache(split: String, file: String, status: FeatureCacheStatus)
    case skippedImages(split: String, images: [UnreadableImage])
    /// The trunk features of `images` images (those not resumed from the cache) took `seconds`.
    case featuresComputed(split: String, images: Int, seconds: Double)
    case resumed(completedEpochs: Int)
    /// An epoch ended; `isBest` when its validation loss is the best so far (a checkpoint was written).
    case epochEnded(EpochRecord, isBest: Bool)
    /// Training stopped because validation loss did not improve for `patience` epochs.
    case stoppedEarly(epoch: Int, bestEpoch: Int)

    /// The event as one line of text; nil for progress (drawn as a bar instead).
    public var message: String? {
        switch self {
        case .progress:
            return nil
        case .featureCache(let split, let file, let status):
            switch status {
            case .hit: return "\(split): trunk features read from the cache \(file)"
            case .written: return "\(split): trunk features computed and cached in \(file)"
            case .rebuilt(let reason): return "\(split): the feature cache \(file) was unusable (\(reason)); features computed again"
            case .resumed(let done, let total): return "\(split): trunk features of \(done) of \(total) images kept by an interrupted run; computing the rest"
            case .kept(let done, let total): return "\(split): trunk features of \(done) of \(total) images kept for the next run"
            }
        case .featuresComputed(let split, let images, let seconds):
            return "\(split): trunk features of \(images) images in " + String(format: "%.1f s (%.1f images/s)", seconds,
                                                                                 seconds > 0 ? Double(images) / seconds : 0)
        case .skippedImages(let split, let images):
            let list = images.prefix(10).map { "  \($0.file): \($0.reason)" }
            let more = images.count > 10 ? ["  ... and \(images.count - 10) more"] : []
            return (["\(split): skipped \(images.count) unreadable image\(images.count == 1 ? "" : "s"):"] + list + more)
                .joined(separator: "\n")
        case .resumed(let epochs):
            return "resumed after epoch \(epochs)"
        case .epochEnded(let r, let isBest):
            func cell(_ value: Double?, _ width: Int) -> String {
                let text = value.map { String(format: "%.4f", $0) } ?? "-"
                return String(repeating: " ", count: max(0, width - text.count)) + text
            }
            var cells: [String] = [cell(nil, 0)]
            cells[0] = String(repeating: " ", count: max(0, 5 - String(r.epoch).count)) + String(r.epoch)
            cells.append(cell(Double(r.trainLoss), 10))
            cells.append(cell(Double(r.trainAccuracy), 9))
            cells.append(cell(r.validationLoss.map { Double($0) }, 8))
            cells.append(cell(r.validationAccuracy.map { Double($0) }, 7))
            cells.append(String(format: "%7.1fs", r.seconds))
            return cells.joined(separator: "  ") + (isBest ? "  * saved" : "")
        case .stoppedEarly(let epoch, let best):
            return "stopped early after epoch \(epoch): validation loss has not improved since epoch \(best)"
        }
    }
}

extension TrainingEvent {
    /// The header of the per-epoch table the `.epochEnded` messages are the rows of (80 columns;
    /// `*` marks the best epoch so far, whose model was written).
    public static let epochTableHeader = "epoch  train loss  train acc  val loss  val acc      time"
}

/// Asks a running training or evaluation to stop at the next batch, from any thread (the CLI's
/// Ctrl-C handler). What completed epochs wrote stays on disk, so `--resume` continues.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false

    public init() {}

    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    public var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }
}
