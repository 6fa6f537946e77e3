import Foundation
import GraftTestSupport
@testable import GraftTrain
import XCTest

/// The classification report against scikit-learn's `classification_report` (text word for
/// word, `output_dict` to the last bit) and `confusion_matrix`, and the report's renderings.
final class MetricsTests: XCTestCase {
    struct Case: Decodable {
        var name: String
        var class_names: [String]
        var truth: [Int]
        var predicted: [Int]
        var text: String
        var text_digits_4: String
        var dict: [String: Entry]
        var confusion_matrix: [[Int]]
    }

    /// A row of sklearn's dict, or its bare `accuracy` number.
    enum Entry: Decodable {
        case scores([String: Double])
        case value(Double)

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Double.self) { self = .value(v) } else { self = .scores(try c.decode([String: Double].self)) }
        }
    }

    static func cases() throws -> [Case] {
        struct File: Decodable { var cases: [Case] }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/reports.json")))).cases
    }

    func testTextIsScikitLearnsWordForWord() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.map(\.name), ["cats_dogs", "never_predicted", "absent_class", "perfect"])
        for c in cases {
            let report = ClassificationReport(truth: c.truth, predicted: c.predicted, classNames: c.class_names)
            XCTAssertEqual(report.text(), c.text, c.name)
            XCTAssertEqual(report.text(digits: 4), c.text_digits_4, "\(c.name), 4 digits")
        }
    }

    func testScoresAreScikitLearns() throws {
        for c in try Self.cases() {
            let report = ClassificationReport(truth: c.truth, predicted: c.predicted, classNames: c.class_names)
            func check(_ s: ClassificationReport.Scores, _ key: String) {
                guard case .scores(let d)? = c.dict[key] else { return XCTFail("\(c.name): no \(key)") }
                XCTAssertEqual(s.precision, d["precision"]!, accuracy: 1e-15, "\(c.name) \(key) precision")
                XCTAssertEqual(s.recall, d["recall"]!, accuracy: 1e-15, "\(c.name) \(key) recall")
                XCTAssertEqual(s.f1Score, d["f1-score"]!, accuracy: 1e-15, "\(c.name) \(key) f1")
                XCTAssertEqual(Double(s.support), d["support"]!, "\(c.name) \(key) support")
            }
            for (name, s) in zip(c.class_names, report.classes) { check(s, name) }
            check(report.macroAverage, "macro avg")
            check(report.weightedAverage, "weighted avg")
            guard case .value(let accuracy)? = c.dict["accuracy"] else { return XCTFail("\(c.name): no accuracy") }
            XCTAssertEqual(report.accuracy, accuracy, "\(c.name) accuracy")
            XCTAssertEqual(ConfusionMatrix(truth: c.truth, predicted: c.predicted, classNames: c.class_names).counts, c.confusion_matrix, c.name)
        }
    }

    static var example: EvaluationReport {
        EvaluationReport(classNames: ["cat", "dog|wolf"], truth: [0, 0, 1, 1, 1], predicted: [0, 1, 1, 1, 0],
                         confidence: [0.9, 0.6, 0.8, 0.99, 0.75], files: ["a/c1.jpg", "a/c2.jpg", "a/d1.jpg", "a/d2.jpg", "a/<d3>.jpg"],
                         skipped: [UnreadableImage(file: "a/bad.jpg", reason: "a/bad.jpg: not a JPEG or PNG image")])
    }

    func testTextReport() {
        let expected = """
                      precision    recall  f1-score   support

                 cat       0.50      0.50      0.50         2
            dog|wolf       0.67      0.67      0.67         3

            accuracy                           0.60         5
           macro avg       0.58      0.58      0.58         5
        weighted avg       0.60      0.60      0.60         5

        confusion matrix (rows: true class, columns: predicted class)
        true \\ predicted  cat  dog|wolf
        cat                 1         1
        dog|wolf            1         2

        misclassified: 2 of 5
          a/c2.jpg: true cat, predicted dog|wolf (0.6000)
          a/<d3>.jpg: true dog|wolf, predicted cat (0.7500)

        unreadable: 1
          a/bad.jpg: a/bad.jpg: not a JPEG or PNG image

        """
        assertSameLines(Self.example.render(.text), expected)
    }

    func testJSONReportReadsBackWithScikitLearnsKeys() throws {
        let text = Self.example.render(.json)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        XCTAssertEqual(object["classes"] as? [String], ["cat", "dog|wolf"])
        XCTAssertEqual(object["images"] as? Int, 5)
        let report = object["report"] as! [String: Any]
        XCTAssertEqual(Set(report.keys), ["cat", "dog|wolf", "accuracy", "macro avg", "weighted avg"])
        XCTAssertEqual(report["accuracy"] as? Double, 0.6)
        let dog = report["dog|wolf"] as! [String: Any]
        XCTAssertEqual(dog["precision"] as? Double, 2.0 / 3)
        XCTAssertEqual(dog["support"] as? Int, 3)
        XCTAssertEqual(object["confusion_matrix"] as? [[Int]], [[1, 1], [1, 2]])
        let wrong = object["misclassified"] as! [[String: Any]]
        XCTAssertEqual(wrong.map { $0["file"] as? String }, ["a/c2.jpg", "a/<d3>.jpg"])
        XCTAssertEqual(wrong.map { $0["predicted"] as? String }, ["dog|wolf", "cat"])
        XCTAssertEqual((object["unreadable"] as? [[String: String]])?.first?["file"], "a/bad.jpg")
        // Slashes stay as they are.
        XCTAssertTrue(text.contains("\"a/c2.jpg\""), text)
    }

    func testMarkdownReport() {
        let md = Self.example.render(.markdown)
        XCTAssertTrue(md.contains("| class | precision | recall | f1-score | support |\n| --- | ---: | ---: | ---: | ---: |\n| cat | 0.50 | 0.50 | 0.50 | 2 |\n| dog\\|wolf | 0.67 | 0.67 | 0.67 | 3 |\n| accuracy | | | 0.60 | 5 |\n"), md)
        XCTAssertTrue(md.contains("| | cat | dog\\|wolf |\n| --- | ---: | ---: |\n| cat | 1 | 1 |\n| dog\\|wolf | 1 | 2 |\n"), md)
        XCTAssertTrue(md.contains("## Misclassified (2 of 5)\n\n| file | true | predicted | confidence |\n| --- | --- | --- | ---: |\n| a/c2.jpg | cat | dog\\|wolf | 0.6000 |\n"), md)
    }

    func testHTMLReportIsEscaped() {
        let html = Self.example.render(.html)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>\n<html>\n"))
        XCTAssertTrue(html.contains("<tr><th>dog|wolf</th><td>0.67</td><td>0.67</td><td>0.67</td><td>3</td></tr>"), html)
        XCTAssertTrue(html.contains("<td>a/&lt;d3&gt;.jpg</td>"), html)
        XCTAssertFalse(html.contains("<d3>"))
        XCTAssertTrue(html.contains("<tr class=\"summary\"><th>accuracy</th><td></td><td></td><td>0.60</td><td>5</td></tr>"))
    }

    /// The HTML page is titled by what was evaluated, shades the confusion matrix by each row's
    /// share, and lists the misclassified images most confident first with thumbnails.
    func testHTMLReportTitleShadingAndTopLosses() throws {
        let html = Self.example.render(.html, title: "m.onnx on data, test split, 2026-12-06")
        XCTAssertTrue(html.contains("<title>m.onnx on data, test split, 2026-12-06</title>"))
        XCTAssertTrue(html.contains("<h1>m.onnx on data, test split, 2026-12-06</h1>"))
        // Row dog|wolf is [1, 2] of 3: shares 0.33 and 0.67.
        XCTAssertTrue(html.contains("<td style=\"background:rgba(31,119,180,0.33)\">1</td><td style=\"background:rgba(31,119,180,0.67)\">2</td>"), html)
        let confidences = html.components(separatedBy: "<img src=").dropFirst().compactMap { rest -> Double? in
            let row = rest.components(separatedBy: "</tr>")[0]
            return row.components(separatedBy: "<td>").last.flatMap { Double($0.replacingOccurrences(of: "</td>", with: "")) }
        }
        XCTAssertEqual(confidences.count, 2)
        XCTAssertEqual(confidences, confidences.sorted(by: >))
        XCTAssertTrue(html.contains("<img src=\"a/&lt;d3&gt;.jpg\""), html)
    }
}

/// The ImageNet class names are a resource, regenerated from torchvision's metadata and compared.
final class ImageNetClassesTests: XCTestCase {
    func testTheResourceIsTorchvisionsList() throws {
        XCTAssertEqual(ImageNetClasses.names.count, 1000)
        XCTAssertEqual(ImageNetClasses.names.first, "tench")
        let dir = try TemporaryDirectory()
        try TorchPython.run("make_imagenet_classes.py", ["--out", dir.file("classes.txt")])
        let regenerated = try String(contentsOfFile: dir.file("classes.txt"), encoding: .utf8)
        XCTAssertEqual(regenerated.split(separator: "\n").map(String.init), ImageNetClasses.names)
    }
}
