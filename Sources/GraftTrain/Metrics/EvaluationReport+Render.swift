import Foundation

extension EvaluationReport {
    /// scikit-learn's report, the confusion matrix, then the misclassified and unreadable files.
    public func renderText() -> String {
        var text = classification.text() + "\n"
        text += "confusion matrix (rows: true class, columns: predicted class)\n" + confusion.text()
        text += "\nmisclassified: \(misclassified.count) of \(count)\n"
        for m in misclassified {
            text += "  \(m.file): true \(classNames[m.truth]), predicted \(classNames[m.predicted]) (\(String(format: "%.4f", m.confidence)))\n"
        }
        if !skipped.isEmpty {
            text += "\nunreadable: \(skipped.count)\n" + skipped.map { "  \($0.file): \($0.reason)\n" }.joined()
        }
        if let line = precisionLine { text += "\n" + line + "\n" }
        return text
    }

    /// The comparison with f32 in a sentence, where there is one.
    var precisionLine: String? {
        guard let p = precision else { return nil }
        let change = (classification.accuracy - p.referenceAccuracy) * 100
        return "\(p.precision) against f32 on the same \(count) images: top-1 agreement \(String(format: "%.2f", p.agreement * 100)) %, "
            + "accuracy \(String(format: "%.4f", classification.accuracy)) (f32 \(String(format: "%.4f", p.referenceAccuracy)), "
            + "\(String(format: "%+.2f", change)) points), max |Δ output| \(String(format: "%.4g", p.maxDifference)), "
            + "mean \(String(format: "%.4g", p.meanDifference))"
    }

    /// One JSON object: `report` is scikit-learn's `output_dict` form (one object per class,
    /// then `accuracy`, `macro avg`, `weighted avg`), then `confusion_matrix` (rows: true class),
    /// `misclassified` and `unreadable`.
    public func renderJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let data = (try? encoder.encode(JSONForm(self))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// GitHub-flavoured Markdown: the report and the confusion matrix as tables, then the files.
    public func renderMarkdown() -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        func two(_ x: Double) -> String { String(format: "%.2f", x) }
        func row(_ name: String, _ s: ClassificationReport.Scores) -> String {
            "| \(cell(name)) | \(two(s.precision)) | \(two(s.recall)) | \(two(s.f1Score)) | \(s.support) |"
        }
        var lines = ["## Classification report", "", "| class | precision | recall | f1-score | support |",
                     "| --- | ---: | ---: | ---: | ---: |"]
        lines += zip(classNames, classification.classes).map(row)
        lines.append("| accuracy | | | \(two(classification.accuracy)) | \(count) |")
        lines.append(row("macro avg", classification.macroAverage))
        lines.append(row("weighted avg", classification.weightedAverage))
        lines += ["", "## Confusion matrix", "", "Rows: true class; columns: predicted class.", "",
                  "| | " + classNames.map(cell).joined(separator: " | ") + " |",
                  "| --- |" + String(repeating: " ---: |", count: classNames.count)]
        lines += zip(classNames, confusion.counts).map { "| \(cell($0)) | " + $1.map(String.init).joined(separator: " | ") + " |" }
        lines += ["", "## Misclassified (\(misclassified.count) of \(count))", ""]
        if !misclassified.isEmpty {
            lines += ["| file | true | predicted | confidence |", "| --- | --- | --- | ---: |"]
            lines += misclassified.map {
                "| \(cell($0.file)) | \(cell(classNames[$0.truth])) | \(cell(classNames[$0.predicted])) | \(String(format: "%.4f", $0.confidence)) |"
            }
        }
        if !skipped.isEmpty {
            lines += ["", "## Unreadable (\(skipped.count))", "", "| file | reason |", "| --- | --- |"]
            lines += skipped.map { "| \(cell($0.file)) | \(cell($0.reason)) |" }
        }
        if let line = precisionLine { lines += ["", "## Precision", "", line] }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A standalone HTML page with the same tables as the Markdown.
    ///
    /// The confusion matrix is shaded by each cell's share of its row; the misclassified images
    /// come most confident first (fastai's top losses), each with a thumbnail of the file.
    public func renderHTML(title: String = "Evaluation") -> String {
        func e(_ s: String) -> String { SVGDocument.escape(s) }
        func two(_ x: Double) -> String { String(format: "%.2f", x) }
        func row(_ name: String, _ s: ClassificationReport.Scores) -> String {
            "<tr><th>\(e(name))</th><td>\(two(s.precision))</td><td>\(two(s.recall))</td><td>\(two(s.f1Score))</td><td>\(s.support)</td></tr>"
        }
        var body = ["<h2>Classification report</h2>", "<table>",
                    "<tr><th></th><th>precision</th><th>recall</th><th>f1-score</th><th>support</th></tr>"]
        body += zip(classNames, classification.classes).map(row)
        body.append("<tr class=\"summary\"><th>accuracy</th><td></td><td></td><td>\(two(classification.accuracy))</td><td>\(count)</td></tr>")
        body.append(row("macro avg", classification.macroAverage))
        body.append(row("weighted avg", classification.weightedAverage))
        body += ["</table>", "<h2>Confusion matrix</h2>", "<p>Rows: true class; columns: predicted class.</p>", "<table>",
                 "<tr><th></th>" + classNames.map { "<th>\(e($0))</th>" }.joined() + "</tr>"]
        body += zip(classNames, confusion.counts).map { name, row in
            let total = max(row.reduce(0, +), 1)
            return "<tr><th>\(e(name))</th>" + row.map { n in
                "<td style=\"background:rgba(31,119,180,\(two(Double(n) / Double(total))))\">\(n)</td>"
            }.joined() + "</tr>"
        }
        body += ["</table>", "<h2>Misclassified (\(misclassified.count) of \(count)), most confident first</h2>"]
        if !misclassified.isEmpty {
            body += ["<table>", "<tr><th></th><th>file</th><th>true</th><th>predicted</th><th>confidence</th></tr>"]
            body += misclassified.sorted { $0.confidence > $1.confidence }.map {
                "<tr><td><img src=\"\(e($0.file))\" alt=\"\" height=\"64\"></td><td>\(e($0.file))</td><td>\(e(classNames[$0.truth]))</td>"
                    + "<td>\(e(classNames[$0.predicted]))</td><td>\(String(format: "%.4f", $0.confidence))</td></tr>"
            }
            body.append("</table>")
        }
        if !skipped.isEmpty {
            body += ["<h2>Unreadable (\(skipped.count))</h2>", "<table>", "<tr><th>file</th><th>reason</th></tr>"]
            body += skipped.map { "<tr><td>\(e($0.file))</td><td>\(e($0.reason))</td></tr>" }
            body.append("</table>")
        }
        if let line = precisionLine { body += ["<h2>Precision</h2>", "<p>\(e(line))</p>"] }
        let style = "body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}"
            + "th,td{border:1px solid #ccc;padding:2px 8px}td{text-align:right}"
        return (["<!DOCTYPE html>", "<html>", "<head>", "<meta charset=\"utf-8\">", "<title>\(e(title))</title>",
                 "<style>\(style)</style>", "</head>", "<body>", "<h1>\(e(title))</h1>"] + body + ["</body>", "</html>"]).joined(separator: "\n") + "\n"
    }
}

/// JSON literals written by hand, so that keys keep their order.
/// The JSON form of a report, its keys in scikit-learn's order.
private struct JSONForm: Encodable {
    struct Key: CodingKey {
        var stringValue: String
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    struct Scores: Encodable {
        var precision, recall, f1Score: Double
        var support: Int

        init(_ s: ClassificationReport.Scores) {
            precision = s.precision
            recall = s.recall
            f1Score = s.f1Score
            support = s.support
        }

        enum CodingKeys: String, CodingKey {
            case precision, recall, f1Score = "f1-score", support
        }
    }

