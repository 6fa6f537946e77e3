import GraftCore

/// Trunk features with their labels: what the head trains and is evaluated on.
public struct FeatureSet: Sendable, Equatable {
    /// One row of features per sample, `[N, features]`.
    public var features: Matrix
    /// The class index of each row.
    public var labels: [Int]
    /// The image file of each row (empty when the features did not come from files).
    public var files: [String]
    /// Images of the source that could not be read, with why; they have no row.
    public var skipped: [UnreadableImage]

    public init(features: Matrix, labels: [Int], files: [String] = [], skipped: [UnreadableImage] = []) {
        precondition(labels.count == features.rows, "\(labels.count) labels for \(features.rows) rows")
        precondition(files.isEmpty || files.count == features.rows, "\(files.count) files for \(features.rows) rows")
        self.features = features
        self.labels = labels
        self.files = files
        self.skipped = skipped
    }

    public var count: Int { labels.count }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> FeatureSet {
        FeatureSet(features: features.gatheringRows(indices), labels: indices.map { labels[$0] },
                   files: files.isEmpty ? [] : indices.map { files[$0] })
    }
}

/// An image that could not be read or decoded, and why (the error's one-line text): kept in
/// feature caches and reports, so a cached run lists the same images as the first.
public struct UnreadableImage: Sendable, Equatable, Codable {
    public var file: String
    public var reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
}
