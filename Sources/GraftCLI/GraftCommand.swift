import ArgumentParser
import Foundation
import GraftCore

/// The `graft` command line: one subcommand per file, each only parsing and wiring.
public struct GraftCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "graft",
        abstract: "Convert, inspect, run and fine-tune PyTorch-exported ResNet models.",
        version: "0.1.0",
        subcommands: [Summary.self, Infer.self, Convert.self, Bench.self, Train.self, Evaluate.self, DemoData.self]
    )

    public init() {}

    /// Runs the command line and exits: 0 on success, 1 for bad input (a file that does not
    /// exist included) or a failed run, 2 for bad usage, 130 after Ctrl-C stopped a run, and
    /// 128 + the signal for SIGTERM or SIGINT otherwise (the temporary files being written are
    /// removed first). Errors are one line on stderr; a usage error adds where help is.
    public static func main(arguments: [String]? = nil) -> Never {
        SignalCleanup.install(errorPrefix: "graft: error: ")
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
    @Argument(help: "The model: ONNX (.onnx, external data beside it) or HDF5 (.h5: a PyTorch state_dict or a Keras model).")
    var model: String

    /// Imports the model with the importer its extension names.
    ///
    /// - Throws: `GraftError` naming the file, `no such file` first when there is none: a
    ///   missing file is bad input (exit 1), not bad usage.
    func load() throws -> Graph {
        try ModelArgument.checkExists(model)
        return try ModelLoader.load(model)
    }

    /// Throws `FILE: no such file` when nothing is at `path` (a dangling symlink included).
    static func checkExists(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw GraftError(.io, errno == ENOENT ? "no such file" : "cannot read: \(String(cString: strerror(errno)))", file: path)
        }
    }
}
