import Foundation
import GraftCore

/// Graft's container for training files (feature caches, resumable training state): a JSON
/// header that describes the contents, float32 and int64 arrays, and a checksum of everything, so
/// a truncated or corrupted file is detected instead of being read as numbers.
///
/// Layout: the magic `GRAFTBLB`, a little-endian UInt32 version (1), a UInt32 header length, the
/// header (UTF-8 JSON: `{"kind": ..., "meta": ..., "arrays": [{"name", "type", "count"}, ...]}`),
/// the arrays back to back, then the UInt64 `ContentHash` of every byte before it.
struct BlobFile<Meta: Codable> {
    var kind: String
    var meta: Meta
    var floats: [String: [Float]] = [:]
    var integers: [String: [Int64]] = [:]

    private struct Header: Codable {
        var kind: String
        var meta: Meta
        var arrays: [Entry]
    }

    private struct Entry: Codable {
        var name: String
        var type: String
        var count: Int
    }

    private static var magic: [UInt8] { Array("GRAFTBLB".utf8) }

    init(kind: String, meta: Meta) {
        self.kind = kind
        self.meta = meta
    }

    func encoded() throws -> Data {
        let entries = floats.keys.sorted().map { Entry(name: $0, type: "f32", count: floats[$0]!.count) }
            + integers.keys.sorted().map { Entry(name: $0, type: "i64", count: integers[$0]!.count) }
        let header = try JSONEncoder().encode(Header(kind: kind, meta: meta, arrays: entries))
        var data = Data(Self.magic)
        withUnsafeBytes(of: UInt32(1).littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(header)
        for e in entries {
            if e.type == "f32" {
                floats[e.name]!.withUnsafeBytes { data.append(contentsOf: $0) }
            } else {
                integers[e.name]!.withUnsafeBytes { data.append(contentsOf: $0) }
            }
        }
        let checksum = data.withUnsafeBytes { ContentHash.of($0) }
        withUnsafeBytes(of: checksum.littleEndian) { data.append(contentsOf: $0) }
        return data
    }

    /// Writes the file atomically (a temporary file renamed into place).
    func write(to path: String) throws {
        try AtomicFile.write(try encoded(), to: path)
    }

    /// Reads a file of `kind`.
    ///
    /// - Throws: `GraftError` (`badInput`, naming the file) when it is not such a file, is
    ///   truncated, or its checksum does not match.
    static func read(_ path: String, kind: String) throws -> BlobFile {
        do {
            let file = try MappedFile(path: path)
            return try decode(Data(bytes: file.bytes, count: file.size), kind: kind)
        } catch let error as GraftError {
            throw error.inFile(path)
        }
    }

    static func decode(_ data: Data, kind: String) throws -> BlobFile {
        func bad(_ why: String) -> GraftError { GraftError(.badInput, "not a valid Graft \(kind) file: \(why)") }
        guard data.count >= 24, Array(data.prefix(8)) == magic else { throw bad("bad magic") }
        let stored = data.suffix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        let computed = data.dropLast(8).withUnsafeBytes { ContentHash.of($0) }
        guard stored == computed else { throw bad("the checksum does not match (the file is truncated or corrupted)") }
        return try data.withUnsafeBytes { raw -> BlobFile in
            let version = raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian
            guard version == 1 else { throw bad("format version \(version) is not supported") }
            let headerLength = Int(raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian)
            guard 16 + headerLength <= data.count - 8 else { throw bad("truncated header") }
            let header: Header
            do {
                header = try JSONDecoder().decode(Header.self, from: Data(raw[16..<(16 + headerLength)]))
            } catch {
                throw bad("unreadable header")
            }
            guard header.kind == kind else { throw bad("it holds \(header.kind)") }
            var file = BlobFile(kind: kind, meta: header.meta)
            var offset = 16 + headerLength
            for e in header.arrays {
                guard let size = ["f32": 4, "i64": 8][e.type] else { throw bad("array '\(e.name)' has unknown type \(e.type)") }
                // The count is the file's word: checked against the bytes there before any use.
                let (bytes, overflow) = e.count.multipliedReportingOverflow(by: size)
                guard e.count >= 0, !overflow, bytes <= data.count - 8 - offset else { throw bad("array '\(e.name)' is truncated") }
                let region = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + bytes)])
                switch e.type {
                case "f32": file.floats[e.name] = [Float](unsafeUninitializedCapacity: e.count) { buffer, n in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: region)
                    n = e.count
                }
                case "i64": file.integers[e.name] = [Int64](unsafeUninitializedCapacity: e.count) { buffer, n in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: region)
                    n = e.count
                }
                default: throw bad("array '\(e.name)' has unknown type \(e.type)")
                }
                offset += bytes
            }
            guard offset == data.count - 8 else { throw bad("\(data.count - 8 - offset) unexpected bytes after the arrays") }
            return file
        }
    }
}
