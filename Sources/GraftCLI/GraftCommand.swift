import ArgumentParser
import Foundation
import Graft
import GraftCore
import GraftPasses
import GraftRuntime
import GraftTrain

/// The `graft` command line: one subcommand per file, each only parsing and wiring.
public struct GraftCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Convert, inspect, run and fine-tune PyTorch-exported ResNet models.",
        version: "0.1.0",
        subcommands: [Summary.self, Infer.self, Convert.self, Bench.self, Train.self, Evaluate.self, Quantize.self, DemoData.self]
    )

    public init() {}

    /// Runs the command line and exits: 0 on success, 1 for bad input (a file that does not
    /// exist included) or a failed run, 2 for bad usage, 130 after Ctrl-C stopped a run, and
    /// 128 + the signal for SIGTERM or SIGINT otherwise (the temporary files being written are
    /// removed first). Errors are one line on stderr; a usage error adds where help is.
    public static func main(arguments: [String]? = nil) -> Never {
        SignalCleanup.install(errorPrefix: "graft: error: ")
        let given = arguments ?? Array(CommandLine.arguments.dropFirst())
        if let suggestion = suggestion(for: given) {
            FileHandle.standardError.write(Data("graft: error: \(suggestion)\nSee 'graft --help' for more information.\n".utf8))
            Foundation.exit(2)
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Foundation.exit(0)
        } catch let error as GraftError {
            FileHandle.standardError.write(Data("graft: error: \(error.description)\n".utf8))
            Foundation.exit(Interrupt.wasReceived ? 130 : 1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("\(usageMessage(for: error))\n".utf8))
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }

    /// For a first argument that is no subcommand but close to one (`sumary`), what to say.
    static func suggestion(for arguments: [String]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        guard !names.contains(first) else { return nil }
        let nearest = names.map { ($0, editDistance(first, $0)) }.min { $0.1 < $1.1 }
        guard let (name, distance) = nearest, distance <= max(1, name.count / 3) else { return nil }
        return "unknown command '\(first)'; did you mean '\(name)'?"
    }

    /// The fewest insertions, deletions, substitutions and swaps of neighbours from a to b
    /// (optimal string alignment: `tarin` is one swap from `train`).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }

    /// `graft: error: <the first line of the message>` and the line that says where help is.
    static func usageMessage(for error: Error) -> String {
        let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "bad usage"
        let hint = fullMessage(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .last { $0.hasPrefix("See '") } ?? "See 'graft --help' for more information."
        return "graft: error: \(message)\n\(hint)"
    }
}

/// The model argument shared by the subcommands that read one.
struct ModelArgument: ParsableArguments {
    @Argument(help: "The model: ONNX (.onnx, external data beside it), a PyTorch checkpoint (.pth, .pt: torch.save's zip or legacy format), safetensors (.safetensors) or HDF5 (.h5: a PyTorch state_dict or a Keras model).",
              completion: .file(extensions: ["onnx", "pth", "pt", "ckpt", "safetensors", "h5", "hdf5"]))
    var model: String

    @Option(help: "For a PyTorch checkpoint: the key that holds the state_dict (default: the file itself, or state_dict, model_state_dict, model or net).")
    var key: String?

    /// Imports the model with the importer its format needs; what the file held beside the
    /// model (a checkpoint's optimizer state) is mentioned on stderr.
    ///
    /// - Throws: `GraftError` naming the file, `no such file` first when there is none: a
    ///   missing file is bad input (exit 1), not bad usage.
    func load() throws -> Graph {
        try ModelArgument.checkExists(model)
        let imported = try ModelFile.read(model, key: key)
        for note in imported.notes { FileHandle.standardError.write(Data("graft: note: \(model): \(note)\n".utf8)) }
        return imported.graph
    }

    /// Imports the model, runs the graph passes unless `optimize` is false, and plans it at
    /// `precision` (`auto`: the fastest the processor and the model allow).
    func compile(optimize: Bool = true, precision: PrecisionOption = .f32) throws -> CompiledModel {
        let graph = try load()
        return try CompiledModel(graph, optimize: optimize, precision: precision.resolved(for: graph), file: model)
    }

    /// Throws `FILE: no such file` when nothing is at `path` (a dangling symlink included).
    static func checkExists(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw GraftError(.io, errno == ENOENT ? "no such file" : "cannot read: \(String(cString: strerror(errno)))", file: path)
        }
    }
}

/// `graph` after the graph passes, with the model's file named in errors.
func optimized(_ graph: Graph, file: String) throws -> (graph: Graph, report: PassReport) {
    do {
        return try PassManager().run(graph)
    } catch let error as GraftError {
        throw error.inFile(file)
    }
}

/// `--precision`: one of the plan's precisions, or the fastest the processor and the model allow.
enum PrecisionOption: String, CaseIterable, ExpressibleByArgument {
    case f32, bf16, int8, auto

    /// The precision to plan `graph` at.
    func resolved(for graph: Graph) -> Plan.Precision {
        Plan.Precision(rawValue: rawValue) ?? .fastest(for: graph)
    }
}

/// The help of `--precision`, the same for every command that runs a model.
let precisionHelp = ArgumentHelp("The precision of the convolutions: f32; bf16 (bfloat16 products with f32 sums; needs AVX512_BF16); int8 (8-bit products of a model made by `graft quantize` or another QDQ quantizer; needs AVX512_VNNI); or auto (the fastest this processor runs the model at: int8 for a quantized model with AVX512_VNNI, else bf16 with AVX512_BF16, else f32).",
                                 valueName: "f32|bf16|int8|auto")
