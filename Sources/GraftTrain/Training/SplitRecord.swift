import Foundation
import GraftCore
import GraftVision

/// How a grafted model's images were split, kept in the model (`Graph.splitRecord`) so that
/// `graft evaluate` measures it on the images it was not trained on: the seed, and a digest of
/// each split's files (paths relative to the data folder, with their labels).
public struct SplitRecord: Codable, Sendable, Equatable {
    public var seed: UInt64
    /// The digest of the training, validation and test files, by split name.
    public var digests: [String: String]

    /// The record of `splits`, made from the folder `root` with `seed`.
    public init(_ splits: ImageDataset.Splits, root: String, seed: UInt64) {
        self.seed = seed
        var digests = ["train": Self.digest(splits.train, root: root)]
        if let validation = splits.validation { digests["validation"] = Self.digest(validation, root: root) }
        if let test = splits.test { digests["test"] = Self.digest(test, root: root) }
        self.digests = digests
    }

    /// Whether `splits` (made from `root`) is the split this record describes: the same files
    /// in each split.
    public func matches(_ splits: ImageDataset.Splits, root: String) -> Bool {
        SplitRecord(splits, root: root, seed: seed).digests == digests
    }

    static func digest(_ dataset: ImageDataset, root: String) -> String {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        var hash = ContentHash()
        for sample in dataset.samples.sorted(by: { $0.path < $1.path }) {
            let relative = sample.path.hasPrefix(prefix) ? String(sample.path.dropFirst(prefix.count)) : sample.path
            hash.combine(relative)
            hash.combine(dataset.classNames[sample.label])
        }
        return hash.hex
    }
}

extension Graph {
    /// The metadata key of a grafted model's `SplitRecord`, as JSON.
    public static let splitRecordKey = "graft.split"

    /// How the images of a grafted model were split in training; nil for a model that records
    /// none (or one that cannot be read).
    public var splitRecord: SplitRecord? {
        get { metadata.value(SplitRecord.self, forKey: Graph.splitRecordKey) }
        set { metadata.setValue(newValue, forKey: Graph.splitRecordKey) }
    }
}
