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
            let objects = results.map { result -> [String: Any] in
                ["file": result.file, "top": result.scores.map { s -> [String: Any] in
                    var o: [String: Any] = ["index": s.index, "probability": s.probability]
                    if let name = s.name { o["class"] = name }
                    return o
                }]
            }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for result in results {
                let text = result.scores.map { s in "\(s.name ?? "class \(s.index)") \(String(format: "%.4f", s.probability))" }
                print("\(result.file): " + text.joined(separator: ", "))
            }
        }
        if results.isEmpty { throw GraftError(.badInput, "none of the \(files.count) images could be read", file: images.first) }
    }
}
