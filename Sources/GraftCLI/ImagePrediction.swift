import Foundation
import GraftCore
import GraftRuntime
import GraftTrain
import GraftVision

/// `graft infer MODEL IMAGE...`: prints each image's top classes, as text or JSON.
struct ImagePrediction {
    let model: CompiledModel
    let images: [String]
    let topK: Int
    let json: Bool

    func run() throws {
        let predictor = try Predictor(model: model)
        let files = try ImageFiles.expand(images)
        let (results, skipped) = try predictor.classify(files: files, topK: topK)
        for s in skipped { FileHandle.standardError.write(Data("graft: skipped \(s.error.description)\n".utf8)) }
        if json {
            struct Score: Encodable {
                var index: Int
                var `class`: String?
                var probability: Double
            }
            struct Image: Encodable {
                var file: String
                var top: [Score]
            }
            print(try JSONOutput.string(results.map { result in
                Image(file: result.file, top: result.scores.map { Score(index: $0.index, class: $0.name, probability: $0.probability) })
            }))
        } else {
            for result in results {
                let text = result.scores.map { s in "\(s.name ?? "class \(s.index)") \(String(format: "%.4f", s.probability))" }
                print("\(result.file): " + text.joined(separator: ", "))
            }
        }
        if results.isEmpty { throw GraftError(.badInput, "none of the \(files.count) images could be read", file: images.first) }
    }
}
