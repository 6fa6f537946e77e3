import GraftCore

extension TorchCheckpoint {
    /// The zip format: `<root>/data.pkl` describes the tensors, whose storages are the entries
    /// `<root>/data/<key>`, in the byte order `<root>/byteorder` names (little when absent).
    static func readZip(_ file: MappedFile) throws -> Contents {
        let archive = try ZipArchive(file: file)
        guard let first = archive.entries.first, let slash = first.name.firstIndex(of: "/") else {
            throw GraftError(.badInput, "not a PyTorch checkpoint: a zip archive whose entries are not in one folder")
        }
        let root = String(first.name[..<slash])
        if archive.entry(named: "\(root)/constants.pkl") != nil
            || archive.entries.contains(where: { $0.name.hasPrefix("\(root)/code/") }) {
            throw GraftError(.badInput, "a TorchScript archive (code, not just weights): export it with torch.onnx.export, "
                + "or save its state_dict with torch.save")
        }
        guard let dataPickle = archive.entry(named: "\(root)/data.pkl") else {
            throw GraftError(.badInput, "not a PyTorch checkpoint: a zip archive without '\(root)/data.pkl'")
        }
        var bigEndian = false
        if let byteorder = archive.entry(named: "\(root)/byteorder") {
            let text = String(decoding: try file.bytes(in: try archive.data(of: byteorder)), as: UTF8.self)
            switch text.trimmingSuffix(while: \.isNewline) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw GraftError(.badInput, "'\(root)/byteorder' says '\(text.prefix(32))', not little or big")
            }
        }
        var cursor = ByteCursor(file: file, range: try archive.data(of: dataPickle))
        var unpickler = Unpickler(source: dataPickle.name)
        let pickle = try unpickler.load(from: &cursor, persistentLoad: storage)
        return Contents(pickle: pickle, file: file, bigEndian: bigEndian) { key in
            let name = "\(root)/data/\(key)"
            guard let entry = archive.entry(named: name) else {
                throw Unpickler.Refusal("its storage '\(name)' is missing from the archive")
            }
            return (name, try archive.data(of: entry))
        }
    }

    /// A zip checkpoint's persistent id: `('storage', storage_type, key, location, numel)`.
    private static func storage(_ id: PickleValue) throws -> PickleValue {
        guard case let .tuple(tuple) = id, tuple.items.count == 5,
              case .string("storage") = tuple.items[0], case let .global(.storageType(type)) = tuple.items[1],
              case let .string(key) = tuple.items[2], case .string = tuple.items[3],
              case let .int(count) = tuple.items[4], count >= 0 else {
            throw Unpickler.Refusal("a persistent id that is not ('storage', storage type, key, location, numel)")
        }
        return .storage(StorageReference(key: key, type: type, count: count))
    }
}

private extension String {
    func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var end = endIndex
        while end > startIndex, predicate(self[index(before: end)]) { end = index(before: end) }
        return self[..<end]
    }
}
