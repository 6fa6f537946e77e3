import Foundation
import Graft
import GraftCore
import GraftONNX
import GraftQuantization
import GraftRuntime
import GraftTestSupport
import GraftTrain
import XCTest

/// A trained model on real images: the small Fashion-MNIST ResNet (`fixtures/fashion`, made by
/// `tools/train_fashion_resnet.py`) over the whole test split that `make fixtures` materializes,
/// against ONNX Runtime's f32 logits of the same images and the labels, at each precision Graft
/// runs. Random weights would hide what a reduced precision does to the classes a model picks.
final class FashionAccuracyTests: XCTestCase {
    /// A way of running the model and how close it must come to the reference.
    struct Precision {
        let name: String
        let load: (URL) throws -> Model
        /// The least fraction of images whose top-1 class is the reference's.
        let agreement: Double
        /// The largest |logit − reference logit| over every image and class.
        let maxLogitDiff: Float
        /// The largest |accuracy − the reference's accuracy| on the labels.
        let accuracyDiff: Double
        /// For a model `graft quantize` writes by this method: its file is run by ONNX Runtime too.
        var writtenBy: Quantizer.Method? = nil
    }

    /// The precisions Graft runs, with bounds from what was measured on the committed model. f32:
    /// 6.7e-6 at most, on logits up to 19 (the order of float sums); the reference's two best
    /// classes are never nearer than 1.6e-3, so within 1e-4 every image keeps its class.
    ///
    /// int8: the model quantized by `Quantizer` (what `graft quantize` does) with 500 training
    /// images, written as QDQ ONNX and loaded back, run by the int8 kernels (`--precision int8`);
    /// and once as the model defines it, its QuantizeLinear/DequantizeLinear in f32 arithmetic
    /// (`--precision f32`). Measured through the kernels: min-max 99.69 % agreement, max |Δlogit|
    /// 0.37, accuracy unchanged; percentile 99.75 %, 0.55, +0.07 points; entropy 99.62 %, 1.25,
    /// −0.03; the QDQ model of ONNX Runtime's own quantizer (min-max, 500 training images) 99.60 %,
    /// 2.28, +0.03. bf16 (bfloat16 activations between its products, Winograd's too): 99.91 %, 0.21, unchanged.
    static let precisions = [
        Precision(name: "f32", load: { try Model(contentsOf: $0) }, agreement: 1, maxLogitDiff: 1e-4, accuracyDiff: 0),
        Precision(name: "bf16", load: { try Model(contentsOf: $0, options: .init(precision: .bf16)) }, agreement: 0.995, maxLogitDiff: 0.5, accuracyDiff: 0.003),
        Precision(name: "int8 min-max", load: { try quantized($0, .minmax) }, agreement: 0.995, maxLogitDiff: 0.5, accuracyDiff: 0.003, writtenBy: .minmax),
        Precision(name: "int8 min-max in f32 arithmetic", load: { try quantized($0, .minmax, precision: .f32) }, agreement: 0.995, maxLogitDiff: 0.5, accuracyDiff: 0.003),
        Precision(name: "int8 percentile", load: { try quantized($0, .percentile) }, agreement: 0.995, maxLogitDiff: 0.75, accuracyDiff: 0.003,
                  writtenBy: .percentile),
        Precision(name: "int8 entropy", load: { try quantized($0, .entropy) }, agreement: 0.995, maxLogitDiff: 1.5, accuracyDiff: 0.003,
                  writtenBy: .entropy),
        Precision(name: "int8 QDQ from ONNX Runtime", load: { _ in try onnxRuntimeQDQ(precision: .int8) }, agreement: 0.993, maxLogitDiff: 2.5, accuracyDiff: 0.003),
        Precision(name: "int8 QDQ from ONNX Runtime in f32 arithmetic", load: { _ in try onnxRuntimeQDQ(precision: .f32) },
                  agreement: 0.993, maxLogitDiff: 2.5, accuracyDiff: 0.003),
    ]

    /// ONNX Runtime's QDQ model of the same network.
    static func onnxRuntimeQDQ(precision: Plan.Precision) throws -> Model {
        try Model(contentsOf: URL(fileURLWithPath: try Fixtures.materialized("fashion/fashion_resnet_int8_qdq.onnx")), options: .init(precision: precision))
    }

    /// The model quantized with the materialized calibration images, as a QDQ file loaded back.
    static func quantized(_ url: URL, _ method: Quantizer.Method, precision: Plan.Precision = .int8) throws -> Model {
        let folder = try TemporaryDirectory()
        return try Model(contentsOf: URL(fileURLWithPath: try writeQuantized(url, method, to: folder)), options: .init(precision: precision))
    }

