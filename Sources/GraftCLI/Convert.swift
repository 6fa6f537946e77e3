import ArgumentParser
import Foundation
import GraftCore
import GraftONNX

extension GraftCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Optimize a model and write it as standard ONNX, or as an HDF5 state_dict (.h5).",
            discussion: "The output is written to a temporary file and renamed, so a failed run never leaves a partial file."
        )

        @OptionGroup var model: ModelArgument

        @Argument(help: "The file to write: .onnx, or .h5 for a PyTorch state_dict layout Graft also reads back.")
        var output: String

        @Flag(name: .customLong("no-optimize"), help: "Write the graph as imported, without the graph passes.")
        var noOptimize = false

        @Flag(name: .customLong("external-data"), help: "Write the weights to one file beside the model (<output>.data, or <output>.<random>.data when the model replaced uses that name); automatic above 1 GiB.")
        var externalData = false

        @Option(parsing: .unconditional, help: "The ONNX opset to write (default: the input's).")
        var opset: Int?

        @Flag(help: "Print what each pass did and the parameter count.")
        var report = false

        func validate() throws {
            if let opset, !ONNXExporter.opsets.contains(opset) {
                throw ValidationError("--opset must be between \(ONNXExporter.opsets.lowerBound) and \(ONNXExporter.opsets.upperBound)")
            }
            guard output.lowercased().hasSuffix(".onnx") || ModelLoader.isHDF5(output) else {
                throw ValidationError("\(output): the output must be an .onnx or .h5 file")
            }
        }

        func run() throws {
            var graph = try model.load()
            if !noOptimize {
                let (optimized, passReport) = try ModelLoader.optimize(graph, file: model.model)
                graph = optimized
                if report { print(passReport) }
            } else if report {
                print("passes: none (--no-optimize)\nnodes: \(graph.nodes.count)\nparameters: \(graph.parameterCount)")
            }
            try ModelLoader.write(graph, to: output, opset: opset, externalData: externalData)
        }
    }
}
