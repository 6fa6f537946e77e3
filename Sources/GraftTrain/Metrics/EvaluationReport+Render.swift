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
        return text
    }

    /// One JSON object: `report` is scikit-learn's `output_dict` form (one object per class,
    /// then `accuracy`, `macro avg`, `weighted avg`), then `confusion_matrix` (rows: true class),
    /// `misclassified` and `unreadable`.
    public func renderJSON() -> String {
        func scores(_ s: ClassificationReport.Scores) -> String {
            "{\"precision\": \(JSONText.number(s.precision)), \"recall\": \(JSONText.number(s.recall)), "
                + "\"f1-score\": \(JSONText.number(s.f1Score)), \"support\": \(s.support)}"
        }
        var report = zip(classNames, classification.classes).map { "    \(JSONText.string($0)): \(scores($1))" }
        report.append("    \"accuracy\": \(JSONText.number(classification.accuracy))")
        report.append("    \"macro avg\": \(scores(classification.macroAverage))")
        report.append("    \"weighted avg\": \(scores(classification.weightedAverage))")
        let matrix = confusion.counts.map { "    [" + $0.map(String.init).joined(separator: ", ") + "]" }
        let wrong = misclassified.map {
            "    {\"file\": \(JSONText.string($0.file)), \"true\": \(JSONText.string(classNames[$0.truth])), "
                + "\"predicted\": \(JSONText.string(classNames[$0.predicted])), \"confidence\": \(JSONText.number($0.confidence))}"
        }
        let unreadable = skipped.map { "    {\"file\": \(JSONText.string($0.file)), \"reason\": \(JSONText.string($0.reason))}" }
        func list(_ items: [String]) -> String { items.isEmpty ? "[]" : "[\n" + items.joined(separator: ",\n") + "\n  ]" }
        return """
        {
          "classes": [\(classNames.map(JSONText.string).joined(separator: ", "))],
          "images": \(count),
          "report": {
        \(report.joined(separator: ",\n"))
          },
          "confusion_matrix": \(list(matrix)),
          "misclassified": \(list(wrong)),
          "unreadable": \(list(unreadable))
        }

        """
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
        return lines.joined(separator: "\n") + "\n"
    }

    /// A standalone HTML page with the same tables as the Markdown.
    public func renderHTML() -> String {
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
        body += zip(classNames, confusion.counts).map { "<tr><th>\(e($0))</th>" + $1.map { "<td>\($0)</td>" }.joined() + "</tr>" }
        body += ["</table>", "<h2>Misclassified (\(misclassified.count) of \(count))</h2>"]
        if !misclassified.isEmpty {
            body += ["<table>", "<tr><th>file</th><th>true</th><th>predicted</th><th>confidence</th></tr>"]
            body += misclassified.map {
                "<tr><td>\(e($0.file))</td><td>\(e(classNames[$0.truth]))</td><td>\(e(classNames[$0.predicted]))</td><td>\(String(format: "%.4f", $0.confidence))</td></tr>"
            }
            body.append("</table>")
        }
        if !skipped.isEmpty {
            body += ["<h2>Unreadable (\(skipped.count))</h2>", "<table>", "<tr><th>file</th><th>reason</th></tr>"]
            body += skipped.map { "<tr><td>\(e($0.file))</td><td>\(e($0.reason))</td></tr>" }
            body.append("</table>")
        }
        let style = "body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}"
            + "th,td{border:1px solid #ccc;padding:2px 8px}td{text-align:right}"
        return (["<!DOCTYPE html>", "<html>", "<head>", "<meta charset=\"utf-8\">", "<title>Evaluation</title>",
                 "<style>\(style)</style>", "</head>", "<body>"] + body + ["</body>", "</html>"]).joined(separator: "\n") + "\n"
    }
}

/// JSON literals written by hand, so that keys keep their order.
enum JSONText {
    static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// The shortest decimal that reads back as `x` (`0.9826086956521739`, `1.0`); null when not finite.
    static func number(_ x: Double) -> String {
        x.isFinite ? "\(x)" : "null"
    }
}
