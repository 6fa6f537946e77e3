import ArgumentParser
import Foundation
import GraftCore
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

        @Option(help: "The image folder, laid out as for `graft train`.")
        var data: String

        @Option(help: "Which split of the folder to evaluate (the same deterministic split as training).")
        var split: Split = .test

        @Option(help: "text, json, markdown or html.")
        var format: String = "text"

        @Option(parsing: .unconditional, help: "The seed the folder was split with in training.")
        var seed: UInt64 = 0

        func validate() throws {
            guard ReportFormat(rawValue: format) != nil else {
                throw ValidationError("--format must be one of \(ReportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            let graph = try model.load()
            let splits = try ImageDataset.load(data, seed: seed)
            let chosen: ImageDataset? = switch split {
            case .test: splits.test
            case .validation: splits.validation
            case .train: splits.train
            }
            guard let dataset = chosen, dataset.count > 0 else {
                throw GraftError(.invalidArgument, "the folder has no \(split.rawValue) images", file: data)
            }
            let evaluator: Evaluator
            do {
                evaluator = try Evaluator(model: graph)
            } catch let error as GraftError {
                throw error.inFile(model.model)
            }
            let stop = StopFlag()
            let interrupt = Interrupt(stop)
            defer { interrupt.cancel() }
            let progress = ProgressLine()
            guard let report = try evaluator.evaluate(dataset, transform: .matching(graph), stop: stop, events: progress.handle) else {
                throw GraftError(.io, "interrupted")
            }
            progress.finish()
            print(report.render(ReportFormat(rawValue: format)!))
        }
    }
}
