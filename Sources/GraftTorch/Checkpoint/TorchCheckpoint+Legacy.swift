import GraftCore

extension TorchCheckpoint {
    /// The legacy format: five pickles (the magic number, the protocol version, the writer's
    /// system information, the objects, the storage keys) and then each storage in the keys'
    /// order, as its element count (8 bytes) and its elements.
    static func readLegacy(_ file: MappedFile) throws -> Contents {
        var cursor = ByteCursor(file: file, range: 0..<file.size)
        func next(_ source: String, _ persistentLoad: (PickleValue) throws -> PickleValue) throws -> Pickle {
            var unpickler = Unpickler(source: source)
            return try unpickler.load(from: &cursor, persistentLoad: persistentLoad)
        }
        _ = try next("the legacy magic number", noPersistentIDs)
        let version = try next("the legacy protocol version", noPersistentIDs)
        guard case let .int(number) = version.root, number == 1001 else {
            let found = if case let .int(number) = version.root { String(number) } else { version.root.phrase }
            throw GraftError(.badInput, "legacy checkpoint protocol version \(found) is not read (only 1001)")
        }
        let system = try next("the legacy system information", noPersistentIDs)
        var bigEndian = false
        for (key, value) in system.items(of: system.root) ?? [] {
            if case .string("little_endian") = key, case let .bool(little) = value { bigEndian = !little }
        }

        // The element type and count of each root storage, as the persistent ids declare them.
        var declared: [String: (type: TorchStorageType, count: Int)] = [:]
        let pickle = try next("the legacy data pickle") { id in
            let (root, reference) = try legacyStorage(id)
            if let known = declared[root.key], known.type != root.type || known.count != root.count {
                throw Unpickler.Refusal("storage '\(root.key)' is declared twice, differently")
            }
            declared[root.key] = (root.type, root.count)
            return .storage(reference)
        }
        let keys = try next("the legacy storage list", noPersistentIDs)
        guard case let .list(number) = keys.root else {
            throw GraftError(.badInput, "the legacy storage list is \(keys.root.phrase), not a list")
        }

        var records: [String: Range<Int>] = [:]
        for item in keys.lists[number] {
            guard case let .string(key) = item else {
                throw GraftError(.badInput, "the legacy storage list holds \(item.phrase), not a storage key")
            }
            guard let (type, _) = declared[key] else {
                throw GraftError(.badInput, "the legacy storage list names storage '\(key)', which no tensor uses")
            }
            let count: UInt64
            do {
                let raw = try cursor.uint64()
                count = bigEndian ? raw.byteSwapped : raw
            } catch is ByteCursor.EndOfData {
                throw GraftError(.badInput, "legacy storage '\(key)': the file ends before its element count")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: UInt64(type.elementSize))
            guard !overflow, bytes <= UInt64(cursor.remaining) else {
                throw GraftError(.badInput, "legacy storage '\(key)' claims \(count) elements of \(type.elementSize) bytes; "
                    + "the file has \(cursor.remaining) bytes left")
            }
            let start = cursor.position
            _ = try cursor.bytes(Int(bytes))
            records[key] = start..<cursor.position
        }
        return Contents(pickle: pickle, file: file, bigEndian: bigEndian) { key in
            guard let record = records[key] else {
                throw Unpickler.Refusal("its storage '\(key)' is not in the legacy storage list")
            }
            return (key, record)
        }
    }

    private static func noPersistentIDs(_ id: PickleValue) throws -> PickleValue {
        throw Unpickler.Refusal("a persistent id where none belongs")
    }

    /// A legacy persistent id: `('storage', storage_type, root_key, location, root_size,
    /// view_metadata)`, where `view_metadata` is None or `(view_key, offset, view_size)` for a
    /// view of the root storage.
    private static func legacyStorage(_ id: PickleValue) throws -> (root: StorageReference, view: StorageReference) {
        guard case let .tuple(tuple) = id, tuple.items.count == 6,
              case .string("storage") = tuple.items[0], case let .global(.storageType(type)) = tuple.items[1],
              case let .string(key) = tuple.items[2], case .string = tuple.items[3],
              case let .int(count) = tuple.items[4], count >= 0 else {
            throw Unpickler.Refusal("a persistent id that is not ('storage', storage type, key, location, size, view)")
        }
        let root = StorageReference(key: key, type: type, count: count)
        switch tuple.items[5] {
        case .none:
            return (root, root)
        case let .tuple(view) where view.items.count == 3:
            guard case let .int(offset) = view.items[1], case let .int(size) = view.items[2],
                  offset >= 0, size >= 0, offset <= count, size <= count - offset else { break }
            return (root, StorageReference(key: key, type: type, count: size, viewOffset: offset))
        default:
            break
        }
        throw Unpickler.Refusal("storage '\(key)' has a view that is not (key, offset, size) inside its \(count) elements")
    }
}
