@_exported import struct GraftCore.Tensor
@_exported import struct GraftCore.GraftError
@_exported import struct GraftCore.ValueInfo
@_exported import struct GraftCore.Shape
@_exported import enum GraftCore.DType
import Foundation
import GraftCore
import GraftSummary
import GraftRuntime
import GraftTrain
import GraftVision

/// A model read from a file and made ready to run: imported (ONNX, a PyTorch `.pth` checkpoint,
/// safetensors or HDF5), optimized by the graph passes, and planned by the runtime.
///
/// ```swift
/// import Graft
/// let model = try Model(contentsOf: URL(fileURLWithPath: "resnet50.pth"))
/// print(try model.summary(format: .torch))
/// let top = try model.classify(imageAt: URL(fileURLWithPath: "cat.jpg"), topK: 5)
/// let outputs = try model.run(["input": tensor])
/// ```
///
/// One `Model` runs one input at a time; use one per thread to serve requests concurrently.
public final class Model {
    /// How a model is read and prepared.
    public struct Options: Sendable {
        /// Run the graph passes (batch-norm folding, constant folding) before planning.
        public var optimize = true
        /// For a PyTorch checkpoint, the key that holds the state_dict when none of the usual
        /// ones (`state_dict`, `model_state_dict`, `model`, `net`) does.
        public var checkpointKey: String?
        /// The precision of the convolutions and dense products: `.f32`, or `.bf16` (bfloat16
        /// products with f32 sums, on processors with AVX512_BF16).
        public var precision: Plan.Precision

        /// - Parameters:
        ///   - optimize: run the graph passes (default); false runs the graph as imported.
        ///   - checkpointKey: the key of a checkpoint's state_dict, when the usual ones miss it.
        ///   - precision: the precision of the convolutions (f32 by default).
        public init(optimize: Bool = true, checkpointKey: String? = nil, precision: Plan.Precision = .f32) {
            self.optimize = optimize
            self.checkpointKey = checkpointKey
            self.precision = precision
        }
    }

    /// The ways `summary(format:)` prints a model.
    public enum SummaryFormat: String, CaseIterable, Sendable {
        /// As PyTorch's `print(model)` prints the module tree.
        case torch
        /// As torchinfo's `summary(model, input_size)` table.
        case table
        /// As JSON (`schemas/summary.schema.json`).
        case json
    }

    /// One class of a classification and its probability.
    public struct Prediction: Sendable, Equatable {
        /// The class name (the grafted model's, or ImageNet's for a 1000-class model), or
        /// `class N` when the model records none.
        public var label: String
        /// The position of the class in the model's output.
        public var index: Int
        /// The probability, in [0, 1].
        public var score: Float
    }

    /// The runtime's form of the model: its graph as imported and as it runs.
    public let compiled: CompiledModel
    /// The file the model was read from.
    public let url: URL
    /// What the file held beside the model and was left out (a checkpoint's optimizer state).
    public let notes: [String]
    private lazy var predictor = Result(catching: { try Predictor(model: compiled) })

    /// Reads, optimizes and plans the model at `url`.
    ///
    /// - Throws: `GraftError` naming the file and what is wrong with it.
    public init(contentsOf url: URL, options: Options = Options()) throws {
        let imported = try ModelFile.read(url.path, key: options.checkpointKey)
        compiled = try CompiledModel(imported.graph, optimize: options.optimize, precision: options.precision, file: url.path)
        self.url = url
        notes = imported.notes
    }

    /// The model's inputs: names, element types and shapes (`batch` for a dynamic batch).
    public var inputs: [ValueInfo] { compiled.inputs }
    /// The model's outputs.
    public var outputs: [ValueInfo] { compiled.outputs }

    /// The architecture as PyTorch, torchinfo or JSON print it, for the model as imported.
    ///
    /// - Throws: `GraftError` when the model's shapes cannot be worked out.
    public func summary(format: SummaryFormat = .torch) throws -> String {
        let summary: ModelSummary
        do {
            summary = try ModelSummary(graph: try compiled.imported.foldedForSummary().graph)
        } catch let error as GraftError {
            throw error.inFile(url.path)
        }
        switch format {
        case .torch: return summary.renderTorch()
        case .table: return summary.renderTable()
        case .json: return summary.renderJSON()
        }
    }

    /// Runs the model on named inputs and returns every output by name.
    ///
    /// - Throws: `GraftError` naming an input that is missing or does not fit (its element type
    ///   or shape), or the node that failed.
    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try compiled.run(inputs)
    }

    /// The `topK` most probable classes of the image at `url` (JPEG or PNG), most probable
    /// first, after torchvision's evaluation transform scaled to the model's input.
    ///
    /// - Throws: `GraftError` when the image cannot be read, or the model is not a classifier
    ///   (one input, one `[batch, classes]` output).
    public func classify(imageAt url: URL, topK: Int = 5) throws -> [Prediction] {
        guard topK > 0 else { throw GraftError(.invalidArgument, "topK must be at least 1; got \(topK)") }
        let predictor = try self.predictor.get()
        let (classified, skipped) = try predictor.classify(files: [url.path], topK: topK)
        if let failure = skipped.first { throw failure.error }
        return classified[0].scores.map {
            Prediction(label: $0.name ?? "class \($0.index)", index: $0.index, score: Float($0.probability))
        }
    }
}

/// The number format a model's convolutions compute in: `.f32`, or `.bf16` (bfloat16 products
/// with f32 sums, on processors with AVX512_BF16).
public typealias Precision = Plan.Precision
