import GraftCore
import Foundation

extension ModelSummary {
    /// The summary as JSON (`schemas/summary.schema.json`): the model, its inputs, every row of
    /// the table at any depth, and the totals; keys sorted, so equal summaries print equal text.
    public func renderJSON() -> String {
        let document = SummaryDocument(
            model: .init(name: graphName, className: tree.modules[ModuleTree.root].className),
            inputs: inputs.map { .init(name: $0.name, dtype: $0.dtype.description, shape: $0.shape.dims.map(JSONDim.init)) },
            layers: rows.map { row in
                let module = tree.modules[row.module]
                return .init(path: module.pathString, name: module.name, type: module.className, depth: row.depth,
                             depthIndex: row.depthIndex, outputShape: row.outputShape.map { $0.dims.map(JSONDim.init) },
                             params: row.parameters, multAdds: row.multAdds, trainable: row.parameters > 0 ? row.trainability.text.lowercased() : nil,
                             recursive: row.isRecursive)
            },
            totals: .init(params: totals.parameters, trainableParams: totals.trainableParameters,
                          nonTrainableParams: totals.parameters - totals.trainableParameters, multAdds: totals.multAdds,
                          inputBytes: totals.inputBytes, forwardBackwardBytes: totals.forwardBackwardBytes,
                          paramsBytes: totals.parameterBytes, totalBytes: totals.totalBytes))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Encoding these plain values cannot fail.
        return String(decoding: try! encoder.encode(document), as: UTF8.self)
    }
}

/// The JSON document `renderJSON()` writes.
private struct SummaryDocument: Encodable {
    struct Model: Encodable {
        var name: String
        var className: String
        enum CodingKeys: String, CodingKey { case name, className = "class" }
    }

    struct Input: Encodable {
        var name: String
        var dtype: String
        var shape: [JSONDim]
    }

    struct Layer: Encodable {
        var path: String
        var name: String
        var type: String
        var depth: Int
        var depthIndex: Int
        var outputShape: [JSONDim]?
        var params: Int
        var multAdds: Int
        /// Null for a module without parameters (torchinfo's `--`).
        /// `true`, `false` or `partial`, as torchinfo's column.
        var trainable: String?
        var recursive: Bool

        enum CodingKeys: String, CodingKey {
            case path, name, type, depth, depthIndex = "depth_index", outputShape = "output_shape", params
            case multAdds = "mult_adds", trainable, recursive
        }

        // Absent values are written as null rather than left out, so every layer has every key.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(path, forKey: .path)
            try c.encode(name, forKey: .name)
            try c.encode(type, forKey: .type)
            try c.encode(depth, forKey: .depth)
            try c.encode(depthIndex, forKey: .depthIndex)
            try c.encode(outputShape, forKey: .outputShape)
            try c.encode(params, forKey: .params)
            try c.encode(multAdds, forKey: .multAdds)
            try c.encode(trainable, forKey: .trainable)
            try c.encode(recursive, forKey: .recursive)
        }
    }

    struct Totals: Encodable {
        var params: Int
        var trainableParams: Int
        var nonTrainableParams: Int
        var multAdds: Int
        var inputBytes: Int
        var forwardBackwardBytes: Int
        var paramsBytes: Int
        var totalBytes: Int

        enum CodingKeys: String, CodingKey {
            case params, trainableParams = "trainable_params", nonTrainableParams = "non_trainable_params"
            case multAdds = "mult_adds", inputBytes = "input_bytes", forwardBackwardBytes = "forward_backward_bytes"
            case paramsBytes = "params_bytes", totalBytes = "total_bytes"
        }
    }

    var model: Model
    var inputs: [Input]
    var layers: [Layer]
    var totals: Totals
}

/// A dimension as JSON: its size, or its symbol as a string.
private struct JSONDim: Encodable {
    var dim: Dim
    init(_ dim: Dim) { self.dim = dim }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch dim {
        case .value(let v): try c.encode(v)
        case .symbol(let s): try c.encode(s)
        }
    }
}
