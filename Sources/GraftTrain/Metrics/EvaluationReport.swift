import Foundation

/// An image the model classified wrongly.
public struct Misclassification: Sendable, Equatable {
    public var file: String
    /// Class indices into the report's class names.
    public var truth: Int
    public var predicted: Int
    /// The probability the model gave its (wrong) prediction.
    public var confidence: Double
}

/// The output formats of `graft evaluate`.
public enum ReportFormat: String, CaseIterable, Sendable {
    case text, json, markdown, html
}

/// What `graft evaluate` reports: the classification report in scikit-learn's form, the
/// confusion matrix, the misclassified files and the images that could not be read.
public struct EvaluationReport: Sendable, Equatable {
    public var classNames: [String]
    public var classification: ClassificationReport
    public var confusion: ConfusionMatrix
    /// In the order the images were evaluated.
    public var misclassified: [Misclassification]
    public var skipped: [UnreadableImage]
    /// The number of images evaluated.
    public var count: Int
    /// At a reduced precision, how its outputs compare with f32's on the same images.
    public var precision: PrecisionComparison?

    /// - Parameters:
    ///   - truth, predicted: class indices into `classNames`, one pair per image.
    ///   - confidence: the probability of each prediction.
    ///   - files: the image of each pair.
    public init(classNames: [String], truth: [Int], predicted: [Int], confidence: [Double], files: [String],
                skipped: [UnreadableImage] = []) {
        precondition(confidence.count == truth.count && files.count == truth.count, "one confidence and file per prediction")
        self.classNames = classNames
        classification = ClassificationReport(truth: truth, predicted: predicted, classNames: classNames)
        confusion = ConfusionMatrix(truth: truth, predicted: predicted, classNames: classNames)
        misclassified = truth.indices.filter { truth[$0] != predicted[$0] }.map {
            Misclassification(file: files[$0], truth: truth[$0], predicted: predicted[$0], confidence: confidence[$0])
        }
        self.skipped = skipped
        count = truth.count
    }

    /// The report in `format`.
    ///
    /// - Parameter title: what was evaluated on what (the model, the data and split, the date),
    ///   the HTML page's title and heading.
    public func render(_ format: ReportFormat, title: String = "Evaluation") -> String {
        switch format {
        case .text: return renderText()
        case .json: return renderJSON()
        case .markdown: return renderMarkdown()
        case .html: return renderHTML(title: title)
        }
    }
}
