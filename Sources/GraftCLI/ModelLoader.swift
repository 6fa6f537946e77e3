import GraftCore
import GraftONNX
import GraftPasses

/// Picks the importer for a model file, and runs the graph passes with the file named in errors.
enum ModelLoader {
    static func load(_ path: String) throws -> Graph {
        // Every model Graft reads today is ONNX, whatever its extension; the importer says clearly
        // when a file is not.
        try ONNXImporter.importModel(at: path)
    }

    static func optimize(_ graph: Graph, file: String) throws -> (Graph, PassReport) {
        do {
            return try PassManager().run(graph)
        } catch let error as GraftError {
            throw error.inFile(file)
        }
    }
}
