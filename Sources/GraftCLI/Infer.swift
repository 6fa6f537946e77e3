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

        @Argument(help: "Images or folders of images.", completion: .file())
        var images: [String] = []

        @Option(help: "An input tensor instead of images: a float32 C-order .npy file shaped as the model's input.", completion: .file(extensions: ["npy"]))
        var input: String?

        @Flag(help: "Print the predictions (or, with --input, the top scores of each row) as JSON.")
        var json = false

        @Option(help: "Write the first output here as .npy instead of printing the top scores.", completion: .file(extensions: ["npy"]))
        var output: String?

        @Option(name: .customLong("top-k"), parsing: .unconditional, help: "How many of the best scores to print per row.")
        var topK: Int = 5

        @Flag(name: .customLong("no-optimize"), help: "Run the graph as imported, without the graph passes.")
        var noOptimize = false

        @Option(help: precisionHelp)
        var precision: PrecisionOption = .f32

        func validate() throws {
            try Limits.check("--top-k", topK, 1...Limits.topK)
            guard (input == nil) != images.isEmpty else {
                throw ValidationError("give either images or --input x.npy")
            }
            if output != nil && input == nil { throw ValidationError("--output goes with --input") }
        }

        func run() throws {
            let compiled = try model.compile(optimize: !noOptimize, precision: precision)
            guard let input else {
                return try ImagePrediction(model: compiled, images: images, topK: topK, json: json).run()
            }
            let graph = compiled.graph
            guard graph.inputs.count == 1, let first = graph.inputs.first, let out = graph.outputs.first else {
                throw GraftError(.invalidArgument, "infer needs a model with one input and at least one output; this one has \(graph.inputs.count) inputs", file: model.model)
            }
            let x = try NPY.read(input)
            let result: [String: Tensor]
            do {
                result = try compiled.run([first.name: x])
            } catch let error as GraftError where error.file == nil {
                throw error.inFile(input)
            }
            let y = result[out.name]!
            if let output {
                try NPY.write(y, to: output)
                return
            }
            print(json ? try TopK.json(y, name: out.name, k: topK) : TopK.render(y, name: out.name, k: topK))
        }
    }
}

/// The best `k` scores of each row of a `[N, classes]` output: the model's own values (logits,
/// or whatever the output holds), not probabilities — the image route prints those.
enum TopK {
    static func render(_ y: Tensor, name: String, k: Int) -> String {
        var lines = ["output '\(name)' \(y.shape), raw scores", "row  rank  index  score"]
        for (r, best) in y.topK(k).enumerated() {
            for (rank, entry) in best.enumerated() {
                lines.append(String(format: "%-4d %-5d %-6d %.6f", r, rank + 1, entry.index, entry.value))
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension TopK {
    struct Report: Encodable {
        struct Entry: Encodable {
            var index: Int
            var score: Float
        }
        var output: String
        var shape: [Int]
        /// What the scores are: the model's raw output values.
        var scores = "raw"
        var rows: [[Entry]]
    }

    static func json(_ y: Tensor, name: String, k: Int) throws -> String {
        try JSONOutput.string(Report(output: name, shape: y.shape, rows: y.topK(k).map { $0.map { Report.Entry(index: $0.index, score: $0.value) } }))
    }
}
