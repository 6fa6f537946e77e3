import Foundation
import GraftCore
import GraftHDF5
import GraftONNX
import GraftTorch

/// The file formats Graft reads and writes models in.
public enum ModelFormat: String, CaseIterable, Sendable {
    /// ONNX (`.onnx`, weights inline or in an external data file beside it).
    case onnx
    /// HDF5 (`.h5`): a PyTorch state_dict, a Keras model, or a file Graft wrote.
    case hdf5
    /// What `torch.save` writes (`.pth`, `.pt`): a state_dict or a checkpoint holding one, in
    /// the zip format or the legacy one.
    case pth
    /// safetensors (`.safetensors`): a state_dict.
    case safetensors

    /// The format a file name's extension names, if it names one.
    public init?(pathExtension path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "onnx": self = .onnx
        case "h5", "hdf5": self = .hdf5
        case "pth", "pt", "ckpt", "tar": self = .pth
        case "safetensors": self = .safetensors
        default: return nil
        }
    }

    /// The format of the file at `path`: by its extension, else by its first bytes (what
    /// `torch.save` writes, a zip archive or the legacy pickles, is PyTorch's; HDF5 has its
    /// signature; safetensors starts with its header's length and a JSON object); anything else
    /// is read as ONNX, whose importer says clearly when a file is not.
    public static func of(_ path: String) -> ModelFormat {
        if let format = ModelFormat(pathExtension: path) { return format }
        if TorchCheckpoint.isCheckpoint(at: path) { return .pth }
        guard let head = try? firstBytes(of: path, count: 9), head.count >= 4 else { return .onnx }
        if head.starts(with: [0x89, 0x48, 0x44, 0x46]) { return .hdf5 }
        if head.count == 9, head[8] == UInt8(ascii: "{"), head[4..<8].allSatisfy({ $0 == 0 }) { return .safetensors }
        return .onnx
    }

    private static func firstBytes(of path: String, count: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = read(fd, &buffer, count)
        return n > 0 ? Array(buffer.prefix(n)) : []
    }
}

/// A model as a file held it: the graph, and what the file held that the graph leaves out.
public struct ImportedModel: Sendable {
    /// The model as the importer built it (validated; no passes run).
    public var graph: Graph
    /// What the importer set aside, for the user to know (a checkpoint's optimizer state).
    public var notes: [String]
}

/// Reads and writes models in every format Graft knows, choosing the importer or exporter by the
/// file; errors name the file.
public enum ModelFile {
    /// Imports the model at `path`.
    ///
    /// - Parameters:
    ///   - key: for a checkpoint that holds the state_dict under a key no usual name matches
    ///     (`state_dict`, `model_state_dict`, `model`, `net`), that key.
    /// - Throws: `GraftError` naming the file and what in it is wrong.
    public static func read(_ path: String, key: String? = nil) throws -> ImportedModel {
        let format = ModelFormat.of(path)
        do {
            switch format {
            case .onnx: return ImportedModel(graph: try ONNXImporter.importModel(at: path), notes: [])
            case .hdf5: return ImportedModel(graph: try HDF5Importer.importModel(at: path), notes: [])
            case .pth, .safetensors:
                let stateDict = format == .pth ? try TorchCheckpoint.read(at: path, key: key) : try Safetensors.read(at: path)
                let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
                var notes: [String] = []
                if !stateDict.ignored.isEmpty {
                    notes.append("the checkpoint's \(stateDict.ignored.joined(separator: ", ")) \(stateDict.ignored.count == 1 ? "is" : "are") not part of the model's state_dict and \(stateDict.ignored.count == 1 ? "was" : "were") left out")
                }
                let graph = try stateDict.graph(name: name)
                try graph.validate()
                return ImportedModel(graph: graph, notes: notes)
            }
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    /// Writes `graph` to `path` in the format its extension names (ONNX when none does).
    ///
    /// A state_dict format (`.pth`, `.safetensors`) gets torchvision's state_dict of the graph,
    /// which `torch.load(weights_only=True)` / `safetensors.torch.load_file` read and the
    /// torchvision model takes with `load_state_dict(strict=True)`.
    ///
    /// - Parameters:
    ///   - opset: the ONNX opset to write (ONNX only; default: the graph's).
    ///   - externalData: ONNX only: the weights in one file beside the model.
    /// - Throws: `GraftError` naming the file, or why the graph has no form in that format.
    public static func write(_ graph: Graph, to path: String, opset: Int? = nil, externalData: Bool = false) throws {
        switch ModelFormat(pathExtension: path) ?? .onnx {
        case .onnx: try ONNXExporter.export(graph, to: path, opset: opset, externalData: externalData)
        case .hdf5: try HDF5Exporter.export(graph, to: path)
        case .pth, .safetensors:
            let stateDict: StateDict
            do {
                stateDict = try StateDict(graph: graph)
            } catch let error as GraftError {
                throw error.inFile(path)
            }
            if ModelFormat(pathExtension: path) == .pth {
                try TorchCheckpoint.write(stateDict, to: path)
            } else {
                try Safetensors.write(stateDict, to: path, metadata: ["format": "pt"])
            }
        }
    }
}
