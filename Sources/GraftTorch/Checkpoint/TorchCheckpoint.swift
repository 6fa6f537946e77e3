import GraftCore

/// PyTorch's `.pth` files read without Python: the zip format `torch.save` writes since
/// PyTorch 1.6 and the legacy format before it (`_use_new_zipfile_serialization=False`).
///
/// The pickle inside is read by a restricted unpickler that only builds tensors, containers and
/// numbers: a checkpoint that names any other Python object is refused, never run. Storages are
/// read from the mapped file (float32 tensors borrow it); every size is checked against the file.
public enum TorchCheckpoint {
    /// The keys a training script's checkpoint dict keeps its state_dict under, tried in order.
    public static let stateDictKeys = ["state_dict", "model_state_dict", "model", "net"]

    /// The state_dict in the `.pth` file at `path`.
    ///
    /// The file may hold a bare state_dict, or a checkpoint dict with the state_dict under `key`
    /// (by default the first of `stateDictKeys` it has); the checkpoint's other top-level keys
    /// go to `StateDict.ignored`. A `module.` prefix on every key (`nn.DataParallel`) is dropped.
    /// - Parameters:
    ///   - path: a file `torch.save` wrote.
    ///   - key: the top-level key of a checkpoint dict that holds the state_dict.
    /// - Throws: `GraftError` naming the file (and the zip entry, pickle byte or tensor) when the
    ///   file is not a checkpoint, names a Python object other than tensors and containers, is a
    ///   TorchScript archive, declares sizes the file does not hold, or has no state_dict (under
    ///   `key`) with named tensors.
    public static func read(at path: String, key: String? = nil) throws -> StateDict {
        do {
            let file = try MappedFile(path: path)
            let checkpoint: Contents
            if hasZipMagic(file) {
                checkpoint = try readZip(file)
            } else if hasLegacyMagic(file) {
                checkpoint = try readLegacy(file)
            } else {
                throw GraftError(.badInput, "not a PyTorch checkpoint: neither a zip archive nor a legacy torch.save file")
            }
            return try checkpoint.stateDict(key: key)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    /// Whether the file at `path` begins as a `torch.save` file does (a zip archive, or the
    /// legacy format's magic number); it does not read further.
    public static func isCheckpoint(at path: String) -> Bool {
        guard let file = try? MappedFile(path: path, populate: false) else { return false }
        return hasZipMagic(file) || hasLegacyMagic(file)
    }

    // MARK: - Implementation

    /// An unpickled checkpoint and where its storages' bytes lie.
    struct Contents {
        var pickle: Pickle
        var file: MappedFile
        var bigEndian: Bool
        /// The name (a zip entry, a legacy key) and bytes of the storage with this key.
        /// - Throws: `Unpickler.Refusal` when the file has no such storage.
        var storageBytes: (String) throws -> (name: String, bytes: Range<Int>)
    }

    private static func hasZipMagic(_ file: MappedFile) -> Bool {
        file.size >= 4 && Array(UnsafeRawBufferPointer(start: file.bytes, count: 4)) == [0x50, 0x4b, 0x03, 0x04]
    }

    /// The legacy format's first pickle, the magic number 0x1950a86a20f9469cfc6c, in any protocol.
    private static func hasLegacyMagic(_ file: MappedFile) -> Bool {
        var cursor = ByteCursor(file: file, range: 0..<min(file.size, 64))
        var unpickler = Unpickler(source: "the legacy magic number")
        guard let magic = try? unpickler.load(from: &cursor, persistentLoad: { _ in throw Unpickler.Refusal("") }),
              case let .bigInteger(digits) = magic.root else { return false }
        return digits == legacyMagicNumber
    }

    private static let legacyMagicNumber = "119547037146038801333356"
}
