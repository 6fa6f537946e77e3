import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// The transfer-learning flow through the `graft` binary: train, evaluate, infer on images, export.
final class TrainCommandTests: XCTestCase {
    func testTrainEvaluateInferOnSyntheticImages() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), out = dir.file("grafted.onnx")
        XCTAssertEqual(try GraftProcess.run(["demo-data", data, "--per-class", "40"]).status, 0)
        let train = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", data, "--out", out,
                                          "--epochs", "15", "--head", "64,32"])
        XCTAssertEqual(train.status, 0, train.stderr)
        // A table of the epochs, each line within 80 columns, the best ones marked.
        let lines = train.stderr.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.firstIndex(of: "epoch  train loss  train acc  val loss  val acc      time"), train.stderr)
        let rows = lines[(header + 1)...].filter { $0.hasPrefix("  ") }
        XCTAssertEqual(rows.count, 15, train.stderr)
        XCTAssertTrue(rows.allSatisfy { $0.count <= 80 && $0.split(separator: " ").count >= 6 }, train.stderr)
        XCTAssertTrue(rows[0].hasSuffix("* saved"), "the first epoch is the best so far")
        for file in [out, out + ".history.csv", out + ".history.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: file), file)
        }
        let evaluate = try GraftProcess.run(["evaluate", out, "--data", data, "--format", "json"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as? [String: Any])
        let accuracy = try XCTUnwrap((report["report"] as? [String: Any])?["accuracy"] as? Double)
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
        let infer = try GraftProcess.run(["infer", out, data + "/train/cat.1.jpg", data + "/train/dog.2.jpg"])
        XCTAssertEqual(infer.status, 0, infer.stderr)
        XCTAssertTrue(infer.stdout.contains("cat.1.jpg: cat "), infer.stdout)
        XCTAssertTrue(infer.stdout.contains("dog.2.jpg: dog "), infer.stdout)
        // The grafted model exports to HDF5 and reads back with its class names.
        let h5 = dir.file("grafted.h5")
        XCTAssertEqual(try GraftProcess.run(["convert", out, h5]).status, 0)
        let again = try GraftProcess.run(["infer", h5, data + "/train/cat.1.jpg", "--json"])
        XCTAssertTrue(again.stdout.contains("\"class\" : \"cat\""), again.stdout)
    }

    /// The head trained on feature arrays instead of images (the benchmark's mode), with the
    /// timings written as JSON.
    func testTrainingOnFeatureArraysWritesTimings() throws {
        let dir = try TemporaryDirectory()
        let trunk = Fixtures.tiny("ts_opset17_dynamic.onnx")   // its fc reads 256 features
        var random = SeededGenerator(seed: 3)
        func write(rows: Int, width: Int) throws {
            var x = random.tensor([rows, width])
            x.withUnsafeMutableBufferPointer(as: Float.self) { v in
                for r in stride(from: 0, to: rows, by: 2) { v[r * width] += 4 }   // class 0 stands out
            }
            try NPY.write(x, to: dir.file("features.npy"))
            try NPY.write(Tensor(shape: [rows], int64s: (0..<rows).map { Int64($0 % 2) }), to: dir.file("labels.npy"))
        }
        let out = dir.file("head.onnx")
        func train(_ extra: [String] = []) throws -> GraftProcess {
            try GraftProcess.run(["train", trunk, "--features", dir.file("features.npy"), "--labels", dir.file("labels.npy"),
                                  "--out", out, "--head", "16", "--dropout", "0.1", "--threads", "1"] + extra)
        }
        try write(rows: 40, width: 256)
        let result = try train(["--epochs", "3", "--timings-json", dir.file("timings.json")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("\n    3  "), result.stderr)
        let timings = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("timings.json")))) as? [String: Any])
        XCTAssertEqual(timings["threads"] as? Int, 1)
        XCTAssertEqual(timings["batch_size"] as? Int, 32)
        XCTAssertEqual((timings["features"] as? [Any])?.count, 0)
        let epochs = try XCTUnwrap(timings["epochs"] as? [[String: Any]])
        XCTAssertEqual(epochs.map { $0["epoch"] as? Int }, [1, 2, 3])
        XCTAssertTrue(epochs.allSatisfy { ($0["seconds"] as? Double ?? -1) > 0 }, "\(epochs)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))

        try write(rows: 40, width: 255)
        let narrow = try train(["--force"])
        XCTAssertEqual(narrow.status, 1)
        XCTAssertEqual(narrow.stderr, "graft: error: the training features have 255 columns; the head reads 256\n")
        try NPY.write(Tensor(shape: [39], int64s: Array(repeating: 0, count: 39)), to: dir.file("labels.npy"))
        let short = try train(["--force"])
        XCTAssertEqual(short.status, 1)
        XCTAssertEqual(short.stderr, "graft: error: \(dir.file("labels.npy")): the labels must be an int64 or int32 array [40]; this is int64 [39]\n")
        let both = try GraftProcess.run(["train", trunk, "--data", dir.path, "--features", dir.file("features.npy"), "--out", out])
        XCTAssertEqual(both.status, 2)
    }

    /// `--resume` continues a run stopped before any epoch was saved (its features are in the
    /// cache) and refuses one that never started.
    func testResumeWithoutASavedEpoch() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), out = dir.file("m.onnx")
        XCTAssertEqual(try GraftProcess.run(["demo-data", data, "--per-class", "8"]).status, 0)
        let args = ["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", data, "--out", out, "--epochs", "1", "--head", "8", "--dropout", "0.1"]
        let nothing = try GraftProcess.run(args + ["--resume"])
        XCTAssertEqual(nothing.status, 1)
        XCTAssertEqual(nothing.stderr, "graft: error: nothing to resume: no run has written \(out).state or \(out).cache\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        try FileManager.default.createDirectory(atPath: out + ".cache", withIntermediateDirectories: true)
        let resumed = try GraftProcess.run(args + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.hasPrefix("no epoch of the run before was saved (\(out).state does not exist); training starts at epoch 1\n"), resumed.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + ".state"))
    }

    func testBadDataFolders() throws {
        let dir = try TemporaryDirectory()
        let empty = dir.file("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let result = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", empty, "--out", dir.file("m.onnx")])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("graft: error: "), result.stderr)
        XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, result.stderr)
        let usage = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--data", empty, "--out", dir.file("m.txt")])
        XCTAssertEqual(usage.status, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("m.onnx")))
    }
}

