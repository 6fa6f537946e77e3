import Foundation
import GraftCore

extension TorchCheckpoint {
    /// The version record torch.save writes for a state_dict (`caffe2/serialize/versions.h`'s
    /// lowest produced file format).
    static let fileFormatVersion = "3\n"

    /// Writes `stateDict` as `torch.save(model.state_dict(), path)` writes it in its zip format,
    /// byte for byte but for the 40 digits of `.data/serialization_id`, so that
    /// `torch.load(path, weights_only=True)` gives the same tensors back.
    ///
    /// The archive's folder is the file name without its extension, as torch names it
    /// (`archive` when that is empty); torch reads the folder name from the archive, so it only
    /// shows in listings. The file is replaced in one step, never left half-written.
    ///
    /// - Throws: `GraftError` when a key appears twice, when the archive would pass 4 GiB, or
    ///   when the file cannot be written.
    public static func write(_ stateDict: StateDict, to path: String) throws {
        do {
            try AtomicFile.write(archive(stateDict, name: archiveName(path)), to: path)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    /// The zip archive of `stateDict` with every record under `name/`.
    static func archive(_ stateDict: StateDict, name: String) throws -> Data {
        var seen = Set<String>()
        for entry in stateDict.entries where !seen.insert(entry.key).inserted {
            throw GraftError(.invalidArgument, "appears twice in the state_dict", tensor: entry.key)
        }
        var zip = ZipWriter()
        let pickle = PickleWriter.stateDict(stateDict.entries.map { ($0.key, $0.tensor.dtype, $0.tensor.shape) })
        // The records in torch.save's order.
        try zip.add("\(name)/data.pkl", pickle)
        try zip.add("\(name)/.format_version", Data("1".utf8))
        try zip.add("\(name)/.storage_alignment", Data(String(ZipWriter.alignment).utf8))
        try zip.add("\(name)/byteorder", Data("little".utf8))
        for (index, entry) in stateDict.entries.enumerated() {
            try entry.tensor.withUnsafeBytes { try zip.add("\(name)/data/\(index)", $0) }
        }
        try zip.add("\(name)/version", Data(fileFormatVersion.utf8))
        try zip.add("\(name)/.data/serialization_id", Data(serializationID(names: stateDict.entries.map(\.key), checksums: zip.checksums).utf8))
        return try zip.finish()
    }

    /// torch's archive folder for `path`: the last path component up to its last dot.
    static func archiveName(_ path: String) -> String {
        let file = URL(fileURLWithPath: path).lastPathComponent
        let stem = file.lastIndex(of: ".").map { String(file[..<$0]) } ?? file
        return stem.isEmpty ? "archive" : stem
    }

    /// 40 digits that tell this file's contents apart, as torch's do (two 20-digit numbers, from
    /// the record names and from the records' CRCs; torch only logs it): FNV-1a of the keys, then
    /// of the CRCs.
    static func serializationID(names: [String], checksums: [UInt32]) -> String {
        func fnv<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
            bytes.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
        }
        func digits(_ value: UInt64) -> String {
            let text = String(value)
            return String(repeating: "0", count: 20 - text.count) + text
        }
        let crcBytes = checksums.flatMap { crc in (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) } }
        return digits(fnv(names.joined(separator: "\n").utf8)) + digits(fnv(crcBytes))
    }
}
