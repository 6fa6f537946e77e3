import Foundation
import GraftCore
import GraftTorch

/// Writes a `Graph` as an HDF5 state_dict file: one dataset per constant, flat at the root and
/// named by the constant (`layer1.0.conv1.weight`), so that PyTorch users load it with
///
///     model.load_state_dict({k: torch.from_numpy(v[()]) for k, v in h5py.File(p).items()})
///
/// plus Graft's `graft_format_version` and `graft_graph` (the topology as JSON) root attributes,
/// from which `HDF5Importer` reads back exactly the graph written, whatever its nodes. See
/// `schemas/hdf5-layout.md`.
public enum HDF5Exporter {
    /// Writes `graph` to `path`, through a temporary file in the same folder renamed into place:
    /// a failure leaves no file behind and an existing file at `path` as it was.
    ///
    /// - Parameters:
    ///   - recordingTopology: when false, only the state_dict datasets are written, as float32,
    ///     which is what h5py writes from a torchvision model's `state_dict()` (without
    ///     `num_batches_tracked`). Reading such a file rebuilds the torchvision ResNet its keys
    ///     name, so this is refused for a graph that would not read back the same.
    /// - Throws: `GraftError` naming the file when it cannot be written, or why the graph has no
    ///   plain state_dict form.
    public static func export(_ graph: Graph, to path: String, recordingTopology: Bool = true) throws {
        do {
            let stateDict = recordingTopology ? nil : try StateDict(graph: graph)
            try HDF5Library.withLibrary {
                try writeAtomically(to: path) { root in
                    if let stateDict {
                        for entry in stateDict.entries where entry.tensor.dtype == .float32 {
                            try root.createDataset(entry.key, entry.tensor)
                        }
                    } else {
                        try writeRecorded(graph, root)
                    }
                }
            }
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    /// Every constant as a dataset, and the topology as attributes.
    private static func writeRecorded(_ graph: Graph, _ root: HDF5Group) throws {
        let paths = GraftLayout.datasetPaths(graph)
        var escaped: HDF5Group?
        for name in graph.constantOrder {
            let path = paths[name]!
            if path.hasPrefix(GraftLayout.escapedGroup + "/") {
                if escaped == nil { escaped = try root.createGroup(GraftLayout.escapedGroup) }
                try escaped!.createDataset(String(path.dropFirst(GraftLayout.escapedGroup.count + 1)), graph.constants[name]!)
            } else {
                try root.createDataset(path, graph.constants[name]!)
            }
        }
        try root.setAttribute(GraftLayout.versionAttribute, integer: GraphRecord.formatVersion)
        try root.setAttribute(GraftLayout.graphAttribute, string: try GraphRecord(graph) { paths[$0]! }.json())
    }

    /// Lets `body` fill an HDF5 file created at the name of a `TemporaryFile` beside `path`
    /// (made exclusively first, so HDF5 opens nothing planted there), closes it and renames it
    /// over `path`; on any failure the temporary file is removed.
    private static func writeAtomically(to path: String, _ body: (HDF5Group) throws -> Void) throws {
        try AtomicFile.write(to: path) { temporary in
            let file: HDF5File
            do {
                file = try HDF5File.create(temporary.path)
            } catch let error as GraftError {
                throw GraftError(.io, "cannot write: \(error.message)")
            }
            try body(try file.root())
            try file.close()
        }
    }
}