    /// One object per class, then `accuracy`, `macro avg`, `weighted avg`.
    struct Report: Encodable {
        var classes: [(String, Scores)]
        var accuracy: Double
        var macro, weighted: Scores

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            for (name, scores) in classes { try c.encode(scores, forKey: Key(name)) }
            try c.encode(accuracy, forKey: Key("accuracy"))
            try c.encode(macro, forKey: Key("macro avg"))
            try c.encode(weighted, forKey: Key("weighted avg"))
        }
    }

    struct Misclassified: Encodable {
        var file, `true`, predicted: String
        var confidence: Double
    }

    struct Unreadable: Encodable {
        var file, reason: String
    }

    var classes: [String]
    var images: Int
    var report: Report
    var confusionMatrix: [[Int]]
    var misclassified: [Misclassified]
    var unreadable: [Unreadable]
    var precision: Precision?

    /// A reduced precision against f32 on the same images.
    struct Precision: Encodable {
        var precision: String
        var agreement, accuracy, referenceAccuracy, maxDifference, meanDifference: Double

        enum CodingKeys: String, CodingKey {
            case precision, agreement = "top1_agreement", accuracy, referenceAccuracy = "f32_accuracy",
                 maxDifference = "max_abs_difference", meanDifference = "mean_abs_difference"
        }
    }

    enum CodingKeys: String, CodingKey {
        case classes, images, report, confusionMatrix = "confusion_matrix", misclassified, unreadable, precision
    }

    init(_ r: EvaluationReport) {
        classes = r.classNames
        images = r.count
        report = Report(classes: Array(zip(r.classNames, r.classification.classes.map(Scores.init))),
                        accuracy: r.classification.accuracy, macro: Scores(r.classification.macroAverage),
                        weighted: Scores(r.classification.weightedAverage))
        confusionMatrix = r.confusion.counts
        misclassified = r.misclassified.map {
            Misclassified(file: $0.file, true: r.classNames[$0.truth], predicted: r.classNames[$0.predicted], confidence: $0.confidence)
        }
        unreadable = r.skipped.map { Unreadable(file: $0.file, reason: $0.reason) }
        precision = r.precision.map {
            Precision(precision: $0.precision, agreement: $0.agreement, accuracy: r.classification.accuracy,
                      referenceAccuracy: $0.referenceAccuracy, maxDifference: $0.maxDifference, meanDifference: $0.meanDifference)
        }
    }
}
