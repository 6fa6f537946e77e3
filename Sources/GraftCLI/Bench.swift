import ArgumentParser
import Dispatch
import Foundation
import GraftCore
import GraftRuntime
import GraftVision

extension GraftCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time a model's load and inference on random input, an array or an image: latency percentiles, throughput, memory."
        )

        @OptionGroup var model: ModelArgument

        @Option(parsing: .unconditional, help: "Images per run (at most \(Limits.batch)).")
        var batch = 1

        @Option(parsing: .unconditional, help: "Threads for the kernels (default: all cores; at most \(Limits.threads)).")
        var threads = Parallel.defaultThreads

        @Option(parsing: .unconditional, help: "Timed runs.")
        var runs = 20

        @Option(help: "Run for this many seconds instead of a number of runs (at least one run).")
        var time: Double?

        @Option(help: ArgumentHelp("A float32 .npy input (the model's input shape, any batch it takes), or an image (JPEG or PNG, transformed as `infer` does and repeated --batch times), instead of a seeded random input.",
                                   valueName: "file"),
                completion: .file(extensions: ["npy", "jpg", "jpeg", "png"]))
        var input: String?

        @Option(parsing: .unconditional, help: "Untimed runs first.")
        var warmup = 3

        @Flag(help: "Print the figures as JSON (schemas/bench.schema.json).")
        var json = false

        @Flag(help: "Add time and GFLOP/s per op type and the slowest layers.")
        var profile = false

        @Flag(name: .customLong("no-optimize"), help: "Run the graph as imported, without the graph passes.")
        var noOptimize = false

        @Option(help: precisionHelp)
        var precision: PrecisionOption = .f32

        func validate() throws {
            try Limits.check("--threads", threads, 1...Limits.threads)
            try Limits.check("--batch", batch, 1...Limits.batch)
            try Limits.check("--runs", runs, 1...Limits.runs)
            try Limits.check("--warmup", warmup, 0...Limits.runs)
            if let time, !(time > 0 && time <= 86_400) { throw ValidationError("--time must be between 0 and 86400 seconds") }
        }

        func run() throws {
            Parallel.threads = threads
            let t0 = now()
            let imported = try model.load()
            let t1 = now()
            let precision = self.precision.resolved(for: imported)
            let compiled = try CompiledModel(imported, optimize: !noOptimize, precision: precision, file: model.model)
            let graph = compiled.graph
            let x = try input.map { try read($0, for: graph) } ?? (try randomInput(for: graph))
            let feeds = [graph.inputs[0].name: x]
            func timed(_ profile: inout Profile?) throws -> Double {
                let start = now()
                do {
                    _ = try compiled.run(feeds, profile: &profile)
                } catch let error as GraftError where error.file == nil {
                    throw error.inFile(input ?? model.model)
                }
                return now() - start
            }
            var none: Profile?
            let first = try timed(&none)
            for _ in 0..<warmup { _ = try timed(&none) }
            var samples: [Double] = []
            var record: Profile? = profile ? Profile() : nil
            let deadline = time.map { now() + $0 }
            while deadline.map({ now() < $0 || samples.isEmpty }) ?? (samples.count < runs) {
                samples.append(try timed(&record))
            }
            let figures = Figures(model: model.model, batch: x.shape.first ?? 1, threads: threads, runs: samples.count, warmup: warmup,
                                  parse: t1 - t0, passes: compiled.passSeconds, plan: compiled.planSeconds, first: first,
                                  samples: samples.sorted(), peakResidentMB: peakResidentMB(), optimized: !noOptimize, precision: precision)
            print(json ? try figures.json(record) : figures.text(record))
            if let warning = figures.noiseWarning { FileHandle.standardError.write(Data("graft: warning: \(warning)\n".utf8)) }
        }

        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

        /// The input in `file`: an `.npy` array as it is, or an image transformed for the model (its
        /// size and normalisation, as `infer` does) and repeated `batch` times.
        func read(_ file: String, for graph: Graph) throws -> Tensor {
            if file.lowercased().hasSuffix(".npy") { return try NPY.read(file) }
            let image = ImageTransform.matching(graph)(try ImageDecoder.decode(at: file))
            var x = Tensor(uninitialized: [batch] + image.shape)
            image.withUnsafeBufferPointer(as: Float.self) { one in
                x.withUnsafeMutableBufferPointer(as: Float.self) { all in
                    for i in 0..<batch { (all.baseAddress! + i * one.count).update(from: one.baseAddress!, count: one.count) }
                }
            }
            return x
        }

        /// A seeded uniform input of the model's shape with the batch dimension set.
        func randomInput(for graph: Graph) throws -> Tensor {
            guard graph.inputs.count == 1, let input = graph.inputs.first else {
                throw GraftError(.invalidArgument, "bench needs a model with one input; this one has \(graph.inputs.count)", file: model.model)
            }
            var sizes: [Int] = []
            for (i, d) in input.shape.dims.enumerated() {
                switch d {
                case .value(let v):
                    if i == 0 && v != batch {
                        throw GraftError(.invalidArgument, "the model's batch dimension is fixed at \(v); --batch \(batch) does not fit", file: model.model)
                    }
                    sizes.append(v)
                case .symbol(let s):
                    guard i == 0 else {
                        throw GraftError(.invalidArgument, "input dimension \(i) is symbolic (\(s)); bench needs fixed sizes beyond the batch", file: model.model)
                    }
                    sizes.append(batch)
                }
            }
            var state: UInt64 = 0x2545F4914F6CDD1D
            let values = (0..<sizes.elementCount).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state >> 11) % 2000 - 1000) / 1000
            }
            return Tensor(shape: sizes, floats: values)
        }

        func peakResidentMB() -> Double {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            return Double(usage.ru_maxrss) / 1024
        }
    }
}

