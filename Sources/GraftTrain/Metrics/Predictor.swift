import Foundation
import GraftCore
import GraftPasses
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
    private let interpreter: Interpreter
    private let inputName: String
    private let outputName: String
    private let output: OutputKind

    enum OutputKind { case logProbabilities, probabilities, logits }

    /// - Parameters:
    ///   - model: a classifier with one input and one `[N, classes]` output.
    ///   - classNames: names to use when the model records none (ImageNet's for a 1000-class trunk).
    /// - Throws: `GraftError` when the model has not one input and one output, or the passes or
    ///   runtime refuse it.
    public init(model: Graph, classNames: [String]? = nil) throws {
        guard model.inputs.count == 1, model.outputs.count == 1 else {
            throw GraftError(.invalidArgument, "a classifier needs one input and one output; this model has \(model.inputs.count) and \(model.outputs.count)")
        }
        let last = model.nodes.first { $0.outputs.contains(model.outputs[0].name) }?.op
        switch last {
        case .logSoftmax?: output = .logProbabilities
        case .softmax?: output = .probabilities
        default: output = .logits
        }
        self.classNames = model.classNames ?? classNames
        inputName = model.inputs[0].name
        outputName = model.outputs[0].name
        interpreter = try Interpreter(graph: try PassManager().run(model).0)
    }

    /// The class probabilities `[n, classes]` of images `[n, 3, H, W]`.
    ///
    /// - Throws: `GraftError` when the images do not fit the model.
    public func probabilities(_ images: Tensor) throws -> Matrix {
        guard let y = try interpreter.run([inputName: images])[outputName] else {
            throw GraftError(.internal, "the model produced no output")
        }
        let n = images.shape.first ?? 1
        var m = try Matrix(y.reshaped([n, y.elementCount / max(n, 1)]))
        switch output {
        case .probabilities: break
        case .logProbabilities: m.values = m.values.map { Foundation.exp($0) }
        case .logits: m.values = LogSoftmaxOp.forward(m).values.map { Foundation.exp($0) }
        }
        return m
    }

    /// The `k` most probable classes of each row of `probabilities`, most probable first.
    public func top(_ k: Int, of probabilities: Matrix) -> [[ClassScore]] {
        (0..<probabilities.rows).map { r in
            let row = (0..<probabilities.columns).map { probabilities[r, $0] }
            let best = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(k)
            return best.map { i in
                ClassScore(index: i, name: classNames.flatMap { i < $0.count ? $0[i] : nil }, probability: Double(row[i]))
            }
        }
    }
}
