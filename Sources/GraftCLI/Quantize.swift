import ArgumentParser
import Foundation
import Graft
import GraftCore
import GraftONNX
import GraftQuantization
import GraftRuntime
import GraftVision

extension GraftCommand {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quantize a model to int8 after training: standard QDQ ONNX, calibrated on images or an array.",
            discussion: """
            The model is optimized first (batch norm folded into the convolutions), then every Conv \
            and Gemm with constant weights gets symmetric int8 weights (one scale per output channel \
            unless --per-tensor), an int32 bias, and a QuantizeLinear/DequantizeLinear pair on the \
            activation it reads, whose range comes from running the model on the calibration inputs. \
            The result is standard QDQ ONNX, as ONNX Runtime's quantize_static writes it: ONNX Runtime \
            and OpenVINO run it with their int8 kernels.
            """
        )

        @OptionGroup var model: ModelArgument

        @Option(help: ArgumentHelp("Calibration inputs: a folder of images (or image files; the model's transform is applied), or a float32 .npy array of inputs.", valueName: "dir|x.npy"),
                completion: .file(extensions: ["npy"]))
        var calibrate: String

        @Option(help: "The QDQ ONNX model to write.", completion: .file(extensions: ["onnx"]))
        var out: String

        @Option(help: "How activation ranges are chosen: minmax, percentile (99.999 %) or entropy (least Kullback–Leibler divergence).")
        var method: Quantizer.Method = .minmax

        @Flag(name: .customLong("per-channel"), help: "One weight scale per output channel (the default).")
        var perChannel = false

        @Flag(name: .customLong("per-tensor"), help: "One weight scale per weight tensor.")
        var perTensor = false

        @Option(help: "Activations as u8 (with a zero point; the default) or s8 (symmetric).")
        var activations: Quantizer.Activations = .u8

        @Option(parsing: .unconditional, help: "At most this many calibration images or array entries (a seeded sample of a larger set).")
        var count = 256

        @Option(parsing: .unconditional, help: "Threads for the calibration runs (default: all cores; at most \(Limits.threads)).")
        var threads = Parallel.defaultThreads

        func validate() throws {
            if perChannel && perTensor { throw ValidationError("--per-channel and --per-tensor exclude each other") }
            try Limits.check("--count", count, 1...100_000)
            try Limits.check("--threads", threads, 1...Limits.threads)
            guard out.lowercased().hasSuffix(".onnx") else { throw ValidationError("\(out): the output must be an .onnx file") }
        }

        func run() throws {
            Parallel.threads = threads
            let (graph, _) = try optimized(try model.load(), file: model.model)
            let batches = try calibration(for: graph)
            var quantizer = Quantizer()
            quantizer.method = method
            quantizer.perChannel = !perTensor
            quantizer.activations = activations
            let (quantized, report): (Graph, Quantizer.Report)
            do {
                (quantized, report) = try quantizer.quantize(graph, calibration: batches)
            } catch let error as GraftError where error.file == nil {
                throw error.inFile(model.model)
            }
            try ModelFile.write(quantized, to: out, opset: nil, externalData: false)
            print("wrote \(out): \(report.quantizedNodes.count) Conv/Gemm quantized (\(quantizer.perChannel ? "per-channel" : "per-tensor") int8 weights, \(activations.rawValue) activations, \(method.rawValue) over \(report.samples) calibration inputs)")
        }

        /// The calibration inputs in batches of up to 32: an array's entries, or images
        /// transformed for the model; at most `count`, a seeded sample when there are more.
        func calibration(for graph: Graph) throws -> [Tensor] {
            let batch = 32
            if calibrate.lowercased().hasSuffix(".npy") {
                let x = try NPY.read(calibrate)
                guard x.dtype == .float32, x.rank >= 1, x.shape[0] > 0 else {
                    throw GraftError(.badInput, "calibration inputs must be a non-empty float32 array, got \(x.dtype) \(x.shape)", file: calibrate)
                }
                let n = x.shape[0], per = x.elementCount / n
                let chosen = sample(n)
                return stride(from: 0, to: chosen.count, by: batch).map { start in
                    let rows = chosen[start..<min(start + batch, chosen.count)]
                    var t = Tensor(uninitialized: [rows.count] + Array(x.shape.dropFirst()))
                    x.withUnsafeBufferPointer(as: Float.self) { src in
                        t.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                            for (i, r) in rows.enumerated() { (dst.baseAddress! + i * per).update(from: src.baseAddress! + r * per, count: per) }
                        }
                    }
                    return t
                }
            }
            let files = try ImageFiles.expand([calibrate])
            guard !files.isEmpty else { throw GraftError(.badInput, "no JPEG or PNG images found", file: calibrate) }
            let transform = ImageTransform.matching(graph)
            let chosen = sample(files.count).map { files[$0] }
            var batches: [Tensor] = []
            for start in stride(from: 0, to: chosen.count, by: batch) {
                let images = try chosen[start..<min(start + batch, chosen.count)].map { try ImageDecoder.decode(at: $0) }
                batches.append(transform(images))
            }
            return batches
        }

        /// Indices of at most `count` of `n` items: all of them in order, or a seeded sample in order.
        func sample(_ n: Int) -> [Int] {
            guard n > count else { return Array(0..<n) }
            var generator = SeededGenerator(seed: 0x5eed)
            return Array(Array(0..<n).shuffled(using: &generator).prefix(count)).sorted()
        }
    }
}

extension Quantizer.Method: ExpressibleByArgument {}
extension Quantizer.Activations: ExpressibleByArgument {}
