import ArgumentParser
import Graft
import GraftCore
import GraftSummary

extension GraftCommand {
    struct Summary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a model's architecture: the PyTorch module tree, a torchinfo-style table, or JSON."
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case torch, table, json
        }

        @OptionGroup var model: ModelArgument

        @Option(help: "torch (as print(model)), table (as torchinfo) or json.")
        var format: Format = .torch

        @Option(name: .customLong("input-shape"), parsing: .unconditional, help: "The input shape N,C,H,W (default: the model's, with batch 1).")
        var inputShape: String?

        @Option(help: "The deepest level of modules the table shows (torchinfo's depth).")
        var depth = 3

        @Option(help: "The table's columns, in order: output_size, num_params, mult_adds, trainable (torchinfo's col_names; default output_size,num_params).")
        var columns = "output_size,num_params"

        @Flag(help: "Show the graph after the passes (batch norm folded) instead of as imported.")
        var optimize = false

        func validate() throws {
            if let inputShape { _ = try parseShape(inputShape) }
            guard (0...100).contains(depth) else { throw ValidationError("--depth must be between 0 and 100") }
            _ = try tableColumns()
        }

        func run() throws {
            var graph = try model.load()
            if optimize { graph = try optimized(graph, file: model.model).graph }
            let (folded, note) = try graph.foldedForSummary()
            graph = folded
            if let note { FileHandle.standardError.write(Data("graft: note: \(model.model): \(note)\n".utf8)) }
            let shape = try inputShape.map { Shape(try parseShape($0)) }
            let summary: ModelSummary
            do {
                summary = try ModelSummary(graph: graph, inputShape: shape)
            } catch let error as GraftError {
                throw error.inFile(model.model)
            }
            switch format {
            case .torch: print(summary.renderTorch())
            case .table: print(summary.renderTable(depth: depth, columns: try tableColumns()))
            case .json: print(summary.renderJSON())
            }
        }
    }
}

extension GraftCommand.Summary {
    func tableColumns() throws -> [SummaryColumn] {
        try columns.split(separator: ",").map { name in
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let column = SummaryColumn(rawValue: trimmed) else {
                throw ValidationError("--columns: '\(trimmed)' is not one of \(SummaryColumn.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return column
        }
    }
}

/// `1,3,224,224` as sizes.
func parseShape(_ text: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    let sizes = parts.compactMap { Int($0) }
    guard sizes.count == parts.count, !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else {
        throw ValidationError("'\(text)' is not a shape like 1,3,224,224 (positive sizes separated by commas)")
    }
    return sizes
}

import Foundation