/// The measured figures of one `graft bench` run.
struct Figures {
    var model: String
    var batch, threads, runs, warmup: Int
    var parse, passes, plan: Double
    /// Seconds of the first run (packing done lazily, caches cold).
    var first: Double
    /// Seconds per run, sorted.
    var samples: [Double]
    var peakResidentMB: Double
    var optimized: Bool
    var precision: Plan.Precision

    func percentile(_ p: Double) -> Double {
        samples[min(samples.count - 1, Int((p / 100 * Double(samples.count - 1)).rounded()))]
    }

    var load: Double { parse + passes + plan }
    var throughput: Double { Double(batch) / percentile(50) }
    var mean: Double { samples.reduce(0, +) / Double(samples.count) }
    /// The sample standard deviation (0 for one run).
    var standardDeviation: Double {
        guard samples.count > 1 else { return 0 }
        let m = mean
        return (samples.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(samples.count - 1)).squareRoot()
    }

    /// A warning when the runs spread so widely that the machine was probably busy.
    var noiseWarning: String? {
        let spread = (percentile(90) - percentile(10)) / percentile(50)
        guard samples.count >= 5, spread > 0.2 else { return nil }
        return String(format: "the runs spread by %.0f %% of the median (p10 to p90): the machine may be busy; compare figures from a quiet machine", spread * 100)
    }

