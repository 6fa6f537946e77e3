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

    func testUsageErrorsAreOneLineAndWhereHelpIs() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("out.onnx"), data = dir.file("data")
        let train = ["train", dynamic, "--data", data, "--out", out]
        let cases: [([String], String)] = [
            (["convert", tiny, out, "--opset", "99999999999999999999"], "The value '99999999999999999999' is invalid for '--opset <opset>'"),
            (["convert", tiny, out, "--opset", "-3"], "--opset must be between 7 and 23"),
            (["infer", tiny, "--input", input, "--top-k", "-3"], "--top-k must be between 1 and 100000"),
            (["infer", tiny, "--input", input, "--top-k", "100000000"], "--top-k must be between 1 and 100000"),
            (["bench", tiny, "--batch", "20000000"], "--batch must be between 1 and 4096"),
            (["bench", tiny, "--threads", "100000"], "--threads must be between 1 and 1024"),
            (["bench", tiny, "--runs", "-5"], "--runs must be between 1 and 100000"),
            (train + ["--epochs", "-1"], "--epochs must be between 1 and 100000"),
            (train + ["--batch-size", "20000000"], "--batch-size must be between 1 and 4096"),
            (train + ["--threads", "100000"], "--threads must be between 1 and 1024"),
            (train + ["--head", "100000000"], "--head '100000000' is too large: at most 16 hidden layers of at most 16384 units"),
            (train + ["--head", "-8"], "--head '-8' is not a list of positive widths like 1024,256"),
            (train + ["--lr", "-1"], "--lr must be a positive number"),
            (train + ["--patience", "-1"], "--patience must be between 0 and 100000"),
            (["evaluate", dynamic, "--data", data, "--seed", "-1"], "The value '-1' is invalid for '--seed <seed>'"),
            (["demo-data", data, "--per-class", "100000000"], "--per-class must be between 4 and 100000"),
            (["summary"], "Missing expected argument '<model>'"),
        ]
        for (arguments, message) in cases {
            let result = try GraftProcess.run(arguments, timeout: 60)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertEqual(result.stderr, "graft: error: \(message)\nSee 'graft \(arguments[0]) --help' for more information.\n", "\(arguments)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "nothing is written")
    }

    /// When the system refuses threads (here made to refuse all but 2 of 1,023), the loops run on
    /// those that were created (before, the pool waited for threads that never started, forever).
    func testThreadsTheSystemRefusesAreDoneWithout() throws {
        let result = try GraftProcess.run(["bench", tiny, "--threads", "1024", "--runs", "2", "--warmup", "0", "--json"],
                                          environment: ["GRAFT_TEST_THREAD_LIMIT": "2"], timeout: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("\"threads\" : 1024"), result.stdout)
    }
}

extension UsageTests {
    /// A mistyped subcommand gets the one it is close to.
    func testDidYouMeanASubcommand() throws {
        for (typed, meant) in [("sumary", "summary"), ("conver", "convert"), ("evalute", "evaluate"), ("tarin", "train")] {
            let result = try GraftProcess.run([typed, "x"])
            XCTAssertEqual(result.status, 2)
            XCTAssertEqual(result.stderr, "graft: error: unknown command '\(typed)'; did you mean '\(meant)'?\nSee 'graft --help' for more information.\n")
        }
        let far = try GraftProcess.run(["zzzzzz"])
        XCTAssertEqual(far.status, 2)
        XCTAssertFalse(far.stderr.contains("did you mean"), far.stderr)
    }
}
