import ArgumentParser
import Foundation
import Graft
import GraftCore
import GraftONNX

extension GraftCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model as standard ONNX, a PyTorch state_dict (.pth, .safetensors) or HDF5 (.h5).",
            discussion: """
            ONNX gets the graph after the graph passes (unless --no-optimize). A state_dict (.pth, \
            .safetensors, .h5) is written from the model as imported: its keys are those of \
            torchvision's model.state_dict(), for load_state_dict(strict=True), which a graph with \
            batch norm folded into its convolutions would not have. The output is written to a \
            temporary file and renamed, so a failed run never leaves a partial file.
            """
        )

        @OptionGroup var model: ModelArgument

        @Argument(help: "The file to write: .onnx; .pth or .safetensors for a PyTorch state_dict; .h5 for HDF5 (a state_dict layout Graft also reads back).",
                  completion: .file(extensions: ["onnx", "pth", "safetensors", "h5"]))
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
            guard let format = ModelFormat(pathExtension: output) else {
                throw ValidationError("\(output): the output must be an .onnx, .pth, .safetensors or .h5 file")
            }
            if format != .onnx && (opset != nil || externalData) {
                throw ValidationError("--opset and --external-data are for ONNX outputs")
            }
        }

        func run() throws {
            var graph = try model.load()
            let before = (nodes: graph.nodes.count, parameters: graph.parameterCount)
            // The passes rewrite the graph (batch norm folded into the convolutions), which a
            // state_dict cannot record: torchvision's model would not load it.
            let runPasses = !noOptimize && ModelFormat(pathExtension: output) == .onnx
            if runPasses {
                let (optimized, passReport) = try optimized(graph, file: model.model)
                graph = optimized
                if report { print(passReport) }
            } else if report {
                let why = noOptimize ? "--no-optimize" : "a state_dict is written as imported"
                print("passes: none (\(why))\nnodes: \(graph.nodes.count)\nparameters: \(graph.parameterCount)")
            }
            try ModelFile.write(graph, to: output, opset: opset, externalData: externalData)
            print("wrote \(output): \(graph.nodes.count) nodes, \(graph.parameterCount.formatted()) parameters (read \(before.nodes) nodes, \(before.parameters.formatted()) parameters)")
        }
    }
}
