import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// `--precision`: bf16 where the processor has AVX512_BF16, int8 for quantized models where it has
/// AVX512_VNNI, a clear refusal where it does not; `auto` the fastest of them it can run.
final class PrecisionTests: XCTestCase {
    let model = Fixtures.tiny("ts_opset17_dynamic.onnx")
    let input = Fixtures.tiny("input_b3.npy")

    /// Whether /proc/cpuinfo's flags list `flag`.
    static func processorHas(_ flag: Substring) -> Bool {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return info.split(separator: "\n").first { $0.hasPrefix("flags") }.map { $0.split(separator: " ").contains(flag) } ?? false
    }

    static let processorHasBF16 = processorHas("avx512_bf16"), processorHasVNNI = processorHas("avx512_vnni")

    /// bf16 classifies the tiny model's inputs as f32 does, its outputs within bf16's rounding,
    /// and `bench` says which precision it timed.
    func testBF16RunsWhereTheProcessorHasIt() throws {
        try XCTSkipUnless(Self.processorHasBF16, "the processor lacks AVX512_BF16")
        let (f32, bf16) = try outputs(model, input, at: "bf16")
        assertClose(bf16, f32, atol: 0.03 * f32.floats.map(abs).max()!, rtol: 0, "bf16 against f32")
        XCTAssertNotEqual(bf16.floats, f32.floats, "bf16 rounds: the outputs differ a little")
        try assertBenchReports(model, precision: "bf16", kernels: "AVX-512 BF16")
    }

    /// `graft infer`'s first output on `input` at f32 and at `precision`.
    func outputs(_ model: String, _ input: String, at precision: String) throws -> (f32: Tensor, other: Tensor) {
        let dir = try TemporaryDirectory()
        for name in ["f32", precision] {
            let run = try GraftProcess.run(["infer", model, "--input", input, "--precision", name, "--output", dir.file("\(name).npy")])
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        return (try NPY.read(dir.file("f32.npy")), try NPY.read(dir.file("\(precision).npy")))
    }

    /// `graft bench --precision asked` times `precision` and says so, naming its kernels.
    func assertBenchReports(_ model: String, precision: String, kernels: String, asked: String? = nil,
                            environment: [String: String] = [:]) throws {
        let bench = try GraftProcess.run(["bench", model, "--precision", asked ?? precision, "--runs", "1", "--warmup", "0", "--json"],
                                         environment: environment)
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["precision"] as? String, precision, "\(model) at \(asked ?? precision)")
        XCTAssertEqual(json["kernels"] as? String, kernels)
    }

    /// `auto` runs a quantized model at int8 where the processor has AVX512_VNNI, and any model
    /// at bf16 where it has AVX512_BF16, else at f32 (with the AVX2 kernels forced, f32).
    func testAutoPicksTheFastestTheProcessorAndTheModelAllow() throws {
        let quantized = Fixtures.path("qdq/tiny_qdq_per_channel_u8s8.onnx")
        let (bf16, int8) = (Self.processorHasBF16, Self.processorHasVNNI)
        let f32Kernels = Self.processorHas("avx512f") ? "AVX-512" : "AVX2+FMA"
        try assertBenchReports(model, precision: bf16 ? "bf16" : "f32", kernels: bf16 ? "AVX-512 BF16" : f32Kernels, asked: "auto")
        try assertBenchReports(quantized, precision: int8 ? "int8" : bf16 ? "bf16" : "f32",
                               kernels: int8 ? "AVX-512 VNNI" : bf16 ? "AVX-512 BF16" : f32Kernels, asked: "auto")
        for m in [model, quantized] {
            try assertBenchReports(m, precision: "f32", kernels: "AVX2+FMA", asked: "auto", environment: ["GRAFT_KERNELS": "avx2"])
        }
    }

    /// Without AVX512_BF16 (here: the AVX2 kernels forced), bf16 is one line and exit 1, never
    /// an illegal instruction; an unknown precision is a usage error.
    func testBF16WithoutTheInstructionsIsRefusedInOneLine() throws {
        for command in [["infer", model, "--input", input], ["bench", model, "--runs", "1"]] {
            let run = try GraftProcess.run(command + ["--precision", "bf16"], environment: ["GRAFT_KERNELS": "avx2"])
            XCTAssertEqual(run.status, 1, run.stderr)
            XCTAssertEqual(run.stderr, "graft: error: \(model): bf16 needs a processor with AVX512_BF16, which this one does not have (GRAFT_KERNELS=avx2 rules it out); use f32\n")
        }
        let unknown = try GraftProcess.run(["infer", model, "--input", input, "--precision", "fp8"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("'--precision <f32|bf16|int8|auto>'"), unknown.stderr)
    }

    /// int8 runs a QDQ model (ONNX Runtime's quantizer's, per channel) through the int8 kernels
    /// to the outputs of the model's own arithmetic (this small one: the same to 1e-5), and
    /// `bench` says so.
    func testInt8RunsAQuantizedModel() throws {
        try XCTSkipUnless(Self.processorHasVNNI, "the processor lacks AVX512_VNNI")
        let quantized = Fixtures.path("qdq/tiny_qdq_per_channel_u8s8.onnx")
        let dir = try TemporaryDirectory()
        var random = SeededGenerator(seed: 3)
        try NPY.write(random.tensor([2, 3, 64, 64]), to: dir.file("x.npy"))
        let (f32, int8) = try outputs(quantized, dir.file("x.npy"), at: "int8")
        assertClose(int8, f32, atol: 1e-5, rtol: 0, "int8 kernels against the model's arithmetic")
        try assertBenchReports(quantized, precision: "int8", kernels: "AVX-512 VNNI")
    }

    /// int8 on a model that was never quantized says to quantize it first; without AVX512_VNNI
    /// it is refused; each in one line, exit 1.
    func testInt8RefusalsAreOneLine() throws {
        let plain = try GraftProcess.run(["infer", model, "--input", input, "--precision", "int8"])
        XCTAssertEqual(plain.status, 1, plain.stderr)
        XCTAssertEqual(plain.stderr, "graft: error: \(model): int8 runs quantized models, and this one has no QuantizeLinear/DequantizeLinear: make one with `graft quantize MODEL --calibrate IMAGES --out MODEL_int8.onnx` first\n")
        let quantized = Fixtures.path("qdq/tiny_qdq_per_channel_u8s8.onnx")
        let forced = try GraftProcess.run(["bench", quantized, "--runs", "1", "--precision", "int8"], environment: ["GRAFT_KERNELS": "avx2"])
        XCTAssertEqual(forced.status, 1, forced.stderr)
        XCTAssertEqual(forced.stderr, "graft: error: \(quantized): int8 needs a processor with AVX512_VNNI, which this one does not have (GRAFT_KERNELS=avx2 rules it out); use f32\n")
    }
}
