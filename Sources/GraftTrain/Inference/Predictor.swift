import Foundation
import GraftCore
import GraftRuntime

/// One class and its probability, for `graft infer`.
public struct ClassScore: Sendable, Equatable {
    public var index: Int
    /// The class name, when the model records names (a grafted model) or the caller gave them.
    public var name: String?
    public var probability: Double
}

/// Runs a classifier on image batches and turns its output into class probabilities: the
/// exponential of a grafted model's log-probabilities, a `Softmax` output as is, and the softmax
/// of anything else (a trunk's logits).
public final class Predictor {
    /// The model's class names (`Graph.classNames`), or those given.
    public let classNames: [String]?
    /// The model it runs.
    public let model: CompiledModel
    private let output: OutputKind

    enum OutputKind { case logProbabilities, probabilities, logits }

    /// - Parameters:
    ///   - model: a classifier with one input and one `[N, classes]` output.
    ///   - classNames: names to use when the model records none; by default ImageNet's for a
    ///     1000-class model.
    /// - Throws: `GraftError` when the model has not one input and one output.
    public init(model: CompiledModel, classNames: [String]? = nil) throws {
        let graph = model.graph
        guard graph.inputs.count == 1, graph.outputs.count == 1 else {
            throw GraftError(.invalidArgument, "a classifier needs one input and one output; this model has \(graph.inputs.count) and \(graph.outputs.count)", file: model.file)
        }
        let last = graph.nodes.first { $0.outputs.contains(graph.outputs[0].name) }?.op
        switch last {
        case .logSoftmax?: output = .logProbabilities
        case .softmax?: output = .probabilities
        default: output = .logits
        }
        let classes = graph.outputs[0].shape.dims.last?.value
        self.classNames = model.imported.classNames ?? classNames ?? (classes == 1000 ? ImageNetClasses.names : nil)
        self.model = model
    }

    /// The class probabilities `[n, classes]` of images `[n, 3, H, W]`.
    ///
    /// - Throws: `GraftError` when the images do not fit the model.
    public func probabilities(_ images: Tensor) throws -> Matrix {
        probabilities(try outputs(images))
    }

    /// The class probabilities of the model's raw outputs (`outputs`).
    public func probabilities(_ outputs: Matrix) -> Matrix {
        var m = outputs
        switch output {
        case .probabilities: break
        case .logProbabilities: m.values = m.values.map { Foundation.exp($0) }
        case .logits: m.values = LogSoftmaxOp.forward(m).values.map { Foundation.exp($0) }
        }
        return m
    }

    /// The model's output `[n, classes]` for images `[n, ...]`. A model exported with a fixed
    /// batch runs them in batches of its size, the last one padded with zeros.
    public func outputs(_ images: Tensor) throws -> Matrix {
        let n = images.shape.first ?? 1
        guard let fixed = model.inputs.first?.shape.dims.first?.value, fixed != n, fixed > 0, images.rank >= 1 else {
            let y = try model.run(images)
            return try Matrix(y.reshaped([n, y.elementCount / max(n, 1)]))
        }
        let row = images.elementCount / max(n, 1)
        let values = images.floats
        var out: [Float] = []
        var columns = 0
        for start in stride(from: 0, to: n, by: fixed) {
            let count = min(fixed, n - start)
            var chunk = Array(values[(start * row)..<((start + count) * row)])
            chunk += [Float](repeating: 0, count: (fixed - count) * row)
            let y = try model.run(Tensor(shape: [fixed] + images.shape.dropFirst(), floats: chunk))
            columns = y.elementCount / fixed
            out += y.floats.prefix(count * columns)
        }
        return Matrix(rows: n, columns: columns, values: out)
    }

    /// The `k` most probable classes of each row of `probabilities`, most probable first.
    public func top(_ k: Int, of probabilities: Matrix) -> [[ClassScore]] {
        (0..<probabilities.rows).map { r in
            let row = (0..<probabilities.columns).map { probabilities[r, $0] }
            return topIndices(of: row, k: k).map { i in
                ClassScore(index: i, name: classNames.flatMap { i < $0.count ? $0[i] : nil }, probability: Double(row[i]))
            }
        }
    }
}
