import GraftCore
import GraftONNX

/// Picks the importer for a model file.
enum ModelLoader {
    static func load(_ path: String) throws -> Graph {
        let lower = path.lowercased()
        if lower.hasSuffix(".onnx") || !lower.contains(".") {
            return try ONNXImporter.importModel(at: path)
        }
        // Anything else may still be ONNX under another name; the importer says clearly if not.
        return try ONNXImporter.importModel(at: path)
    }
}