    /// Quantizes the model at `url` with the materialized calibration images by `method` and
    /// writes it as QDQ ONNX into `folder`; returns the file's path.
    static func writeQuantized(_ url: URL, _ method: Quantizer.Method, to folder: TemporaryDirectory) throws -> String {
        let graph = try CompiledModel(try ONNXImporter.importModel(at: url.path)).graph
        let calibration = try NPY.read(try Fixtures.materialized("fashion/calibration_x.npy"))
        let batches = stride(from: 0, to: calibration.shape[0], by: 100).map { start in
            let n = min(100, calibration.shape[0] - start), size = 28 * 28
            return Tensor(shape: [n, 1, 28, 28], floats: Array(calibration.floats[start * size..<(start + n) * size]))
        }
        var quantizer = Quantizer()
        quantizer.method = method
        let (qdq, _) = try quantizer.quantize(graph, calibration: batches)
        let path = folder.file("fashion_int8_\(method.rawValue).onnx")
        try ONNXExporter.export(qdq, to: path)
        return path
    }

    /// Batches of this size, the last one short, so two planned batch sizes run.
    static let batch = 512

    func testAccuracyOnTheTestSplit() throws {
        let modelURL = URL(fileURLWithPath: Fixtures.path("fashion/fashion_resnet.onnx"))
        let x = try NPY.read(try Fixtures.materialized("fashion/test_x.npy"))
        let labels = try NPY.read(try Fixtures.materialized("fashion/test_y.npy")).int64s.map(Int.init)
        let reference = try NPY.read(try Fixtures.materialized("fashion/ref_logits.npy"))
        let (count, classes) = (labels.count, reference.shape[1])
        XCTAssertEqual(x.shape, [count, 1, 28, 28])
        XCTAssertEqual(reference.shape, [count, 10])
        let referenceLogits = reference.floats, referenceTop = try Matrix(reference).argmaxRows()
        let referenceAccuracy = Self.accuracy(referenceTop, labels)

        // The materialized images are the ones the model was trained for: ONNX Runtime's accuracy
        // on them is the one PyTorch measured after training.
        let metadata = try Model(contentsOf: modelURL).compiled.imported.metadata
        let trained = try XCTUnwrap(metadata.value(Double.self, forKey: "fashion.pytorch_test_accuracy"))
        XCTAssertEqual(referenceAccuracy, trained, accuracy: 0.001, "ONNX Runtime's accuracy against PyTorch's")

        let pixels = x.floats, imageSize = 28 * 28
        /// One row: the classes and logits of `logits` against the reference's and the labels.
        func check(_ precision: Precision, _ logits: [Float]) {
            XCTAssertEqual(logits.count, count * classes, precision.name)
            guard logits.count == count * classes else { return }
            let predicted = Matrix(rows: count, columns: classes, values: logits).argmaxRows()
            let agreement = Self.accuracy(predicted, referenceTop)
            let maxDiff = zip(logits, referenceLogits).reduce(Float(0)) { worst, pair in
                let d = abs(pair.0 - pair.1)
                return d.isNaN ? .infinity : max(worst, d)
            }
            let accuracy = Self.accuracy(predicted, labels)
            print("Fashion-MNIST \(precision.name): top-1 agreement \(agreement), max |Δlogit| \(maxDiff), "
                  + "accuracy \(accuracy) (reference \(referenceAccuracy))")
            XCTAssertGreaterThanOrEqual(agreement, precision.agreement, "\(precision.name): top-1 agreement with ONNX Runtime")
            XCTAssertLessThanOrEqual(maxDiff, precision.maxLogitDiff, "\(precision.name): max |logit − ONNX Runtime's|")
            XCTAssertEqual(accuracy, referenceAccuracy, accuracy: precision.accuracyDiff + 1e-9, "\(precision.name): accuracy")
        }
        for precision in Self.precisions {
            let model = try precision.load(modelURL)
            var logits: [Float] = []
            logits.reserveCapacity(count * classes)
            for start in stride(from: 0, to: count, by: Self.batch) {
                let n = min(Self.batch, count - start)
                let input = Tensor(shape: [n, 1, 28, 28], floats: Array(pixels[start * imageSize..<(start + n) * imageSize]))
                let output = try XCTUnwrap(try model.run([model.inputs[0].name: input])[model.outputs[0].name])
                XCTAssertEqual(output.shape, [n, classes])
                logits += output.floats
            }
            check(precision, logits)
        }

        // The QDQ files Graft writes, run by ONNX Runtime's int8 kernels, within the same bounds
        // as Graft's run of them.
        let folder = try TemporaryDirectory()
        let written = try Self.precisions.compactMap { precision -> (Precision, ONNXRuntime.Job)? in
            guard let method = precision.writtenBy else { return nil }
            let path = try Self.writeQuantized(modelURL, method, to: folder)
            let row = Precision(name: "\(precision.name), Graft's file run by ONNX Runtime", load: precision.load,
                                agreement: precision.agreement, maxLogitDiff: precision.maxLogitDiff, accuracyDiff: precision.accuracyDiff)
            return (row, .init(model: path, inputs: [try Fixtures.materialized("fashion/test_x.npy")], output: folder.file("\(method.rawValue).npy")))
        }
        XCTAssertEqual(written.count, Quantizer.Method.allCases.count)
        for ((row, job), error) in zip(written, try ONNXRuntime.run(written.map(\.1))) {
            XCTAssertNil(error, row.name)
            check(row, try NPY.read(job.output).floats)
        }
    }

    /// The fraction of `predicted` equal to `labels`.
    static func accuracy(_ predicted: [Int], _ labels: [Int]) -> Double {
        Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(labels.count)
    }
}
