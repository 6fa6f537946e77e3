import Foundation
import GraftCore
import XCTest

/// Paths of the committed fixtures and of those `make test` materializes.
public enum Fixtures {
    /// The package root, found from this file's location.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func path(_ relative: String) -> String {
        root.appendingPathComponent("fixtures").appendingPathComponent(relative).path
    }

    public static func tiny(_ name: String) -> String { path("tiny/\(name)") }

    /// The folder `make fixtures` fills: the full-size ResNet-50 with materialized weights and
    /// its ONNX Runtime reference outputs.
    public static var materialized: URL { root.appendingPathComponent(".build-fixtures") }

    /// The path of a materialized fixture, failing the test (with how to make it) when absent.
    public static func materialized(_ relative: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = materialized.appendingPathComponent(relative).path
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("\(path) is missing: run `make test` (or `make fixtures`) to materialize it", file: file, line: line)
            throw XCTSkip("materialized fixture missing")
        }
        return path
    }

    /// The ONNX backend test data shipped in the `onnx` wheel of the project's `.venv`.
    public static func onnxBackendData() -> URL? {
        if let env = ProcessInfo.processInfo.environment["GRAFT_ONNX_BACKEND_DATA"] {
            return URL(fileURLWithPath: env)
        }
        let lib = root.appendingPathComponent(".venv/lib")
        guard let pythons = try? FileManager.default.contentsOfDirectory(atPath: lib.path) else { return nil }
        for python in pythons.sorted() {
            let data = lib.appendingPathComponent(python).appendingPathComponent("site-packages/onnx/backend/test/data")
            if FileManager.default.fileExists(atPath: data.path) { return data }
        }
        return nil
    }
}

/// How far `actual` is from `reference`, with the tolerance `|Δ| ≤ atol + rtol·|reference|`.
public struct Closeness: CustomStringConvertible {
    public var maxAbsDiff: Float = 0
    public var maxRef: Float = 0
    /// The largest `|Δ| / (atol + rtol·|ref|)`; the tensors agree when it is at most 1.
    public var worstRatio: Float = 0
    public var shapeMatches = true

    public var ok: Bool { shapeMatches && worstRatio <= 1 }

    public var description: String {
        shapeMatches ? "max|Δ| = \(maxAbsDiff), max|ref| = \(maxRef), worst Δ/tolerance = \(worstRatio)" : "shapes differ"
    }

    public init(_ actual: Tensor, _ reference: Tensor, atol: Float = 1e-4, rtol: Float = 1e-3) {
        guard actual.shape == reference.shape else {
            shapeMatches = false
            return
        }
        func values(_ t: Tensor) -> [Double] {
            t.dtype == .float64 ? t.withUnsafeBufferPointer(as: Double.self) { Array($0) } : t.floats.map(Double.init)
        }
        let a = values(actual), r = values(reference)
        var worst = 0.0, maxDiff = 0.0, maxR = 0.0
        for i in a.indices {
            // NaN where the reference has NaN (sqrt of a negative), or the same infinity, is agreement.
            if (a[i].isNaN && r[i].isNaN) || a[i] == r[i] { maxR = max(maxR, r[i].isFinite ? abs(r[i]) : 0); continue }
            let d = abs(a[i] - r[i])
            maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
            maxR = max(maxR, abs(r[i]))
            let ratio = d / (Double(atol) + Double(rtol) * abs(r[i]))
            worst = ratio.isNaN ? .infinity : max(worst, ratio)
        }
        maxAbsDiff = Float(maxDiff)
        maxRef = Float(maxR)
        worstRatio = Float(worst)
    }
}

/// Asserts `|actual - reference| ≤ atol + rtol·|reference|` element-wise.
public func assertClose(_ actual: Tensor, _ reference: Tensor, atol: Float = 1e-4, rtol: Float = 1e-3,
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let c = Closeness(actual, reference, atol: atol, rtol: rtol)
    XCTAssertEqual(actual.shape, reference.shape, "shape \(message)", file: file, line: line)
    XCTAssertTrue(c.ok, "\(message): \(c)", file: file, line: line)
}

/// Runs a graph with nothing but the reference evaluator, node by node: the yardstick for the
/// runtime's planned, fused, packed execution.
public func referenceRun(_ graph: Graph, _ feeds: [String: Tensor]) throws -> [String: Tensor] {
    var values = feeds.merging(graph.constants) { a, _ in a }
    for index in try graph.topologicalOrder() {
        let node = graph.nodes[index]
        let outputs = try node.op.evaluate(node.inputs.map { $0.isEmpty ? nil : values[$0] })
        for (name, t) in zip(node.outputs, outputs) where !name.isEmpty { values[name] = t }
    }
    return values.filter { name, _ in graph.outputs.contains { $0.name == name } }
}

/// The Python with PyTorch, torchvision and safetensors that tests check Graft's checkpoints
/// against: `GRAFT_TORCH_PYTHON`, or the project's `.venv-torch` (`tools/setup_torch_venv.sh`,
/// which `make test` runs).
public enum TorchPython {
    public static var executable: String {
        ProcessInfo.processInfo.environment["GRAFT_TORCH_PYTHON"]
            ?? Fixtures.root.appendingPathComponent(".venv-torch/bin/python").path
    }

    /// Runs `script` (a file under `tools/`) with `arguments`, failing the test with what it
    /// printed when it exits non-zero; returns what it printed.
    @discardableResult
    public static func run(_ script: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            XCTFail("\(executable) is missing: run `make test` (tools/setup_torch_venv.sh) or set GRAFT_TORCH_PYTHON", file: file, line: line)
            throw GraftTestError.missingTool(executable)
        }
        return try runTool(executable, [Fixtures.root.appendingPathComponent("tools/\(script)").path] + arguments, file: file, line: line)
    }
}

public enum GraftTestError: Error {
    case missingTool(String)
    case toolFailed(String)
}

/// Runs `executable` with `arguments`, failing the test with what it printed when it exits
/// non-zero; returns its standard output.
public func runTool(_ executable: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let result = try GraftProcess.capture(URL(fileURLWithPath: executable), arguments)
    let text = result.stdout + result.stderr
    if result.status != 0 {
        XCTFail("\(arguments.first ?? executable) exited \(result.status): \(text)", file: file, line: line)
        throw GraftTestError.toolFailed(executable)
    }
    return text
}
