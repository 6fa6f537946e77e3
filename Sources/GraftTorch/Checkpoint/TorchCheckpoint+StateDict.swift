import GraftCore

extension TorchCheckpoint.Contents {
    /// The state_dict among the unpickled values: the top-level dict itself when it holds
    /// tensors, else the dict under `key` or under the first of `stateDictKeys` present.
    func stateDict(key: String?) throws -> StateDict {
        guard let top = pickle.items(of: pickle.root) else {
            throw GraftError(.badInput, "the checkpoint holds \(pickle.root.phrase), not a state_dict or a dict around one")
        }
        let names = top.map { Self.name(of: $0.key) }
        let chosen: Int?
        if let key {
            guard let index = names.firstIndex(of: key) else {
                throw GraftError(.badInput, "no top-level key '\(key)' in the checkpoint (its keys: \(Self.list(names)))")
            }
            chosen = index
        } else if top.contains(where: { if case .tensor = $0.value { return true } else { return false } }) {
            chosen = nil
        } else if let index = TorchCheckpoint.stateDictKeys.lazy.compactMap({ names.firstIndex(of: $0) }).first {
            chosen = index
        } else {
            throw GraftError(.badInput, top.isEmpty ? "the checkpoint holds an empty dict"
                : "no state_dict in the checkpoint (its keys: \(Self.list(names))): name the key that holds it")
        }

        var dict = StateDict()
        var tensors = top
        if let chosen {
            guard let items = pickle.items(of: top[chosen].value) else {
                throw GraftError(.badInput, "'\(names[chosen])' holds \(top[chosen].value.phrase), not a state_dict")
            }
            tensors = items
            dict.ignored = names.enumerated().filter { $0.offset != chosen }.map(\.element)
        }
        for (key, value) in tensors {
            guard case let .string(name) = key, case let .tensor(reference) = value else { continue }
            dict.entries.append(StateDict.Entry(key: name, tensor: try tensor(reference, named: name)))
        }
        if dict.entries.isEmpty, let chosen {
            throw GraftError(.badInput, "'\(names[chosen])' holds no tensors by name "
                + "(its keys: \(Self.list(tensors.prefix(8).map { Self.name(of: $0.key) }))\(tensors.count > 8 ? ", ..." : ""))")
        }
        if !dict.entries.isEmpty, dict.entries.allSatisfy({ $0.key.hasPrefix("module.") }) {
            for i in dict.entries.indices { dict.entries[i].key.removeFirst("module.".count) }
        }
        return dict
    }

    private func tensor(_ reference: TensorReference, named name: String) throws -> Tensor {
        do {
            let (storageName, bytes) = try storageBytes(reference.storage.key)
            let storage = reference.storage
            let (needed, overflow) = (storage.viewOffset + storage.count).multipliedReportingOverflow(by: storage.type.elementSize)
            guard !overflow, needed <= bytes.count else {
                throw Unpickler.Refusal("its storage '\(storageName)' holds \(bytes.count) bytes, not the \(storage.count) "
                    + "elements of \(storage.type.elementSize) bytes its persistent id declares")
            }
            return try reference.tensor(storageBytes: bytes, in: file, bigEndian: bigEndian)
        } catch let refusal as Unpickler.Refusal {
            throw GraftError(.badInput, refusal.message, tensor: name)
        }
    }

    private static func name(of key: PickleValue) -> String {
        switch key {
        case let .string(text): return text
        case let .int(n): return String(n)
        default: return "<\(key.kind)>"
        }
    }

    private static func list(_ names: [String]) -> String {
        names.isEmpty ? "none" : names.map { "'\($0)'" }.joined(separator: ", ")
    }
}
