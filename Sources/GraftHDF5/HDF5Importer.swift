import Foundation
import GraftCore
import GraftTorch

/// Reads HDF5 model files into a `Graph`. Three layouts are recognized (see
/// `schemas/hdf5-layout.md`):
///
/// - a file Graft wrote (`graft_format_version` and `graft_graph` attributes): exactly the graph
///   it recorded;
/// - a Keras model saved with `model.save("model.h5")` (`model_config` attribute and
///   `model_weights` group): the Keras functional model, NHWC layers turned into Graft's NCHW;
/// - a PyTorch state_dict written with h5py (one dataset per key, flat or in nested groups): the
///   torchvision ResNet those keys describe, built exactly as the ONNX importer builds a
///   TorchScript export of the same model.
///
/// Every model takes its input in NCHW order (`input`, `[batch, 3, 224, 224]` for a state_dict).
public enum HDF5Importer {
    /// Imports the model at `path`.
    ///
    /// - Throws: `GraftError` naming the file, and the dataset or key at fault: for a file that
    ///   is not HDF5 or is truncated, a dataset of the wrong rank or type, missing, unexpected or
    ///   wrongly shaped state_dict keys, a layout that is none of the three, or a graph that
    ///   fails `Graph.validate()`.
    public static func importModel(at path: String) throws -> Graph {
        let graph = try readGraph(at: path)
        do {
            try graph.validate()
        } catch let error as GraftError {
            throw error.inFile(path)
        }
        return graph
    }

    /// The graph the file holds, before `Graph.validate()` (which `importModel` adds).
    static func readGraph(at path: String) throws -> Graph {
        do {
            // HDF5 opens and reads by name, and would wait forever on a FIFO.
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw GraftError(.io, errno == ENOENT ? "no such file" : "cannot read: \(String(cString: strerror(errno)))")
            }
            guard info.st_mode & S_IFMT != S_IFDIR else { throw GraftError(.io, "a folder, not a model file") }
            guard info.st_mode & S_IFMT == S_IFREG else { throw GraftError(.io, "not a regular file") }
            return try HDF5Library.withLibrary {
                let file = try HDF5File.open(path)
                let root = try file.root()
                let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
                if root.hasAttribute(GraftLayout.versionAttribute) || root.hasAttribute(GraftLayout.graphAttribute) {
                    return try GraftLayout.read(root)
                }
                if root.hasAttribute(KerasModel.configAttribute) || root.hasMember(KerasModel.weightsGroup)
                    || root.hasAttribute(KerasModel.layerNamesAttribute) {
                    return try KerasModel(root: root).graph(name: name)
                }
                return try stateDictGraph(root, name: name)
            }
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    /// The torchvision ResNet a state_dict describes, with its weights.
    static func stateDictGraph(_ root: HDF5Group, name: String) throws -> Graph {
        let stateDict = try HDF5StateDict(root: root)
        guard !stateDict.entries.isEmpty else {
            throw GraftError(.badInput, "unknown layout: the file holds no datasets (not a PyTorch state_dict, a Keras model or a Graft file)")
        }
        let model = try TorchvisionResNet.infer(from: stateDict.entries.mapValues(\.shape),
                                               datasets: stateDict.entries.mapValues(\.dataset.path))
        // Check every type before reading anything large.
        for (key, _) in model.parameters { _ = try stateDict.weight(key) }
        return try model.graph(name: name) { key, shape in try stateDict.tensor(key, shape: shape) }
    }
}
