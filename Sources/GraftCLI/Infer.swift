import ArgumentParser
import Foundation
import GraftCore
import GraftRuntime

extension GraftCommand {
    struct Infer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Classify images (or run a model on a NumPy .npy input) and print the top-k classes.",
            discussion: """
            Images (JPEG, PNG; files or folders) get torchvision's evaluation transform (resize 256, \
            center crop 224, ImageNet normalization) and are named by the classes a grafted model was \
            trained on, or ImageNet's for a 1000-class trunk. --input runs the model on a tensor instead.
            """
        )

        @OptionGroup var model: ModelArgument

        @Argument(help: "Images or folders of images.")
        var images: [String] = []

        @Option(help: "An input tensor instead of images: a float32 C-order .npy file shaped as the model's input.")
        var input: String?

        @Flag(help: "Print the image predictions as JSON.")
        var json = false

        @Option(help: "Write the first output here as .npy instead of printing the top scores.")
        var output: String?

        @Option(name: .customLong("top-k"), parsing: .unconditional, help: "How many of the best scores to print per row.")
        var topK: Int = 5

        @Flag(name: .customLong("no-optimize"), help: "Run the graph as imported, without the graph passes.")
        var noOptimize = false

        func validate() throws {
            try Limits.check("--top-k", topK, 1...Limits.topK)
            guard (input == nil) != images.isEmpty else {
                throw ValidationError("give either images or --input x.npy")
            }
            if output != nil && input == nil { throw ValidationError("--output goes with --input") }
        }

        func run() throws {
            if input == nil { return try ImagePrediction(model: model.model, images: images, topK: topK, json: json).run() }
            let input = self.input!
            var graph = try model.load()
            if !noOptimize { graph = try ModelLoader.optimize(graph, file: model.model).0 }
            guard graph.inputs.count == 1, let first = graph.inputs.first, let out = graph.outputs.first else {
                throw GraftError(.invalidArgument, "infer needs a model with one input and at least one output; this one has \(graph.inputs.count) inputs", file: model.model)
            }
            let x = try NPY.read(input)
            let interpreter = try Interpreter(graph: graph)
            let result: [String: Tensor]
            do {
                result = try interpreter.run([first.name: x])
            } catch let error as GraftError {
                throw error.inFile(error.tensor != nil ? input : model.model)
            }
            let y = result[out.name]!
            if let output {
                try NPY.write(y, to: output)
                return
            }
            print(TopK.render(y, name: out.name, k: topK))
        }
    }
}

/// The best `k` scores of each row of a `[N, classes]` output.
enum TopK {
    static func render(_ y: Tensor, name: String, k: Int) -> String {
        let rows = y.rank >= 1 ? y.shape[0] : 1
        let width = max(y.elementCount / max(rows, 1), 1)
        let values = y.floats
        var lines = ["output '\(name)' \(y.shape)", "row  rank  index  score"]
        for r in 0..<rows {
            let row = values[(r * width)..<((r + 1) * width)]
            let best = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(k)
            for (rank, i) in best.enumerated() {
                lines.append(String(format: "%-4d %-5d %-6d %.6f", r, rank + 1, i - r * width, row[i]))
            }
        }
        return lines.joined(separator: "\n")
    }
}
