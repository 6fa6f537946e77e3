import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// What commands print on success: JSON wherever `--json` is offered, one line from `convert`.
final class OutputTests: XCTestCase {
    func testInferWithAnArrayPrintsJSONWhenAsked() throws {
        let result = try GraftProcess.run(["infer", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--input", Fixtures.tiny("input_b3.npy"),
                                           "--json", "--top-k", "2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["scores"] as? String, "raw")
        XCTAssertEqual(json["shape"] as? [Int], [3, 10])
        let rows = try XCTUnwrap(json["rows"] as? [[[String: Any]]])
        XCTAssertEqual(rows.count, 3)
        // The best index of each row is ONNX Runtime's.
        let reference = try NPY.read(Fixtures.tiny("output_b3.npy")).floats
        for (r, row) in rows.enumerated() {
            XCTAssertEqual(row.count, 2)
            let best = (0..<10).max { reference[r * 10 + $0] < reference[r * 10 + $1] }
            XCTAssertEqual(row[0]["index"] as? Int, best)
        }
    }

    func testConvertSaysWhatItWrote() throws {
        let dir = try TemporaryDirectory()
        let result = try GraftProcess.run(["convert", Fixtures.tiny("ts_opset17_bn.onnx"), dir.file("lean.onnx")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("wrote \(dir.file("lean.onnx")): "), result.stdout)
        XCTAssertEqual(result.stdout.split(separator: "\n").count, 1)
    }

    func testJSONKeepsSlashes() throws {
        let result = try GraftProcess.run(["infer", Fixtures.tiny("ts_opset17_bn.onnx"), Fixtures.path("images"), "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains(Fixtures.path("images")), result.stdout)
        XCTAssertFalse(result.stdout.contains("\\/"))
    }
}

extension OutputTests {
    /// A model exported with a fixed batch of 1 classifies a folder of many images: they run
    /// one at a time, with the same result as the dynamic-batch export of the same model.
    func testAFixedBatchModelClassifiesAFolder() throws {
        let fixed = try GraftProcess.run(["infer", Fixtures.tiny("ts_opset17_bn.onnx"), Fixtures.path("images")])
        let dynamic = try GraftProcess.run(["infer", Fixtures.tiny("ts_opset17_dynamic.onnx"), Fixtures.path("images")])
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
        XCTAssertEqual(dynamic.status, 0, dynamic.stderr)
        XCTAssertGreaterThan(fixed.stdout.split(separator: "\n").count, 5)
        XCTAssertEqual(fixed.stdout, dynamic.stdout)
    }
}

extension OutputTests {
    /// The shells' completion scripts complete file paths for models, images and arrays, and
    /// folder paths for image folders.
    func testCompletionScriptsCompletePaths() throws {
        let bash = try GraftProcess.run(["--generate-completion-script", "bash"])
        XCTAssertEqual(bash.status, 0, bash.stderr)
        XCTAssertTrue(bash.stdout.contains("pth"), "models by their extensions")
        XCTAssertTrue(bash.stdout.contains("npy"), "arrays by their extension")
        XCTAssertTrue(bash.stdout.contains("__graft_add_completions -d"), "image folders")
        let zsh = try GraftProcess.run(["--generate-completion-script", "zsh"])
        XCTAssertEqual(zsh.status, 0, zsh.stderr)
        XCTAssertTrue(zsh.stdout.contains("_files"), zsh.stdout)
    }
}