extension TrainCommandTests {
    /// A dropout list that does not fit the head is a usage error found before any work.
    func testDropoutThatDoesNotFitTheHeadIsAUsageError() throws {
        let dir = try TemporaryDirectory()
        let r = try GraftProcess.run(["train", Fixtures.tiny("ts_opset17_bn.onnx"), "--data", "/nonexistent-folder", "--out", dir.file("x.onnx"),
                                      "--head", "16", "--dropout", "0.5,0.3"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--dropout gives 2 probabilities for 1 hidden layers (--head 16): give one per layer"), r.stderr)
    }
}

extension TrainCommandTests {
    /// A trained model records its split: `evaluate` uses it, and refuses another seed or other
    /// images (whose test split could hold training images) unless told to go ahead; training
    /// again onto the model is refused unless `--force` or `--resume`.
    func testEvaluateKeepsToTheTrainingSplitAndTrainKeepsTheModel() throws {
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), out = dir.file("m.onnx")
        XCTAssertEqual(try GraftProcess.run(["demo-data", data, "--per-class", "20"]).status, 0)
        let trunk = Fixtures.tiny("ts_opset17_dynamic.onnx")
        let train = try GraftProcess.run(["train", trunk, "--data", data, "--out", out, "--epochs", "2", "--head", "8", "--seed", "7"])
        XCTAssertEqual(train.status, 0, train.stderr)
        // Its own seed, without being told.
        let evaluate = try GraftProcess.run(["evaluate", out, "--data", data, "--format", "json"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        try checkPrecisionReports(out, data: data, f32: evaluate.stdout, directory: dir)
        let other = try GraftProcess.run(["evaluate", out, "--data", data, "--seed", "8"])
        XCTAssertEqual(other.status, 1)
        XCTAssertEqual(other.stderr, "graft: error: \(data): the model was trained on the split of seed 7, not 8: its test images could include training images (--ignore-split to evaluate anyway)\n")
        XCTAssertEqual(try GraftProcess.run(["evaluate", out, "--data", data, "--seed", "8", "--ignore-split"]).status, 0)
        // More images in the folder: another split.
        let more = dir.file("more")
        XCTAssertEqual(try GraftProcess.run(["demo-data", more, "--per-class", "30"]).status, 0)
        let changed = try GraftProcess.run(["evaluate", out, "--data", more])
        XCTAssertEqual(changed.status, 1)
        XCTAssertEqual(changed.stderr, "graft: error: \(more): these are not the images the model was split and trained on: its test split could include training images (--ignore-split to evaluate anyway)\n")
        // The trained model is not replaced by accident.
        let before = try Data(contentsOf: URL(fileURLWithPath: out))
        let again = try GraftProcess.run(["train", trunk, "--data", data, "--out", out, "--epochs", "1", "--head", "8"])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("\(out) exists: --resume continues its run, --force replaces it"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), before)
        XCTAssertEqual(try GraftProcess.run(["train", trunk, "--data", data, "--out", out, "--epochs", "1", "--head", "8", "--force"]).status, 0)
    }

    /// `evaluate --precision` at a reduced precision reports how the outputs compare with f32's
    /// on the same images (its f32 accuracy the f32 report's); int8 runs a model quantized by
    /// `graft quantize` (the grafted model calibrated on its own training images) and is refused
    /// on the float one.
    func checkPrecisionReports(_ model: String, data: String, f32: String, directory: TemporaryDirectory) throws {
        func report(_ json: String) throws -> [String: Any] {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        }
        let f32Report = try report(f32)
        XCTAssertNil(f32Report["precision"], "f32 compares with nothing")
        let f32Accuracy = try XCTUnwrap((f32Report["report"] as? [String: Any])?["accuracy"] as? Double)
        let quantized = directory.file("int8.onnx")
        XCTAssertEqual(try GraftProcess.run(["quantize", model, "--calibrate", data + "/train", "--out", quantized]).status, 0)
        var runs: [(String, String)] = [("int8", quantized)]
        if PrecisionTests.processorHasBF16 { runs.append(("bf16", model)) }
        for (precision, file) in runs where precision != "int8" || PrecisionTests.processorHasVNNI {
            let run = try GraftProcess.run(["evaluate", file, "--data", data, "--format", "json", "--precision", precision])
            XCTAssertEqual(run.status, 0, run.stderr)
            let comparison = try XCTUnwrap(try report(run.stdout)["precision"] as? [String: Any], run.stdout)
            XCTAssertEqual(comparison["precision"] as? String, precision)
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(comparison["top1_agreement"] as? Double), 0.75, precision)
            XCTAssertLessThan(try XCTUnwrap(comparison["max_abs_difference"] as? Double), 0.5, precision)
            if precision == "bf16" { XCTAssertEqual(comparison["f32_accuracy"] as? Double, f32Accuracy) }
            let text = try GraftProcess.run(["evaluate", file, "--data", data, "--precision", precision])
            XCTAssertTrue(text.stdout.contains("\(precision) against f32 on the same "), text.stdout)
        }
        let refused = try GraftProcess.run(["evaluate", model, "--data", data, "--precision", "int8"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("run `graft quantize`") || refused.stderr.contains("graft quantize MODEL"), refused.stderr)
    }

    /// A quantized trunk (`graft quantize`'s QDQ model, its classifier's weight a
    /// DequantizeLinear) is grafted like a float one; `train --precision int8` extracts its
    /// features on the int8 kernels, and the grafted model evaluates and classifies at int8.
    func testTrainingOnAQuantizedTrunk() throws {
        try XCTSkipUnless(PrecisionTests.processorHasVNNI, "the processor lacks AVX512_VNNI")
        let dir = try TemporaryDirectory()
        let data = dir.file("data"), trunk = dir.file("trunk_int8.onnx"), out = dir.file("grafted.onnx")
        XCTAssertEqual(try GraftProcess.run(["demo-data", data, "--per-class", "20"]).status, 0)
        let quantize = try GraftProcess.run(["quantize", Fixtures.tiny("ts_opset17_dynamic.onnx"), "--calibrate", data + "/train", "--out", trunk])
        XCTAssertEqual(quantize.status, 0, quantize.stderr)
        let train = try GraftProcess.run(["train", trunk, "--data", data, "--out", out, "--epochs", "2", "--head", "8", "--seed", "7", "--precision", "int8"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let evaluate = try GraftProcess.run(["evaluate", out, "--data", data, "--precision", "int8"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        XCTAssertTrue(evaluate.stdout.contains("int8 against f32 on the same 8 images"), evaluate.stdout)
        let infer = try GraftProcess.run(["infer", out, data + "/train/cat.1.jpg", "--precision", "int8"])
        XCTAssertEqual(infer.status, 0, infer.stderr)
        XCTAssertTrue(infer.stdout.hasPrefix(data + "/train/cat.1.jpg: "), infer.stdout)
    }
}
