/// Counts of (true class, predicted class) pairs: `counts[t][p]`.
public struct ConfusionMatrix: Sendable, Equatable {
    public var classNames: [String]
    /// Rows are true classes, columns predicted classes.
    public var counts: [[Int]]

    public init(truth: [Int], predicted: [Int], classNames: [String]) {
        precondition(truth.count == predicted.count, "\(truth.count) true labels for \(predicted.count) predictions")
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classNames.count), count: classNames.count)
        for (t, p) in zip(truth, predicted) { counts[t][p] += 1 }
        self.classNames = classNames
        self.counts = counts
    }

    /// A table with the true classes down and the predicted classes across, right-aligned.
    public func text() -> String {
        let corner = "true \\ predicted"
        let labelWidth = max(corner.count, classNames.map(\.count).max() ?? 0)
        let widths = classNames.indices.map { c in max(classNames[c].count, counts.map { String($0[c]).count }.max() ?? 1) }
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(n - s.count, 0)) + s }
        func padRight(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(n - s.count, 0)) }
        var lines = [padRight(corner, labelWidth) + zip(classNames, widths).map { "  " + pad($0, $1) }.joined()]
        for (name, row) in zip(classNames, counts) {
            lines.append(padRight(name, labelWidth) + zip(row, widths).map { "  " + pad(String($0), $1) }.joined())
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
