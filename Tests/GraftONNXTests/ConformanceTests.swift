import Foundation
import GraftCore
import GraftONNX
import GraftRuntime
import GraftTestSupport
import XCTest

/// The ONNX project's PyTorch conformance cases (`pytorch-converted`, `pytorch-operator` in the
/// `onnx` wheel). `conformance-manifest.txt` lists each case: `pass NAME` must import, run and
/// match its reference outputs; `skip NAME reason` must fail with a clear `GraftError` (so a
/// case that starts passing is noticed and moved to `pass`).
final class ConformanceTests: XCTestCase {
    struct Entry {
        var expectPass: Bool
        var reason: String
    }

    static func manifest() throws -> [String: Entry] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("conformance-manifest.txt")
        var entries: [String: Entry] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty || text.hasPrefix("#") { continue }
            let parts = text.split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count >= 2, parts[0] == "pass" || parts[0] == "skip" else {
                throw GraftError(.badInput, "bad manifest line: \(text)")
            }
            entries["\(parts[1])"] = Entry(expectPass: parts[0] == "pass", reason: parts.count > 2 ? parts[2] : "")
        }
        return entries
    }

    /// Runs one case; nil when it matches, else why not.
    static func run(_ directory: URL) -> String? {
        do {
            let graph = try ONNXImporter.importModel(at: directory.appendingPathComponent("model.onnx").path)
            let data = directory.appendingPathComponent("test_data_set_0")
            var feeds: [String: Tensor] = [:]
            for (i, input) in graph.inputs.enumerated() {
                feeds[input.name] = try ONNXImporter.readTensor(at: data.appendingPathComponent("input_\(i).pb").path)
            }
            let outputs = try Interpreter(graph: graph).run(feeds)
            for (i, output) in graph.outputs.enumerated() {
                let reference = try ONNXImporter.readTensor(at: data.appendingPathComponent("output_\(i).pb").path)
                guard let actual = outputs[output.name] else { return "output \(output.name) missing" }
                let c = Closeness(actual, reference)
                if !c.ok { return "output \(i): \(c)" }
            }
            return nil
        } catch let error as GraftError where error.kind != .internal {
            return "error: \(error)"
        } catch let error as GraftError {
            // A broken invariant of Graft's own is no clean refusal.
            return "internal error: \(error)"
        } catch {
            return "unexpected error: \(error)"
        }
    }

    func testPyTorchConformanceCases() throws {
        guard let root = Fixtures.onnxBackendData() else {
            XCTFail("the onnx wheel's backend test data is not found: run `make test` (it sets up .venv)")
            return
        }
        let manifest = try Self.manifest()
        var seen = Set<String>()
        var passed = 0
        for suite in ["pytorch-converted", "pytorch-operator"] {
            let folder = root.appendingPathComponent(suite)
            let cases = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            for name in cases {
                let key = "\(suite)/\(name)"
                seen.insert(key)
                let failure = Self.run(folder.appendingPathComponent(name))
                guard let entry = manifest[key] else {
                    XCTFail("\(key) is not in the manifest (it \(failure.map { "fails: \($0)" } ?? "passes"))")
                    continue
                }
                if entry.expectPass {
                    XCTAssertNil(failure, key)
                    if failure == nil { passed += 1 }
                } else {
                    XCTAssertNotNil(failure, "\(key) passes now; move it to `pass` in the manifest")
                    if let failure { XCTAssertTrue(failure.hasPrefix("error: "), "\(key) should fail cleanly, got \(failure)") }
                }
            }
        }
        for key in manifest.keys where !seen.contains(key) { XCTFail("manifest names \(key), which the onnx wheel lacks") }
        print("ONNX PyTorch conformance: \(passed) cases pass, \(manifest.values.filter { !$0.expectPass }.count) left out")
    }

    /// Prints every case's result, for writing the manifest: `GRAFT_CONFORMANCE_LIST=1 swift test --filter testList`.
    func testListResults() throws {
        guard ProcessInfo.processInfo.environment["GRAFT_CONFORMANCE_LIST"] != nil, let root = Fixtures.onnxBackendData() else { return }
        for suite in ["pytorch-converted", "pytorch-operator"] {
            let folder = root.appendingPathComponent(suite)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
                print("CASE \(suite)/\(name) \(Self.run(folder.appendingPathComponent(name)) ?? "PASS")")
            }
        }
    }
}
