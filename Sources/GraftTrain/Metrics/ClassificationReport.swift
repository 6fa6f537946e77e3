import Foundation

/// Per-class precision, recall and F1 with their averages, computed and printed as
/// scikit-learn's `classification_report(y_true, y_pred, labels=range(k), target_names=names,
/// zero_division=0)` does.
///
/// For class `c` with `tp` rows predicted `c` rightly, `P` rows predicted `c` and `T` rows truly
/// `c`: precision `tp / P`, recall `tp / T`, F1 `2·tp / (T + P)` (0 where a denominator is 0),
/// support `T`. The macro average is the mean over classes; the weighted average weighs each
/// class by its support; accuracy is the fraction of rows predicted rightly.
public struct ClassificationReport: Sendable, Equatable {
    /// One row of the report.
    public struct Scores: Sendable, Equatable {
        public var precision: Double
        public var recall: Double
        public var f1Score: Double
        public var support: Int
    }

    public var classNames: [String]
    /// The scores of each class, indexed like `classNames`.
    public var classes: [Scores]
    public var accuracy: Double
    public var macroAverage: Scores
    public var weightedAverage: Scores

    /// - Parameters:
    ///   - truth, predicted: class indices into `classNames`, one pair per row.
    public init(truth: [Int], predicted: [Int], classNames: [String]) {
        precondition(truth.count == predicted.count, "\(truth.count) true labels for \(predicted.count) predictions")
        let k = classNames.count
        precondition(truth.allSatisfy { (0..<k).contains($0) } && predicted.allSatisfy { (0..<k).contains($0) },
                     "labels must index the \(k) class names")
        var tp = [Int](repeating: 0, count: k), predictedCount = tp, trueCount = tp
        for (t, p) in zip(truth, predicted) {
            trueCount[t] += 1
            predictedCount[p] += 1
            if t == p { tp[t] += 1 }
        }
        func divide(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
        let classes = (0..<k).map { c in
            Scores(precision: divide(tp[c], predictedCount[c]), recall: divide(tp[c], trueCount[c]),
                   f1Score: divide(2 * tp[c], trueCount[c] + predictedCount[c]), support: trueCount[c])
        }
        self.classes = classes
        let total = truth.count
        accuracy = divide(tp.reduce(0, +), total)
        func average(_ score: (Scores) -> Double, weighted: Bool) -> Double {
            var sum = 0.0, weights = 0.0
            for s in classes {
                let w = weighted ? Double(s.support) : 1
                sum += score(s) * w
                weights += w
            }
            return weights == 0 ? 0 : sum / weights
        }
        macroAverage = Scores(precision: average(\.precision, weighted: false), recall: average(\.recall, weighted: false),
                              f1Score: average(\.f1Score, weighted: false), support: total)
        weightedAverage = Scores(precision: average(\.precision, weighted: true), recall: average(\.recall, weighted: true),
                                 f1Score: average(\.f1Score, weighted: true), support: total)
        self.classNames = classNames
    }

    /// The report as scikit-learn prints it: names right-aligned to the longest (at least
    /// `weighted avg`), then `precision`, `recall`, `f1-score`, `support` in 10-character
    /// columns, scores with `digits` decimals.
    public func text(digits: Int = 2) -> String {
        let width = max(classNames.map { $0.unicodeScalars.count }.max() ?? 0, "weighted avg".count, digits)
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(n - s.unicodeScalars.count, 0)) + s }
        func score(_ x: Double) -> String { " " + pad(String(format: "%.\(digits)f", x), 9) }
        func row(_ name: String, _ s: Scores) -> String {
            pad(name, width) + " " + score(s.precision) + score(s.recall) + score(s.f1Score) + " " + pad(String(s.support), 9) + "\n"
        }
        var text = pad("", width) + " " + ["precision", "recall", "f1-score", "support"].map { " " + pad($0, 9) }.joined() + "\n\n"
        for (name, s) in zip(classNames, classes) { text += row(name, s) }
        text += "\n"
        text += pad("accuracy", width) + " " + String(repeating: " ", count: 20) + score(accuracy) + " " + pad(String(macroAverage.support), 9) + "\n"
        text += row("macro avg", macroAverage)
        text += row("weighted avg", weightedAverage)
        return text
    }
}
