import Foundation
import GraftCore
import XCTest

/// ONNX Runtime, run through `tools/ort_run.py` with the project's `.venv`.
public enum ONNXRuntime {
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// One run: the model, its inputs in order, and where the first output goes.
    public struct Job {
        public var model: String
        public var inputs: [String]
        public var output: String

        public init(model: String, inputs: [String], output: String) {
            self.model = model
            self.inputs = inputs
            self.output = output
        }
    }

    static let python = Fixtures.root.appendingPathComponent(".venv/bin/python").path
    static let script = Fixtures.root.appendingPathComponent("tools/ort_run.py").path

    /// Runs every job in one Python process; for each job nil when it ran, else ONNX Runtime's error.
    public static func run(_ jobs: [Job], file: StaticString = #filePath, line: UInt = #line) throws -> [String?] {
        try requireVenv(file: file, line: line)
        let folder = try TemporaryDirectory()
        let list = folder.file("jobs.txt")
        let text = jobs.map { ([$0.model] + $0.inputs + [$0.output]).joined(separator: "\t") }.joined(separator: "\n") + "\n"
        try text.write(toFile: list, atomically: true, encoding: .utf8)
        let result = try GraftProcess.capture(URL(fileURLWithPath: python), [script, "--batch", list])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        guard lines.count == jobs.count else {
            throw Unavailable(description: "ort_run.py printed \(lines.count) results for \(jobs.count) jobs (status \(result.status)): \(result.stderr)")
        }
        return lines.map { $0 == "ok" ? nil : $0 }
    }

    /// Runs a Python script with the `.venv` interpreter (numpy, onnx, onnxruntime) and returns what it prints.
    public static func python(_ script: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try requireVenv(file: file, line: line)
        let folder = try TemporaryDirectory()
        try script.write(toFile: folder.file("script.py"), atomically: true, encoding: .utf8)
        let result = try GraftProcess.capture(URL(fileURLWithPath: python), [folder.file("script.py")] + arguments)
        guard result.status == 0 else {
            throw Unavailable(description: "the Python script failed (status \(result.status)): \(result.stderr)")
        }
        return result.stdout
    }

    /// Runs ONNX's own checker (`onnx.checker.check_model`, with shape inference) on each model;
    /// for each nil when it passes, else the checker's complaint.
    public static func check(_ models: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String?] {
        let script = """
        import sys, onnx
        for path in sys.argv[1:]:
            try:
                onnx.checker.check_model(onnx.load(path), full_check=True)
                print("ok")
            except Exception as e:
                print("error: " + " ".join(str(e).split()))
        """
        let lines = try python(script, models, file: file, line: line).split(separator: "\n").map(String.init)
        guard lines.count == models.count else {
            throw Unavailable(description: "the checker printed \(lines.count) results for \(models.count) models")
        }
        return lines.map { $0 == "ok" ? nil : $0 }
    }

    /// Runs `model` on one `input` and returns its first output.
    public static func output(of model: String, input: Tensor, file: StaticString = #filePath, line: UInt = #line) throws -> Tensor {
        let folder = try TemporaryDirectory()
        try NPY.write(input, to: folder.file("input.npy"))
        let failures = try run([Job(model: model, inputs: [folder.file("input.npy")], output: folder.file("output.npy"))], file: file, line: line)
        if let failure = failures[0] { throw Unavailable(description: "ONNX Runtime cannot run \(model): \(failure)") }
        return try NPY.read(folder.file("output.npy"))
    }

    /// Fails the calling test (it does not skip) when the virtual environment is missing.
    private static func requireVenv(file: StaticString, line: UInt) throws {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            let message = "\(python) is missing: run `make test` (it sets up .venv with numpy, onnx and onnxruntime)"
            XCTFail(message, file: file, line: line)
            throw Unavailable(description: message)
        }
    }
}

