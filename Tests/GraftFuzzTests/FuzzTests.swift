import Foundation
import GraftCore
import GraftSummary
import GraftHDF5
import GraftONNX
import GraftPasses
import GraftRuntime
import GraftTestSupport
import XCTest

/// A bounded, seeded mutation fuzzer over what Graft reads: ONNX models (blind byte mutations
/// and protobuf-aware ones that smash a field's value), HDF5 files and `.npy` arrays. Every case
/// must end in a clean `GraftError` or a result: an import that succeeds goes on through shape
/// inference, the summary, the passes and, when small, the interpreter on a seeded input, its
/// outputs checked against the shapes inference gave and against the reference evaluator. A
/// trap or a signal kills the test run: that is the failure.
///
/// `GRAFT_FUZZ_CASES` (default 3000, shared out between the formats), `GRAFT_FUZZ_SEED`,
/// `GRAFT_FUZZ_LAST` (a path where each case's input is written before it runs, to keep the one
/// that crashed), `GRAFT_FUZZ_VERBOSE` (print every case) and `GRAFT_FUZZ_ONLY` (replay one case)
/// are for longer runs (`make fuzz`).
final class FuzzTests: XCTestCase {
    static let environment = ProcessInfo.processInfo.environment
    static let totalCases = Int(environment["GRAFT_FUZZ_CASES"] ?? "") ?? 3000
    static let seed = UInt64(environment["GRAFT_FUZZ_SEED"] ?? "") ?? 0x6772_6166_7446_757A
    static let lastInput = environment["GRAFT_FUZZ_LAST"]
    /// Prints every case and how it ended.
    static let verbose = environment["GRAFT_FUZZ_VERBOSE"] != nil
    /// `GRAFT_FUZZ_ONLY=N` runs case N of each format alone (with the seed and case count of the
    /// run that reported it), to replay a failure.
    static let only = Int(environment["GRAFT_FUZZ_ONLY"] ?? "")

    /// The cases of a format to run: all `count`, or the one `GRAFT_FUZZ_ONLY` names.
    static func indices(_ count: Int) -> [Int] {
        guard let only else { return Array(0..<count) }
        return only < count ? [only] : []
    }

    /// Multiply-adds above which a graph that imported is not run (a mutated window can ask
    /// for billions; the run would be right, only slow).
    static let workLimit = 4e7
    /// Below this, the run is also compared with the reference evaluator on the unoptimized graph.
    static let oracleLimit = 4e6

    /// The seed of one case: the run's seed hashed with the format, so that runs with nearby
    /// seeds share no cases, plus the case's index.
    static func caseSeed(format: UInt64, _ index: Int) -> UInt64 {
        var hash = SeededGenerator(seed: seed ^ (format << 56))
        return hash.next() &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03
    }

    private static var savedDataLimit = rlimit()