    func text(_ profile: Profile?) -> String {
        func ms(_ s: Double) -> String { String(format: "%.2f ms", s * 1000) }
        var lines = [
            "model       \(model)",
            "setting     batch \(batch), threads \(threads), \(runs) runs after \(warmup) warm-up, \(optimized ? "optimized" : "as imported"), \(precision), \(System.kernels(precision))",
            "cpu         \(System.cpuModel)",
            String(format: "load        %.3f s (parse %.3f s, passes %.3f s, plan %.3f s); first run %@", load, parse, passes, plan, ms(first)),
            "latency     min \(ms(samples[0]))  p50 \(ms(percentile(50)))  p90 \(ms(percentile(90)))  p95 \(ms(percentile(95)))  p99 \(ms(percentile(99)))  max \(ms(samples[samples.count - 1]))",
            "            mean \(ms(mean))  std \(ms(standardDeviation))",
            String(format: "throughput  %.2f images/s", throughput),
            String(format: "peak memory %.1f MB resident", peakResidentMB),
        ]
        if let profile {
            let total = profile.byKind.reduce(0) { $0 + $1.seconds }
            lines.append("")
            lines.append("op                      count     ms/run   share   GFLOP/s")
            for k in profile.byKind {
                let rate = k.gflops > 0 ? String(format: "%.1f", k.gflops) : "--"
                lines.append(pad(k.kind, 22) + String(format: " %6d %10.3f %6.1f%% ", k.count, k.seconds * 1000, 100 * k.seconds / max(total, 1e-12))
                             + pad(rate, 9, left: true))
            }
            lines.append("")
            lines.append("slowest layers             ms/run   GFLOP/s  node")
            for e in profile.top(10) {
                let rate = e.flops > 0 ? String(format: "%.1f", e.flops / e.seconds / 1e9) : "--"
                lines.append(pad(e.kind, 22) + String(format: " %9.3f ", e.seconds * 1000) + pad(rate, 9, left: true) + "  " + e.node)
            }
        }
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? fill + text : text + fill
    }

    /// `schemas/bench.schema.json`.
    struct Report: Encodable {
        struct Latency: Encodable {
            var min, p50, p90, p95, p99, max, mean, std: Double
        }
        struct Kind: Encodable {
            var op: String
            var count: Int
            var ms_per_run, gflops: Double
        }
        struct Layer: Encodable {
            var op, node: String
            var ms_per_run, gflops: Double
        }
        var model: String
        var batch, threads, runs, warmup: Int
        var load_seconds, parse_seconds, passes_seconds, plan_seconds, first_run_ms: Double
        var latency_ms: Latency
        var throughput_images_per_second, peak_resident_mb: Double
        var optimized: Bool
        var precision: String
        var kernels, cpu, graft_version: String
        var profile: [Kind]?
        var layers: [Layer]?
    }

    func json(_ profile: Profile?) throws -> String {
        let report = Report(
            model: model, batch: batch, threads: threads, runs: runs, warmup: warmup,
            load_seconds: load, parse_seconds: parse, passes_seconds: passes, plan_seconds: plan, first_run_ms: first * 1000,
            latency_ms: .init(min: samples[0] * 1000, p50: percentile(50) * 1000, p90: percentile(90) * 1000, p95: percentile(95) * 1000,
                              p99: percentile(99) * 1000, max: samples[samples.count - 1] * 1000, mean: mean * 1000,
                              std: standardDeviation * 1000),
            throughput_images_per_second: throughput, peak_resident_mb: peakResidentMB, optimized: optimized,
            precision: precision.rawValue, kernels: System.kernels(precision), cpu: System.cpuModel, graft_version: GraftCommand.configuration.version,
            profile: profile?.byKind.map { Report.Kind(op: $0.kind, count: $0.count, ms_per_run: $0.seconds * 1000, gflops: $0.gflops) },
            layers: profile?.steps.map {
                Report.Layer(op: $0.kind, node: $0.node, ms_per_run: $0.seconds * 1000, gflops: $0.seconds > 0 ? $0.flops / $0.seconds / 1e9 : 0)
            })
        return try JSONOutput.string(report)
    }
}

/// What the machine is, for benchmark reports.
enum System {
    /// `/proc/cpuinfo`'s model name.
    static let cpuModel: String = {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }()

    /// The instruction set of the micro-kernels in use at `precision`.
    static func kernels(_ precision: Plan.Precision) -> String {
        switch precision {
        case .bf16: return "AVX-512 BF16"
        case .int8: return "AVX-512 VNNI"
        case .f32: return MicroKernel.active == .avx512 ? "AVX-512" : "AVX2+FMA"
        }
    }
}
