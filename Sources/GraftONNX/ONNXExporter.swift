import COnnxProto
import Foundation
import GraftCore

/// Writes a `Graph` as a standard ONNX model (inline weights, or external data beside the file)
/// that ONNX Runtime and the importer read back.
public enum ONNXExporter {
    /// The default-domain opsets Graft writes: 7 (NumPy broadcasting, no `is_test`) to the newest
    /// the importer reads.
    public static let opsets = 7...ONNXImporter.newestOpset

    /// Initializers totalling more than this go to an external data file even when not asked.
    static let externalThreshold = 1 << 30
    /// Float tensors at least this large go to the external data file.
    static let externalMinimumBytes = 1024
    /// Every tensor in the external data file starts at a multiple of this.
    static let externalAlignment = 64

    /// Writes `graph` to `path` as ONNX, with the nodes in the form `opset` wants.
    ///
    /// With external data (asked for, or forced when the initializers exceed 1 GiB), every float
    /// tensor of 1 KiB or more goes to a data file beside the model, 64-byte aligned (no data
    /// file when there is no such tensor): `<file name>.data`, or `<file name>.<random>.data`
    /// when the model already at `path` uses that name. The whole model is encoded and both
    /// files written to temporary files before anything is renamed; the data file is renamed
    /// first (under a name no model uses yet), then the model, and only then are the data files
    /// the replaced model named removed, so that at every moment the model at `path` and the data
    /// file it names belong together. Data files of this naming that no model in the folder names
    /// (left by a process killed between the two renames) are removed too; one that another model
    /// there names (a copy) is kept.
    ///
    /// - Parameters:
    ///   - opset: the default-domain opset to write; `graph.metadata.opset` when nil.
    ///   - externalData: whether to put large float tensors in the external data file.
    /// - Throws: `GraftError` naming the node, op and opset that the target opset cannot express,
    ///   or `GraftError(.io, "cannot write: <reason>", file:)`; existing files are then left as
    ///   they were.
    public static func export(_ graph: Graph, to path: String, opset: Int? = nil, externalData: Bool = false) throws {
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent, folder = url.deletingLastPathComponent().path
        let previous = ownDataFiles(ofModelAt: path)
        var random = SystemRandomNumberGenerator()
        let dataName = previous.contains(name + ".data") ? "\(name).\(hex(random.next())).data" : name + ".data"
        let dataPath = folder + "/" + dataName
        let encoded = try encode(graph, opset: opset, externalData: externalData, dataFileName: dataName)
        try checkWritable(path)
        let dataFile = try encoded.data.map { data in
            let file = try TemporaryFile(for: dataPath)
            try file.write(data)
            return file
        }
        let modelFile = try TemporaryFile(for: path)
        try modelFile.write(encoded.model)
        // Until the model that names it is renamed into place, no model uses the new data file:
        // a SIGTERM or SIGINT in between removes it with the temporaries. (It is delisted just
        // before that rename, so a signal can at worst leave it, never remove it from under
        // the new model.)
        var listed = dataFile == nil ? nil : SignalCleanup.register(dataPath)
        func delist() {
            if let slot = listed { SignalCleanup.unregister(slot) }
            listed = nil
        }
        defer { delist() }
        try dataFile?.commit()
        do {
            try modelFile.commit(beforeRenaming: delist)
        } catch {
            // No model names the new data file: the one at `path` still names its own.
            if dataFile != nil { unlink(dataPath) }
            throw error
        }
        for unused in unusedDataFiles(ofModelAt: path, candidates: previous) { unlink(folder + "/" + unused) }
    }

    /// Sixteen hex digits.
    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The external data files that the model at `path` names and that an export to `path` wrote
    /// (`<file name>.data` or `<file name>.<16 hex digits>.data`, beside it): what replacing the
    /// model leaves unused. Empty when there is no model there or it does not parse.
    static func ownDataFiles(ofModelAt path: String) -> Set<String> {
        let name = URL(fileURLWithPath: path).lastPathComponent
        return dataFiles(namedBy: path) { isDataFile($0, of: name) }
    }

    /// Whether `file` is a name an export to a model called `name` gives its data file.
    static func isDataFile(_ file: String, of name: String) -> Bool {
        if file == name + ".data" { return true }
        guard file.hasPrefix(name + "."), file.hasSuffix(".data") else { return false }
        let middle = file.dropFirst(name.count + 1).dropLast(5)
        return middle.count == 16 && middle.allSatisfy(\.isHexDigit)
    }

    /// The data files to remove once a model is in place at `path`: `candidates` (what the model
    /// it replaced named) and any other file of its data files' naming (left by a process killed
    /// between renaming a new data file and its model into place), less those that a model in
    /// the folder names (the new model itself, a copy of the old one).
    static func unusedDataFiles(ofModelAt path: String, candidates: Set<String>) -> [String] {
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent, folder = url.deletingLastPathComponent().path
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var unused = candidates.union(files.filter { isDataFile($0, of: name) })
        for model in files where !unused.isEmpty && model.lowercased().hasSuffix(".onnx") {
            unused.subtract(dataFiles(namedBy: folder + "/" + model) { unused.contains($0) })
        }
        return unused.sorted()
    }

    /// The external data locations that the model at `path` names and `wanted` accepts; empty
    /// when the file is not a regular file or does not parse.
    private static func dataFiles(namedBy path: String, _ wanted: (String) -> Bool) -> Set<String> {
        guard let file = try? MappedFile(path: path), file.size > 0, (try? WireNesting.check(UnsafeRawBufferPointer(start: file.bytes, count: file.size))) != nil,
              let model = onnx__model_proto__unpack(nil, file.size, file.bytes.assumingMemoryBound(to: UInt8.self)) else { return [] }
        defer { onnx__model_proto__free_unpacked(model, nil) }
        guard let graph = model.pointee.graph?.pointee else { return [] }
        var found: Set<String> = []
        for tensor in repeated(graph.n_initializer, graph.initializer) {
            guard let t = tensor?.pointee else { continue }
            for (key, value) in entries(t.n_external_data, t.external_data) where key == "location" && wanted(value) {
                found.insert(value)
            }
        }
        return found
    }