    /// Caps the process's memory while the cases run, so that an allocation nothing bounded
    /// fails (a trap: the failure it is) instead of exhausting a shared machine. Under
    /// AddressSanitizer, which reserves terabytes of shadow memory, `ASAN_OPTIONS` does it.
    override class func setUp() {
        super.setUp()
        getrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &savedDataLimit)
        guard dlsym(dlopen(nil, RTLD_NOW), "__asan_init") == nil else { return }
        var limit = savedDataLimit
        limit.rlim_cur = min(limit.rlim_max, 8 << 30)
        setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
    }

    override class func tearDown() {
        setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &savedDataLimit)
        super.tearDown()
    }

    func testONNXMutations() throws {
        var seeds: [(name: String, directory: String, bytes: [UInt8], tree: WireMessage?)] = []
        let files = ["tiny/ts_opset17_folded.onnx", "tiny/ts_opset11_bn.onnx", "tiny/ts_opset17_dynamic.onnx",
                     "tiny/dynamo_opset18.onnx", "hdf5/fc_head.onnx", "hdf5/basic.onnx",
                     "qdq/tiny_qdq_per_channel_u8s8.onnx", "qdq/tiny_qdq_per_tensor_s8s8.onnx", "resnet50/resnet50_bn.onnx"]
            + (try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("bad"))).filter { $0.hasSuffix(".onnx") }.sorted().map { "bad/\($0)" }
        for file in files {
            let path = Fixtures.path(file)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            seeds.append((file, (path as NSString).deletingLastPathComponent, bytes, WireMessage(bytes[...])))
        }
        XCTAssertTrue(seeds.allSatisfy { $0.tree != nil }, "every ONNX seed parses as protobuf")
        var tally = Tally(format: "onnx")
        let count = Self.totalCases * 13 / 20
        for index in Self.indices(count) {
            var mutator = Mutator(seed: Self.caseSeed(format: 1, index))
            // The eight small real models more often than the rest.
            let seed = mutator.chance(0.7) ? seeds[mutator.int(0..<8)] : mutator.pick(seeds)
            let (bytes, what) = seed.tree != nil && mutator.chance(0.6) ? mutator.structured(seed.tree!) : mutator.blind(seed.bytes)
            let label = "onnx case \(index) (\(seed.name): \(what))"
            keep(bytes, label, ".onnx")
            tally.cases += 1
            importAndExercise(&tally, label) { try bytes.withUnsafeBytes { try ONNXImporter.importModel(bytes: $0, directory: seed.directory) } }
        }
        tally.report()
    }

    /// HDF5 cases mutate what Graft itself interprets, in place: the weights' bytes and the
    /// file's runs of text (dataset names, the `graft_graph` and `model_config` JSON,
    /// `weight_names`), and cut files short. HDF5's own structures (superblock, B-trees, heaps,
    /// object headers) are left alone: libhdf5 1.10 parses them without checking every size
    /// (a damaged global heap or B-tree node crashes it inside `H5HG_read` or
    /// `H5F__accum_read`), before any check Graft could make.
    func testHDF5Mutations() throws {
        let dir = try TemporaryDirectory()
        // A file Graft wrote, whose graph is a JSON attribute, beside PyTorch and Keras files.
        let written = dir.file("graft_written.h5")
        try HDF5Exporter.export(try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_bn.onnx")), to: written)
        let paths = [HDF5FuzzSeeds.path("tiny.h5"), HDF5FuzzSeeds.path("basic_nested.h5"), HDF5FuzzSeeds.path("bottleneck_f16.h5"),
                     HDF5FuzzSeeds.path("keras_resnet50.h5"), written, HDF5FuzzSeeds.path("bad/graft_bad_record.h5"),
                     HDF5FuzzSeeds.path("bad/wrong_shape.h5"), Fixtures.path("bad/hdf5_unwritten_dataset.h5")]
        let seeds = try paths.map { path in
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            return (path, bytes, try HDF5FuzzSeeds.interpretedRanges(path, bytes))
        }
        var tally = Tally(format: "hdf5")
        let count = Self.totalCases * 3 / 20
        let file = dir.file("case.h5")
        for index in Self.indices(count) {
            var mutator = Mutator(seed: Self.caseSeed(format: 2, index))
            let (name, original, ranges) = mutator.pick(seeds)
            var bytes = original, what: String
            if mutator.chance(0.1) || ranges.isEmpty {
                let at = mutator.int(0..<original.count)
                bytes.removeSubrange(at...)
                what = "truncate at \(at)"
            } else {
                let range = mutator.pick(ranges)
                let (changed, w) = mutator.blind(Array(original[range]), sameSize: true)
                bytes.replaceSubrange(range, with: changed)
                what = "bytes \(range): \(w)"
            }
            let label = "hdf5 case \(index) (\((name as NSString).lastPathComponent): \(what))"
            keep(bytes, label, ".h5")
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            tally.cases += 1
            importAndExercise(&tally, label) { try HDF5Importer.importModel(at: file) }
        }
        tally.report()
    }

    func testNPYMutations() throws {
        let model = try ONNXImporter.importModel(at: Fixtures.tiny("ts_opset17_folded.onnx"))
        let interpreter = try Interpreter(graph: model)
        let paths = [Fixtures.tiny("input_b1.npy"), Fixtures.tiny("output_b3.npy"), HDF5FuzzSeeds.path("fc_head.output_b1.npy")]
            + (try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("bad"))).filter { $0.hasSuffix(".npy") }.sorted().map { Fixtures.path("bad/\($0)") }
        let seeds = try paths.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
        let oddHeaders = ["{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 64, 64, }", "{'descr': '<f4', 'shape': (1,), }",
                          "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "{'descr': 'shape', 'fortran_order': 'shape', 'shape': 'descr', }",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", "{}", ""]
        let sizes = [0, 1, 2, 3, 64, 65, 1 << 31, 1 << 62, Int.max]
        let types = [("<f4", 4), ("<f8", 8), ("<i8", 8), ("<i4", 4), ("|b1", 1), ("|u1", 1), ("<f2", 2)]
        var tally = Tally(format: "npy")
        let count = Self.totalCases - Self.totalCases * 13 / 20 - Self.totalCases * 3 / 20
        for index in Self.indices(count) {
            var mutator = Mutator(seed: Self.caseSeed(format: 3, index))
            let original = mutator.pick(seeds)
            let bytes: [UInt8], what: String
            switch mutator.int(0..<3) {
            case 0:
                // A header of another shape and type, with as much data as it says when that is small.
                var header = mutator.pick(oddHeaders)
                var data = [UInt8]()
                if mutator.chance(0.8) {
                    let shape = (0..<mutator.int(0..<5)).map { _ in mutator.chance(0.5) ? mutator.pick(sizes) : mutator.pick([1, 3, 64]) }
                    let (code, size) = mutator.pick(types)
                    header = "{'descr': '\(code)', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")), }"
                    let needed = shape.reduce(size) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
                    data = needed <= 1 << 20 ? [UInt8](repeating: 0x3F, count: needed) : Array(original.suffix(1000))
                }
                bytes = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8) + data
                what = "header \(header)"
            case 1:
                let (head, w) = mutator.blind(Array(original.prefix(128)))
                bytes = head + original.dropFirst(128)
                what = "head: " + w
            default:
                (bytes, what) = mutator.blind(original)
            }
            let label = "npy case \(index) (\(what))"
            keep(bytes, label, ".npy")
            tally.cases += 1
            var stage = "import"
            do {
                let x = try NPY.decode(Data(bytes))
                tally.imported += 1
                stage = "run"
                _ = try interpreter.run(["input": x])
                tally.ran += 1
            } catch let error as GraftError {
                tally.refuse(stage, label, error)
            } catch {
                tally.unexpected.append("\(label): threw \(error)")
            }
        }
        tally.report()
    }

    // MARK: - One case

    /// Counts of how the cases of one format ended.
    struct Tally {
        let format: String
        var cases = 0
        /// Clean `GraftError`s by the stage that gave them.
        var refused: [String: Int] = [:]
        var imported = 0
        /// Imported but too large to run here (by `workLimit`).
        var notRun = 0
        var ran = 0
        var checked = 0
        /// Quantized models run on the int8 kernels too.
        var int8 = 0
        var unexpected: [String] = []
        let start = Date()

        /// Counts a clean refusal; an internal error (an invariant of Graft's that did not hold)
        /// is a failure.
        mutating func refuse(_ stage: String, _ label: String, _ error: GraftError) {
            guard error.kind != .internal else {
                unexpected.append("\(label): \(stage): internal error: \(error)")
                return
            }
            refused[stage, default: 0] += 1
            if FuzzTests.verbose { print("\(label): \(stage): \(error)") }
        }

        func report(file: StaticString = #filePath, line: UInt = #line) {
            let errors = refused.values.reduce(0, +)
            let stages = refused.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("fuzz \(format) (seed \(FuzzTests.seed)): \(cases) cases in \(String(format: "%.1f", Date().timeIntervalSince(start))) s: "
                  + "\(errors) clean errors (\(stages)), \(imported) imported, \(ran) ran, \(notRun) too large to run, \(checked) checked against the reference, "
                  + "\(int8) run at int8")
            XCTAssertTrue(unexpected.isEmpty, "\(unexpected.count) cases failed uncleanly:\n" + unexpected.prefix(10).joined(separator: "\n"), file: file, line: line)
        }
    }

    /// Writes the case's input where `GRAFT_FUZZ_LAST` says, so a crash leaves it behind.
    func keep(_ bytes: [UInt8], _ label: String, _ ext: String) {
        guard let last = Self.lastInput else { return }
        try? Data(bytes).write(to: URL(fileURLWithPath: last + ext))
        try? Data((label + "\n").utf8).write(to: URL(fileURLWithPath: last + ".txt"))
    }

    /// Shape inference, the summary, the passes and, for a small graph, a run checked against
    /// the inferred shapes and the reference evaluator.
    /// Imports a case (a refusal is counted, anything but a `GraftError` is a failure) and
    /// exercises what was imported.
    func importAndExercise(_ tally: inout Tally, _ label: String, _ importModel: () throws -> Graph) {
        let graph: Graph
        do {
            graph = try importModel()
        } catch let error as GraftError {
            tally.refuse("import", label, error)
            return
        } catch {
            tally.unexpected.append("\(label): import threw \(error)")
            return
        }
        exercise(graph, &tally, label)
    }

    func exercise(_ graph: Graph, _ tally: inout Tally, _ label: String) {
        tally.imported += 1
        var stage = "shapes"
        do {
            var bound: [String: Shape] = [:]
            for input in graph.inputs {
                bound[input.name] = Shape(input.shape.dims.map { $0.value.map(Dim.value) ?? .value(1) })
            }
            let facts = try graph.inferShapes(inputShapes: bound)
            stage = "summary"
            do {
                _ = try ModelSummary(graph: graph)
            } catch let error as GraftError where error.kind != .internal {
                // A summary may need an input shape the graph does not declare; not a failure.
            }
            guard let work = estimatedWork(graph, facts), work <= Self.workLimit else {
                tally.notRun += 1
                return
            }
            stage = "passes"
            let (optimized, _) = try PassManager().run(graph)
            stage = "run"
            var random = SeededGenerator(seed: 7)
            var feeds: [String: Tensor] = [:]
            for input in graph.inputs {
                let sizes = bound[input.name]!.concrete!
                feeds[input.name] = input.dtype == .float32 ? random.tensor(sizes) : Tensor(zeros: sizes, dtype: input.dtype)
            }
            let outputs = try Interpreter(graph: optimized).run(feeds)
            tally.ran += 1
            for output in graph.outputs {
                let expected = facts[output.name]?.shape.concrete
                if let expected, outputs[output.name]?.shape != expected {
                    tally.unexpected.append("\(label): output '\(output.name)' has shape \(outputs[output.name].map { "\($0.shape)" } ?? "none"), inference said \(expected)")
                }
            }
            guard work <= Self.oracleLimit else { return }
            stage = "reference"
            let reference: [String: Tensor]
            do {
                reference = try referenceRun(graph, feeds)
            } catch let error as GraftError where error.kind != .internal {
                return   // the reference refuses what the fused runtime ran (a size it checks more strictly)
            }
            // Weights near or past float32's range (a mutated exponent) overflow to ±inf inside the
            // run, and then IEEE arithmetic decides what a zero-padded tap or a transform makes of
            // it (0·inf is NaN; the reference skips padded taps): only the finite answers compare.
            let extreme = graph.constants.values.contains { t in t.dtype == .float32 && t.floats.contains { !$0.isFinite || abs($0) > 1e30 } }
            let quantized = graph.nodes.contains { $0.op.name == "QuantizeLinear" }
            var compared = false
            for output in graph.outputs {
                guard let y = outputs[output.name], let r = reference[output.name], y.dtype == .float32, r.dtype == .float32 else { continue }
                let a = y.floats, b = r.floats
                guard a.count == b.count else {
                    tally.unexpected.append("\(label): output '\(output.name)' has \(a.count) values, the reference \(b.count)")
                    continue
                }
                // Not finite where the reference is (or the other way round) is a wrong answer;
                // both not finite at the same places leaves the finite values to compare.
                if !extreme, let i = a.indices.first(where: { a[$0].isFinite != b[$0].isFinite || (a[$0].isNaN != b[$0].isNaN) }) {
                    tally.unexpected.append("\(label): output '\(output.name)' is \(a[i]) at \(i) where the reference evaluator gives \(b[i])")
                    continue
                }
                guard a.indices.contains(where: { a[$0].isFinite && b[$0].isFinite }) else { continue }
                if let i = Self.firstDifference(a, b, quantized: quantized) {
                    tally.unexpected.append("\(label): output '\(output.name)' differs from the reference evaluator at \(i): \(a[i]) vs \(b[i])")
                    continue
                }
                compared = true
            }
            if compared { tally.checked += 1 }
            try exerciseInt8(graph, feeds: feeds, f32: outputs, &tally, label, stage: &stage)
        } catch let error as GraftError {
            tally.refuse(stage, label, error)
        } catch {
            tally.unexpected.append("\(label): \(stage) threw \(error)")
        }
    }

    /// A quantized model (one with a DequantizeLinear) also runs on the int8 kernels, where the
    /// processor has them: to a clean error, or to the f32 arithmetic's outputs within 5 % of
    /// their largest magnitude (the int8 sums are exact where f32's round; a value that lands on
    /// a half step may round the other way and move what follows by a step).
    func exerciseInt8(_ graph: Graph, feeds: [String: Tensor], f32: [String: Tensor], _ tally: inout Tally, _ label: String,
                      stage: inout String) throws {
        guard MicroKernel.supportsVNNI, graph.nodes.contains(where: { $0.op.name == "DequantizeLinear" }) else { return }
        stage = "int8"
        let outputs = try CompiledModel(graph, precision: .int8).run(feeds)
        tally.int8 += 1
        for output in graph.outputs {
            guard let y = outputs[output.name], let r = f32[output.name] else {
                tally.unexpected.append("\(label): int8 made no output '\(output.name)'")
                continue
            }
            guard y.shape == r.shape, y.dtype == r.dtype else {
                tally.unexpected.append("\(label): int8 output '\(output.name)' is \(y.dtype) \(y.shape), f32's \(r.dtype) \(r.shape)")
                continue
            }
            guard y.dtype == .float32 else { continue }
            let (a, b) = (y.floats, r.floats)
            if let i = a.indices.first(where: { a[$0].isNaN != b[$0].isNaN }) {
                tally.unexpected.append("\(label): int8 output '\(output.name)' is \(a[i]) at \(i) where f32 gives \(b[i])")
                continue
            }
            if let i = Self.firstDifference(a, b, quantized: true) {
                tally.unexpected.append("\(label): int8 output '\(output.name)' differs from f32 at \(i): \(a[i]) vs \(b[i])")
            }
        }
    }

    /// The first place, among those where both are finite, where `a` differs from `b` by more
    /// than float sums in another order explain: 1e-3 of the largest |b| (at least 1) and of the
    /// value; for a quantized model 5 % of the largest (behind a QuantizeLinear, a sum that lands
    /// on a half step rounds either way, and moves what follows by a step of its grid).
    static func firstDifference(_ a: [Float], _ b: [Float], quantized: Bool) -> Int? {
        let finite = a.indices.filter { a[$0].isFinite && b[$0].isFinite }
        let scale = max(1, finite.map { abs(b[$0]) }.max() ?? 0)
        return finite.first { abs(a[$0] - b[$0]) > (quantized ? 0.05 * scale : 1e-3 * scale + 1e-3 * abs(b[$0])) }
    }

    /// Multiply-adds (and elements touched) of a run, from the inferred shapes; nil when a
    /// shape is not known.
    func estimatedWork(_ graph: Graph, _ facts: [String: ValueFact]) -> Double? {
        func elements(_ name: String) -> Double? {
            guard let sizes = facts[name]?.shape.concrete else { return nil }
            return sizes.reduce(1.0) { $0 * Double($1) }
        }
        var work = 0.0
        for node in graph.nodes {
            var touched = 0.0
            for name in node.inputs + node.outputs where !name.isEmpty {
                guard let n = elements(name) else { return nil }
                touched += n
            }
            let out = elements(node.outputs[0]) ?? 0
            let input = node.input(0).flatMap { facts[$0]?.shape.concrete } ?? []
            switch node.op {
            case .conv:
                if let w = node.input(1).flatMap({ facts[$0]?.shape.concrete }), w.count == 4 { work += out * Double(w[1]) * Double(w[2]) * Double(w[3]) }
            case .gemm(let a):
                if input.count == 2 { work += out * Double(a.transA ? input[0] : input[1]) }
            case .matMul:
                work += out * Double(input.last ?? 1)
            case .maxPool(let w), .averagePool(let w, _):
                work += out * Double(w.kernel[0]) * Double(w.kernel[1])
            default:
                break
            }
            work += touched
        }
        return work
    }
}

enum HDF5FuzzSeeds {
    static func path(_ name: String) -> String { Fixtures.path("hdf5/\(name)") }

    /// The byte ranges of an HDF5 file that Graft interprets: where each weight's bytes lie
    /// (found by searching for the float32 data of the constants it imports to), and every run
    /// of at least 8 printable characters (names, JSON attributes).
    static func interpretedRanges(_ path: String, _ bytes: [UInt8]) throws -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        let data = Data(bytes)
        if let graph = try? HDF5Importer.importModel(at: path) {
            for name in graph.constantOrder {
                guard let t = graph.constants[name], t.byteCount >= 16 else { continue }
                let needle = t.withUnsafeBytes { Data($0) }
                if let found = data.range(of: needle) { ranges.append(found) }
            }
        }
        var start: Int?
        for (i, b) in bytes.enumerated() {
            let printable = b >= 0x20 && b < 0x7F
            if printable, start == nil { start = i }
            if !printable, let s = start {
                if i - s >= 8 { ranges.append(s..<i) }
                start = nil
            }
        }
        return ranges
    }
}
