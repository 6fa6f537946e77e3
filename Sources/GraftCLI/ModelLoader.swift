import GraftCore
import GraftHDF5
import GraftONNX
import GraftPasses

/// Picks the importer and exporter for a model file by its extension, and runs the graph
/// passes with the file named in errors.
enum ModelLoader {
    static func isHDF5(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5")
    }

    /// `.h5`/`.hdf5`: a PyTorch state_dict, a Keras model or a file Graft wrote; anything else
    /// is read as ONNX, whose importer says clearly when a file is not.
    static func load(_ path: String) throws -> Graph {
        isHDF5(path) ? try HDF5Importer.importModel(at: path) : try ONNXImporter.importModel(at: path)
    }

    static func write(_ graph: Graph, to path: String, opset: Int?, externalData: Bool) throws {
        if isHDF5(path) {
            try HDF5Exporter.export(graph, to: path)
        } else {
            try ONNXExporter.export(graph, to: path, opset: opset, externalData: externalData)
        }
    }

    static func optimize(_ graph: Graph, file: String) throws -> (Graph, PassReport) {
        do {
            return try PassManager().run(graph)
        } catch let error as GraftError {
            throw error.inFile(file)
        }
    }
}
