import Foundation
import GraftTestSupport
import XCTest

/// Exit statuses and the shape of errors, over every command: a file that does not exist is bad
/// input (one line, exit 1); bad usage is one line and where help is (exit 2), whatever the
/// option, and no size a user gives reaches an allocation or a thread unchecked.
final class UsageTests: XCTestCase {
    let tiny = Fixtures.tiny("ts_opset17_folded.onnx")
    let dynamic = Fixtures.tiny("ts_opset17_dynamic.onnx")
    let input = Fixtures.tiny("input_b1.npy")

    func testAMissingFileIsBadInputForEveryCommand() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.file("missing.onnx"), missingH5 = dir.file("missing.h5"), folder = dir.file("missing")
        let out = dir.file("out.onnx"), labels = dir.file("labels.npy")
        try FileManager.default.createSymbolicLink(atPath: dir.file("dangling.onnx"), withDestinationPath: dir.file("nowhere"))
        let cases: [([String], String)] = [
            (["summary", missing], "\(missing): no such file"),
            (["summary", dir.file("dangling.onnx")], "\(dir.file("dangling.onnx")): no such file"),
            (["convert", missing, out], "\(missing): no such file"),
            (["convert", missingH5, out], "\(missingH5): no such file"),
            (["infer", missing, "--input", input], "\(missing): no such file"),
            (["infer", missing, dir.file("cat.jpg")], "\(missing): no such file"),
            (["infer", tiny, dir.file("cat.jpg")], "\(dir.file("cat.jpg")): no such file or folder"),
            (["infer", tiny, "--input", dir.file("x.npy")], "\(dir.file("x.npy")): no such file"),
            (["bench", missingH5], "\(missingH5): no such file"),
            (["train", missing, "--data", folder, "--out", out], "\(missing): no such file"),
            (["train", dynamic, "--data", folder, "--out", out], "\(folder): no such folder"),
            (["train", dynamic, "--features", dir.file("x.npy"), "--labels", labels, "--out", out], "\(dir.file("x.npy")): no such file"),
            (["evaluate", missing, "--data", folder], "\(missing): no such file"),
            (["evaluate", dynamic, "--data", folder], "\(folder): no such folder"),
        ]
        for (arguments, message) in cases {
            let result = try GraftProcess.run(arguments, timeout: 120)
            XCTAssertEqual(result.status, 1, "\(arguments)")
            XCTAssertEqual(result.stderr, "graft: error: \(message)\n", "\(arguments)")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), ["dangling.onnx"])
    }
}
