import Foundation
import GraftCore

/// Builds a ZIP archive of stored (uncompressed) entries in memory, laid out as PyTorch's writer
/// (miniz, `caffe2/serialize/inline_container.cc`) lays out `torch.save` files.
///
/// Each local header carries an extra field `FB` whose filler bytes (`Z`) put the entry's data on
/// a 64-byte boundary, so a reader can map tensors in place. The local header leaves CRC and sizes
/// at zero and a data descriptor follows each non-empty entry; torch's loader, when it computes
/// storage offsets without reading headers (`map_location="meta"`), counts on exactly this layout.
/// The ZIP64 end records are always written, as torch writes them; entries and offsets past
/// 4 GiB (which need per-entry ZIP64 fields) are refused.
struct ZipWriter {
    /// The alignment of every entry's data.
    static let alignment = 64
    /// The first offset or size a 32-bit field cannot hold (ZIP reserves 0xFFFFFFFF for ZIP64).
    static let limit = 0xFFFF_FFFF

    private struct CentralRecord {
        var name: [UInt8]
        var flags: UInt16
        var crc: UInt32
        var size: Int
        var headerOffset: Int
    }

    private(set) var bytes = Data()
    private var records: [CentralRecord] = []

    /// The CRC-32 of each entry added so far, in order.
    var checksums: [UInt32] { records.map(\.crc) }

    /// Adds an entry named `name` (UTF-8) holding `contents`.
    ///
    /// - Throws: `GraftError` when the entry would end 4 GiB or more into the archive.
    mutating func add(_ name: String, _ contents: UnsafeRawBufferPointer) throws {
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= 0xFFFF else {
            throw GraftError(.invalidArgument, "entry name of \(nameBytes.count) bytes is longer than ZIP allows (65535)")
        }
        let headerOffset = bytes.count
        let dataStart = headerOffset + 30 + nameBytes.count + 4
        let padding = (Self.alignment - dataStart % Self.alignment) % Self.alignment
        let (end, overflow) = (dataStart + padding).addingReportingOverflow(contents.count)
        // The data descriptor included, so the next entry's offset fits 32 bits too.
        guard !overflow, end + 16 < Self.limit else {
            throw GraftError(.invalidArgument, "entry '\(name)' would pass 4 GiB into the archive, which Graft does not write (no ZIP64 entries)")
        }
        // Bit 11: the name is UTF-8. Bit 3: CRC and sizes follow the data (none for an empty entry).
        let flags: UInt16 = contents.isEmpty ? 0x0800 : 0x0808
        let crc = CRC32.checksum(contents)

        append32(0x0403_4B50)
        append16(0)  // version needed to extract, as miniz writes it
        append16(flags)
        append16(0)  // stored
        append16(0)  // time
        append16(0)  // date
        append32(0)  // CRC, in the data descriptor
        append32(0)  // compressed size, in the data descriptor
        append32(0)  // size, in the data descriptor
        append16(UInt16(nameBytes.count))
        append16(UInt16(4 + padding))
        bytes.append(contentsOf: nameBytes)
        bytes.append(contentsOf: [UInt8(ascii: "F"), UInt8(ascii: "B")])
        append16(UInt16(padding))
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "Z"), count: padding))
        bytes.append(contentsOf: contents)
        if !contents.isEmpty {
            append32(0x0807_4B50)
            append32(crc)
            append32(UInt32(contents.count))
            append32(UInt32(contents.count))
        }
        records.append(CentralRecord(name: nameBytes, flags: flags, crc: crc, size: contents.count, headerOffset: headerOffset))
    }

    /// Adds an entry holding `contents`.
    mutating func add(_ name: String, _ contents: Data) throws {
        try contents.withUnsafeBytes { try add(name, $0) }
    }

    /// The archive: the entries, the central directory and the end records.
    ///
    /// - Throws: `GraftError` when the central directory would pass 4 GiB.
    mutating func finish() throws -> Data {
        let directoryOffset = bytes.count
        for record in records {
            append32(0x0201_4B50)
            append16(0)  // made by
            append16(0)  // needed to extract
            append16(record.flags)
            append16(0)  // stored
            append16(0)  // time
            append16(0)  // date
            append32(record.crc)
            append32(UInt32(record.size))
            append32(UInt32(record.size))
            append16(UInt16(record.name.count))
            append16(0)  // extra field length
            append16(0)  // comment length
            append16(0)  // disk
            append16(0)  // internal attributes
            append32(0)  // external attributes
            append32(UInt32(record.headerOffset))
            bytes.append(contentsOf: record.name)
        }
        let directorySize = bytes.count - directoryOffset
        let zip64EndOffset = bytes.count
        guard zip64EndOffset < Self.limit else {
            throw GraftError(.invalidArgument, "the archive's central directory would pass 4 GiB, which Graft does not write (no ZIP64 entries)")
        }
        // ZIP64 end of central directory record, then its locator.
        append32(0x0606_4B50)
        append64(44)  // the size of the rest of this record
        append16(0x031E)  // made by: Unix, ZIP 3.0
        append16(45)  // needed to extract: ZIP64
        append32(0)  // this disk
        append32(0)  // the directory's disk
        append64(records.count)
        append64(records.count)
        append64(directorySize)
        append64(directoryOffset)
        append32(0x0706_4B50)
        append32(0)  // the disk of the ZIP64 record
        append64(zip64EndOffset)
        append32(1)  // disks
        // End of central directory.
        append32(0x0605_4B50)
        append16(0)
        append16(0)
        append16(UInt16(min(records.count, 0xFFFF)))
        append16(UInt16(min(records.count, 0xFFFF)))
        append32(UInt32(directorySize))
        append32(UInt32(directoryOffset))
        append16(0)  // comment length
        return bytes
    }

    private mutating func append16(_ value: UInt16) {
        bytes.append(UInt8(value & 0xFF))
        bytes.append(UInt8(value >> 8))
    }

    private mutating func append32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    private mutating func append64(_ value: Int) {
        let v = UInt64(value)
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }
}

extension ZipWriter {
    /// CRC-32 as ZIP computes it (IEEE polynomial, reflected, initial and final XOR 0xFFFFFFFF).
    enum CRC32 {
        /// Four tables for slicing by four bytes: a model's megabytes are checksummed per write.
        private static let tables: [[UInt32]] = {
            var first = [UInt32](repeating: 0, count: 256)
            for i in 0..<256 {
                var c = UInt32(i)
                for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
                first[i] = c
            }
            var tables = [first]
            for _ in 1..<4 {
                let previous = tables.last!
                tables.append((0..<256).map { first[Int(previous[$0] & 0xFF)] ^ (previous[$0] >> 8) })
            }
            return tables
        }()

        static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
            let (t0, t1, t2, t3) = (tables[0], tables[1], tables[2], tables[3])
            var crc: UInt32 = 0xFFFF_FFFF
            var i = 0
            let count = bytes.count
            while i + 4 <= count {
                let word = crc ^ (UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
                crc = t3[Int(word & 0xFF)] ^ t2[Int((word >> 8) & 0xFF)] ^ t1[Int((word >> 16) & 0xFF)] ^ t0[Int(word >> 24)]
                i += 4
            }
            while i < count {
                crc = t0[Int((crc ^ UInt32(bytes[i])) & 0xFF)] ^ (crc >> 8)
                i += 1
            }
            return crc ^ 0xFFFF_FFFF
        }
    }
}