    /// The serialized model with every tensor inline, as `export` would write it.
    ///
    /// - Throws: `GraftError` naming the node, op and opset that the target opset cannot express,
    ///   or saying that the initializers exceed 1 GiB (too large to hold inline).
    public static func serialize(_ graph: Graph, opset: Int? = nil) throws -> [UInt8] {
        [UInt8](try encode(graph, opset: opset, externalData: false, dataFileName: nil).model)
    }

    /// The IR version of the ONNX release that introduced `opset`.
    static func irVersion(forOpset opset: Int) -> Int {
        switch opset {
        case ...8: return 3
        case 9: return 4
        case 10: return 5
        case 11: return 6
        case 12...14: return 7
        case 15...18: return 8
        case 19...20: return 9
        case 21...22: return 10
        default: return 11
        }
    }

    /// The model bytes, and the external data file's bytes when tensors go there; with no
    /// `dataFileName` every tensor must stay inline.
    static func encode(_ graph: Graph, opset target: Int?, externalData: Bool, dataFileName: String?) throws -> (model: Data, data: Data?) {
        let opset = target ?? graph.metadata.opset
        guard opsets.contains(opset) else {
            throw GraftError(.invalidArgument, "opset \(opset) cannot be written (Graft writes opsets \(opsets.lowerBound) to \(opsets.upperBound))")
        }
        var model = ExportedModel(
            irVersion: irVersion(forOpset: opset),
            opsets: [("", opset)] + graph.metadata.otherOpsets.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
            graphName: graph.name,
            properties: graph.metadata.properties.sorted { $0.key < $1.key },
            inputs: graph.inputs, outputs: graph.outputs, initializers: [], nodes: [])
        var constants = graph.constants
        var order = graph.constantOrder
        model.nodes = try nodes(of: graph, opset: opset) { name, tensor in
            constants[name] = tensor
            order.append(name)
        }
        // A constant the target opset moved into an attribute (a ReduceMean's axes, say) is read
        // by no node any more: it is not written.
        let readBefore = Set(graph.nodes.flatMap(\.inputs))
        let read = Set(model.nodes.flatMap(\.inputs)).union(graph.outputs.map(\.name))
        order.removeAll { readBefore.contains($0) && !read.contains($0) }

        let total = order.reduce(0) { $0 + constants[$1]!.byteCount }
        // A protobuf cannot exceed 2 GiB; well before that the weights go beside the model.
        if total > externalThreshold && dataFileName == nil {
            throw GraftError(.invalidArgument, "the initializers hold \(total) bytes, more than 1 GiB: write the model to a file, with external data")
        }
        var data = Data()
        var offsets: [String: Int] = [:]
        if let dataFileName, externalData || total > externalThreshold {
            let outside = order.filter { constants[$0]!.dtype.isFloatingPoint && constants[$0]!.byteCount >= externalMinimumBytes }
            data.reserveCapacity(outside.reduce(0) { $0 + constants[$1]!.byteCount + externalAlignment })
            for name in outside {
                data.append(Data(count: (externalAlignment - data.count % externalAlignment) % externalAlignment))
                offsets[name] = data.count
                constants[name]!.withUnsafeBytes { data.append(contentsOf: $0) }
            }
            model.initializers = order.map { name in
                ExportedModel.Initializer(name: name, tensor: constants[name]!, external: offsets[name].map { (dataFileName, $0) })
            }
        } else {
            model.initializers = order.map { ExportedModel.Initializer(name: $0, tensor: constants[$0]!, external: nil) }
        }
        return (model.pack(), offsets.isEmpty ? nil : data)
    }

    /// The ONNX nodes of `graph` in topological order; `addConstant` receives the constants that
    /// some node needs at this opset and the graph lacks.
    private static func nodes(of graph: Graph, opset: Int, addConstant: (String, Tensor) -> Void) throws -> [ExportedNode] {
        var constants = graph.constants
        // Shape inference runs at most once, and only when a node needs a shape (a legacy axis).
        var facts: [String: ValueFact]?
        var out: [ExportedNode] = []
        for index in try graph.topologicalOrder() {
            let node = graph.nodes[index]
            let shapeOf: (String) throws -> Shape = { name in
                do {
                    if facts == nil { facts = try graph.inferShapes() }
                } catch let error as GraftError {
                    throw GraftError(.invalidArgument, "writing it at opset \(opset) needs the shape of '\(name)', which shape inference cannot give (\(error))",
                                     node: node.name, op: node.op.name)
                }
                guard let shape = facts?[name]?.shape else {
                    throw GraftError(.internal, "shape inference gave no shape for '\(name)'", node: node.name, op: node.op.name)
                }
                return shape
            }
            var writer = NodeWriter(node: node, opset: opset, constants: constants, shapeOf: shapeOf)
            out.append(try writer.write())
            for (name, tensor) in writer.newConstants {
                constants[name] = tensor
                addConstant(name, tensor)
            }
        }
        return out
    }

    /// Fails before anything is written when the model cannot land at `path`, so that the data
    /// file is not replaced for a model that is not.
    private static func checkWritable(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw GraftError(.io, "cannot write: the folder \(folder) does not exist", file: path)
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw GraftError(.io, "cannot write: it is a folder", file: path)
        }
    }
}
