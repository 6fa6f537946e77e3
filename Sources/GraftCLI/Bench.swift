import ArgumentParser
import Dispatch
import Foundation
import GraftCore
import GraftRuntime

extension GraftCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time a model's load and inference on random input: latency percentiles, throughput, memory."
        )

        @OptionGroup var model: ModelArgument

        @Option(parsing: .unconditional, help: "Images per run (at most \(Limits.batch)).")
        var batch = 1

        @Option(parsing: .unconditional, help: "Threads for the kernels (default: all cores; at most \(Limits.threads)).")
        var threads = Parallel.defaultThreads

        @Option(parsing: .unconditional, help: "Timed runs.")
        var runs = 20

        @Option(parsing: .unconditional, help: "Untimed runs first.")
        var warmup = 3

        @Flag(help: "Print the figures as JSON (schemas/bench.schema.json).")
        var json = false

        @Flag(help: "Add time and GFLOP/s per op type and the slowest layers.")
        var profile = false

        func validate() throws {
            try Limits.check("--threads", threads, 1...Limits.threads)
            try Limits.check("--batch", batch, 1...Limits.batch)
            try Limits.check("--runs", runs, 1...Limits.runs)
            try Limits.check("--warmup", warmup, 0...Limits.runs)
        }

        func run() throws {
            Parallel.threads = threads
            let t0 = now()
            let imported = try model.load()
            let t1 = now()
            let (graph, _) = try ModelLoader.optimize(imported, file: model.model)
            let t2 = now()
            let interpreter = try Interpreter(graph: graph)
            let t3 = now()
            let x = try input(for: graph)
            var samples: [Double] = []
            var record: Profile? = profile ? Profile() : nil
            for i in 0..<(warmup + runs) {
                let start = now()
                var p: Profile? = i >= warmup ? record : nil
                do {
                    _ = try interpreter.run([graph.inputs[0].name: x], profile: &p)
                } catch let error as GraftError {
                    throw error.inFile(model.model)
                }
                if i >= warmup {
                    samples.append(now() - start)
                    record = p
                }
            }
            let figures = Figures(model: model.model, batch: batch, threads: threads, runs: runs, warmup: warmup,
                                  parse: t1 - t0, passes: t2 - t1, plan: t3 - t2, samples: samples.sorted(),
                                  peakResidentMB: peakResidentMB())
            print(json ? figures.json(record) : figures.text(record))
        }

        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

        /// A seeded normal input of the model's shape with the batch dimension set.
        func input(for graph: Graph) throws -> Tensor {
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
    /// Seconds per run, sorted.
    var samples: [Double]
    var peakResidentMB: Double

    func percentile(_ p: Double) -> Double {
        samples[min(samples.count - 1, Int((p / 100 * Double(samples.count - 1)).rounded()))]
    }

    var load: Double { parse + passes + plan }
    var throughput: Double { Double(batch) / percentile(50) }

    func text(_ profile: Profile?) -> String {
        func ms(_ s: Double) -> String { String(format: "%.2f ms", s * 1000) }
        var lines = [
            "model       \(model)",
            "setting     batch \(batch), threads \(threads), \(runs) runs after \(warmup) warm-up",
            String(format: "load        %.3f s (parse %.3f s, passes %.3f s, plan %.3f s)", load, parse, passes, plan),
            "latency     min \(ms(samples[0]))  p50 \(ms(percentile(50)))  p90 \(ms(percentile(90)))  p99 \(ms(percentile(99)))",
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

    func json(_ profile: Profile?) -> String {
        var object: [String: Any] = [
            "model": model, "batch": batch, "threads": threads, "runs": runs, "warmup": warmup,
            "load_seconds": load, "parse_seconds": parse, "passes_seconds": passes, "plan_seconds": plan,
            "latency_ms": ["min": samples[0] * 1000, "p50": percentile(50) * 1000, "p90": percentile(90) * 1000, "p99": percentile(99) * 1000],
            "throughput_images_per_second": throughput,
            "peak_resident_mb": peakResidentMB,
        ]
        if let profile {
            object["profile"] = profile.byKind.map { ["op": $0.kind, "count": $0.count, "ms_per_run": $0.seconds * 1000, "gflops": $0.gflops] }
            object["layers"] = profile.steps.map {
                ["op": $0.kind, "node": $0.node, "ms_per_run": $0.seconds * 1000, "gflops": $0.seconds > 0 ? $0.flops / $0.seconds / 1e9 : 0]
            }
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
