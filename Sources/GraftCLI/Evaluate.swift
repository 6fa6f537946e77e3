import ArgumentParser
import Foundation
import GraftCore
import GraftRuntime
import GraftTrain
import GraftVision

extension GraftCommand {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Classify a folder of labelled images and print a classification report, the confusion matrix and the misclassified files."
        )

        enum Split: String, ExpressibleByArgument, CaseIterable {
            case test, validation, train
        }

        @OptionGroup var model: ModelArgument

        @Option(help: "The image folder, laid out as for `graft train`.", completion: .directory)
        var data: String

        @Option(help: "Which split of the folder to evaluate (the same deterministic split as training).")
        var split: Split = .test

        @Option(help: "text, json, markdown or html.")
        var format: String = "text"

        @Option(parsing: .unconditional, help: "The seed to split the folder with (default: the one the model was trained with, which it records).")
        var seed: UInt64?

        @Flag(name: .customLong("ignore-split"), help: "Evaluate even when the split differs from the model's training split (the images may include training images).")
        var ignoreSplit = false

        @Flag(name: .customLong("no-optimize"), help: "Run the graph as imported, without the graph passes.")
        var noOptimize = false

        @Option(help: precisionHelp)
        var precision: PrecisionOption = .f32

        func validate() throws {
            guard ReportFormat(rawValue: format) != nil else {
                throw ValidationError("--format must be one of \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let compiled = try model.compile(optimize: !noOptimize, precision: precision)
            let record = compiled.imported.splitRecord
            let splits = try ImageDataset.load(data, seed: seed ?? record?.seed ?? 0)
            if let record, !ignoreSplit {
                if let seed, seed != record.seed {
                    throw GraftError(.invalidArgument, "the model was trained on the split of seed \(record.seed), not \(seed): its \(split.rawValue) images could include training images (--ignore-split to evaluate anyway)", file: data)
                }
                guard record.matches(splits, root: data) else {
                    throw GraftError(.invalidArgument, "these are not the images the model was split and trained on: its \(split.rawValue) split could include training images (--ignore-split to evaluate anyway)", file: data)
                }
            }
            let chosen: ImageDataset? = switch split {
            case .test: splits.test
            case .validation: splits.validation
            case .train: splits.train
            }
            guard let dataset = chosen, dataset.count > 0 else {
                throw GraftError(.invalidArgument, "the folder has no \(split.rawValue) images", file: data)
            }
            let evaluator = try Evaluator(model: compiled)
            // At a reduced precision, the same model at f32 beside it (from the graph already
            // read), to compare their outputs.
            let reference = compiled.precision == .f32 ? nil
                : try Predictor(model: try CompiledModel(compiled.imported, optimize: !noOptimize, precision: .f32, file: compiled.file))
            let stop = StopFlag()
            let interrupt = Interrupt(stop)
            defer { interrupt.cancel() }
            let progress = ProgressLine()
            guard let report = try evaluator.evaluate(dataset, transform: .matching(compiled.graph), reference: reference, stop: stop,
                                                      events: progress.handle) else {
                throw GraftError(.io, "interrupted")
            }
            progress.finish()
            let date = ISO8601DateFormatter.string(from: Date(), timeZone: .current, formatOptions: [.withFullDate])
            print(report.render(ReportFormat(rawValue: format)!, title: "\(model.model) on \(data), \(split.rawValue) split, \(date)"))
        }
    }
}
