import Foundation
import GraftCore

/// The numbers of one epoch.
public struct EpochRecord: Sendable, Equatable, Codable {
    /// From 1.
    public var epoch: Int
    /// The mean NLL loss over the epoch's training batches (dropout on), weighted by batch size.
    public var trainLoss: Double
    /// The fraction of training rows classified right during the epoch.
    public var trainAccuracy: Double
    /// The validation loss and accuracy after the epoch (dropout off); nil without validation.
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    /// Wall-clock seconds the epoch's head training and validation took (not the trunk
    /// features it trained on, computed before).
    public var seconds: Double

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, validationLoss: Double?,
                validationAccuracy: Double?, seconds: Double) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.seconds = seconds
    }
}

/// The per-epoch loss and accuracy of a run, written as CSV and drawn as an SVG plot.
public struct TrainingHistory: Sendable, Equatable, Codable {
    public var epochs: [EpochRecord] = []

    public init(epochs: [EpochRecord] = []) {
        self.epochs = epochs
    }

    /// `epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds`, one line per epoch; the
    /// validation columns are empty without validation.
    public func csv() -> String {
        var lines = ["epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds"]
        for r in epochs {
            let val = [r.validationLoss, r.validationAccuracy].map { $0.map { String(format: "%.6f", $0) } ?? "" }
            lines.append("\(r.epoch)," + String(format: "%.6f,%.6f,", r.trainLoss, r.trainAccuracy) + val.joined(separator: ",")
                         + String(format: ",%.3f", r.seconds))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `csv()` to `path` atomically.
    public func writeCSV(to path: String) throws {
        try AtomicFile.write(Data(csv().utf8), to: path)
    }

    /// Writes `svg()` to `path` atomically.
    public func writeSVG(to path: String, bestEpoch: Int? = nil) throws {
        try AtomicFile.write(Data(svg(bestEpoch: bestEpoch).utf8), to: path)
    }
}
