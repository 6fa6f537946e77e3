import Foundation
import GraftCore
import GraftTrain
import GraftVision

/// `graft infer MODEL IMAGE...`: images through the evaluation transform, in batches, each with
/// its top classes.
struct ImagePrediction {
    let model: String
    let images: [String]
    let topK: Int
    let json: Bool

    /// The image files named, folders expanded (sorted, JPEG and PNG by extension).
    func files() throws -> [String] {
        var out: [String] = []
        for path in images {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw GraftError(.io, "no such file or folder", file: path)
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                out += names.filter { ImageDataset.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
                    .map { (path as NSString).appendingPathComponent($0) }
            } else {
                out.append(path)
            }
        }
        guard !out.isEmpty else { throw GraftError(.badInput, "no images to classify", file: images.first) }
        return out
    }

    func run() throws {
        try ModelArgument.checkExists(model)
        let graph = try ModelLoader.load(model)
        let classes = graph.outputs.first.flatMap { $0.shape.dims.last?.value }
        let predictor: Predictor
        do {
            predictor = try Predictor(model: graph, classNames: graph.classNames ?? (classes == 1000 ? ImageNetClasses.names : nil))
        } catch let error as GraftError {
            throw error.inFile(model)
        }
        let paths = try files()
        let transform = ImageTransform.matching(graph)
        var results: [(String, [ClassScore])] = []
        var skipped: [SkippedImage] = []
        for start in stride(from: 0, to: paths.count, by: 32) {
            let samples = paths[start..<min(start + 32, paths.count)].map { ImageSample(path: $0, label: 0) }
            let batch = ImageBatch.load(samples, transform: transform)
            skipped += batch.skipped
            guard !batch.samples.isEmpty else { continue }
            let top = predictor.top(topK, of: try predictor.probabilities(batch.images))
            results += zip(batch.samples.map(\.path), top).map { ($0, $1) }
        }
        for s in skipped { FileHandle.standardError.write(Data("graft: skipped \(s.error.description)\n".utf8)) }
        if json {
            let objects = results.map { path, scores -> [String: Any] in
                ["file": path, "top": scores.map { s -> [String: Any] in
                    var o: [String: Any] = ["index": s.index, "probability": s.probability]
                    if let name = s.name { o["class"] = name }
                    return o
                }]
            }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (path, scores) in results {
                let text = scores.map { s in "\(s.name ?? "class \(s.index)") \(String(format: "%.4f", s.probability))" }
                print("\(path): " + text.joined(separator: ", "))
            }
        }
        if results.isEmpty { throw GraftError(.badInput, "none of the \(paths.count) images could be read", file: images.first) }
    }
}

extension ImageTransform {
    /// torchvision's evaluation transform scaled to the model's input: a model taking 224×224
    /// gets Resize(256) + CenterCrop(224); one taking 64×64 gets Resize(73) + CenterCrop(64).
    static func matching(_ graph: Graph) -> ImageTransform {
        guard let dims = graph.inputs.first?.shape.dims, dims.count == 4, let h = dims[2].value, dims[3].value == h, h != 224 else {
            return ImageTransform()
        }
        return ImageTransform(resize: Int((Double(h) * 256 / 224).rounded()), crop: h)
    }
}
