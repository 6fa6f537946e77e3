import GraftCore

/// The entries of a zip archive, each located and checked to lie inside the file before
/// anything is read; only stored (uncompressed) data is read, as `torch.save` writes it.
///
/// Every offset and size the archive declares (end record, ZIP64 record, central directory,
/// local headers) is checked against the file size in overflow-safe arithmetic; an encrypted
/// entry, a name that leaves the archive (`..`, a leading `/`), or a local header that disagrees
/// with the central directory is refused with the entry's name, and so is reading a compressed
/// entry.
struct ZipArchive {
    struct Entry {
        var name: String
        /// The compression method: 0 for stored.
        var method: UInt16
        /// The entry's bytes as the file holds them (compressed unless stored), as offsets into
        /// the file.
        var raw: Range<Int>
    }

    /// At most this many entries are read (checked before anything is allocated for them).
    static let maxEntries = 1_000_000

    /// The entries in central-directory order.
    let entries: [Entry]
    private let index: [String: Int]

    /// - Throws: `GraftError` (`.badInput`, no file set) saying what in the archive is wrong.
    init(file: MappedFile) throws {
        let directory = try Self.centralDirectory(in: file)
        var cursor = ByteCursor(file: file, range: directory.range)
        var entries: [Entry] = []
        entries.reserveCapacity(directory.count)
        var index: [String: Int] = [:]
        for number in 0..<directory.count {
            let entry = try Self.entry(number, at: &cursor, in: file)
            guard index.updateValue(entries.count, forKey: entry.name) == nil else {
                throw GraftError(.badInput, "zip entry '\(entry.name)' appears twice")
            }
            entries.append(entry)
        }
        self.entries = entries
        self.index = index
    }

    /// The entry called `name`, if the archive has one.
    func entry(named name: String) -> Entry? {
        index[name].map { entries[$0] }
    }

    /// The bytes of a stored entry, as offsets into the file.
    /// - Throws: `GraftError` when the entry is compressed.
    func data(of entry: Entry) throws -> Range<Int> {
        guard entry.method == 0 else {
            throw GraftError(.badInput, "zip entry '\(entry.name)' is compressed (method \(entry.method)); "
                + "only stored entries are read, as torch.save writes them")
        }
        return entry.raw
    }

    // MARK: - End of central directory

    private static let endSignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EndSignature: UInt32 = 0x0606_4b50
    private static let centralSignature: UInt32 = 0x0201_4b50
    private static let localSignature: UInt32 = 0x0403_4b50

    /// Where the central directory lies and how many entries it lists, from the end record
    /// (searched in the last 64 KiB + 22 bytes: the record and the longest comment) or, where
    /// a field is saturated, from the ZIP64 end record.
    private static func centralDirectory(in file: MappedFile) throws -> (range: Range<Int>, count: Int) {
        guard let end = findEndRecord(in: file) else {
            throw GraftError(.badInput, "not a zip archive: no end-of-central-directory record")
        }
        var cursor = ByteCursor(file: file, range: end..<file.size)
        do {
            _ = try cursor.uint32()
            let disk = try cursor.uint16(), directoryDisk = try cursor.uint16()
            let countOnDisk = try cursor.uint16(), count16 = try cursor.uint16()
            let size32 = try cursor.uint32(), offset32 = try cursor.uint32()
            var count = UInt64(count16), size = UInt64(size32), offset = UInt64(offset32)
            if count16 == 0xFFFF || size32 == 0xFFFF_FFFF || offset32 == 0xFFFF_FFFF {
                (count, size, offset) = try zip64Directory(in: file, endRecord: end)
            } else if disk != 0 || directoryDisk != 0 || countOnDisk != count16 {
                throw GraftError(.badInput, "a zip archive split over several disks is not read")
            }
            guard count <= UInt64(maxEntries) else {
                throw GraftError(.badInput, "the zip archive lists \(count) entries; at most \(maxEntries) are read")
            }
            guard offset <= UInt64(file.size), size <= UInt64(file.size) - offset else {
                throw GraftError(.badInput, "the zip central directory (\(size) bytes at byte \(offset)) lies past the end of the file (\(file.size) bytes)")
            }
            // Each central entry takes at least 46 bytes: a count the size cannot hold lies.
            guard count <= size / 46 else {
                throw GraftError(.badInput, "the zip central directory (\(size) bytes) cannot hold the \(count) entries it claims")
            }
            return (Int(offset)..<Int(offset + size), Int(count))
        } catch is ByteCursor.EndOfData {
            throw GraftError(.badInput, "the zip end-of-central-directory record is cut short")
        }
    }

    private static func findEndRecord(in file: MappedFile) -> Int? {
        guard file.size >= 22 else { return nil }
        let lowest = max(0, file.size - 22 - 65_535)
        let bytes = UnsafeRawBufferPointer(start: file.bytes, count: file.size)
        for start in stride(from: file.size - 22, through: lowest, by: -1)
        where bytes[start] == 0x50 && bytes[start + 1] == 0x4b && bytes[start + 2] == 0x05 && bytes[start + 3] == 0x06 {
            return start
        }
        return nil
    }

    private static func zip64Directory(in file: MappedFile, endRecord: Int) throws -> (count: UInt64, size: UInt64, offset: UInt64) {
        guard endRecord >= 20 else {
            throw GraftError(.badInput, "the zip end record defers to a ZIP64 record the file does not have")
        }
        var locator = ByteCursor(file: file, range: (endRecord - 20)..<endRecord)
        guard try locator.uint32() == zip64LocatorSignature else {
            throw GraftError(.badInput, "the zip end record defers to a ZIP64 record the file does not have")
        }
        _ = try locator.uint32()
        let recordOffset = try locator.uint64()
        guard recordOffset <= UInt64(file.size), UInt64(file.size) - recordOffset >= 56 else {
            throw GraftError(.badInput, "the ZIP64 end record (at byte \(recordOffset)) lies past the end of the file (\(file.size) bytes)")
        }
        var record = ByteCursor(file: file, range: Int(recordOffset)..<file.size)
        guard try record.uint32() == zip64EndSignature else {
            throw GraftError(.badInput, "no ZIP64 end record at byte \(recordOffset)")
        }
        _ = try record.bytes(8 + 2 + 2)   // record size, versions
        let disk = try record.uint32(), directoryDisk = try record.uint32()
        let countOnDisk = try record.uint64(), count = try record.uint64()
        let size = try record.uint64(), offset = try record.uint64()
        guard disk == 0, directoryDisk == 0, countOnDisk == count else {
            throw GraftError(.badInput, "a zip archive split over several disks is not read")
        }
        return (count, size, offset)
    }

    // MARK: - Entries

    /// Reads central-directory entry `number` at the cursor and checks its local header.
    private static func entry(_ number: Int, at cursor: inout ByteCursor, in file: MappedFile) throws -> Entry {
        let name: String
        var compressedSize: UInt64, size: UInt64, localOffset: UInt64
        let flags: UInt16, method: UInt16
        do {
            guard try cursor.uint32() == centralSignature else {
                throw GraftError(.badInput, "zip central directory entry \(number) has no entry signature")
            }
            _ = try cursor.bytes(4)   // versions
            flags = try cursor.uint16()
            method = try cursor.uint16()
            _ = try cursor.bytes(8)   // time, date, CRC
            compressedSize = UInt64(try cursor.uint32())
            size = UInt64(try cursor.uint32())
            let nameLength = Int(try cursor.uint16()), extraLength = Int(try cursor.uint16())
            let commentLength = Int(try cursor.uint16())
            _ = try cursor.bytes(8)   // disk, attributes
            localOffset = UInt64(try cursor.uint32())
            name = String(decoding: try cursor.bytes(nameLength), as: UTF8.self)
            let extraStart = cursor.position
            _ = try cursor.bytes(extraLength)
            var extra = ByteCursor(file: file, range: extraStart..<cursor.position)
            _ = try cursor.bytes(commentLength)
            try readZip64Extra(&extra, size: &size, compressedSize: &compressedSize, localOffset: &localOffset)
        } catch is ByteCursor.EndOfData {
            throw GraftError(.badInput, "zip central directory entry \(number) runs past the directory's end")
        }
        try checkName(name)
        guard flags & 1 == 0 else { throw GraftError(.badInput, "zip entry '\(name)' is encrypted") }
        guard method != 0 || compressedSize == size else {
            throw GraftError(.badInput, "zip entry '\(name)' is stored but its sizes differ (\(compressedSize) and \(size) bytes)")
        }
        let start = try dataStart(of: name, localHeader: localOffset, in: file)
        guard UInt64(file.size - start) >= compressedSize else {
            throw GraftError(.badInput, "zip entry '\(name)' (\(compressedSize) bytes at byte \(start)) runs past the end of the file (\(file.size) bytes)")
        }
        return Entry(name: name, method: method, raw: start..<(start + Int(compressedSize)))
    }

    /// Where the sizes or the offset are saturated, the ZIP64 extra field holds them, in order.
    private static func readZip64Extra(_ extra: inout ByteCursor, size: inout UInt64, compressedSize: inout UInt64,
                                       localOffset: inout UInt64) throws {
        while extra.remaining >= 4 {
            let id = try extra.uint16(), length = Int(try extra.uint16())
            var field = ByteCursor(file: extra.file, range: extra.position..<(extra.position + min(length, extra.remaining)))
            _ = try extra.bytes(length)
            guard id == 0x0001 else { continue }
            if size == 0xFFFF_FFFF { size = try field.uint64() }
            if compressedSize == 0xFFFF_FFFF { compressedSize = try field.uint64() }
            if localOffset == 0xFFFF_FFFF { localOffset = try field.uint64() }
        }
    }

    /// The offset of an entry's data: past its local header, whose own name and extra lengths
    /// count (torch pads the local extra field so that storages start 64-byte aligned).
    private static func dataStart(of name: String, localHeader: UInt64, in file: MappedFile) throws -> Int {
        guard localHeader <= UInt64(file.size), UInt64(file.size) - localHeader >= 30 else {
            throw GraftError(.badInput, "zip entry '\(name)': its local header (at byte \(localHeader)) lies past the end of the file (\(file.size) bytes)")
        }
        var cursor = ByteCursor(file: file, range: Int(localHeader)..<file.size)
        do {
            guard try cursor.uint32() == localSignature else {
                throw GraftError(.badInput, "zip entry '\(name)': no local header at byte \(localHeader)")
            }
            _ = try cursor.bytes(22)
            let nameLength = Int(try cursor.uint16()), extraLength = Int(try cursor.uint16())
            let localName = String(decoding: try cursor.bytes(nameLength), as: UTF8.self)
            guard localName == name else {
                throw GraftError(.badInput, "zip entry '\(name)': its local header names it '\(localName)'")
            }
            _ = try cursor.bytes(extraLength)
            return cursor.position
        } catch is ByteCursor.EndOfData {
            throw GraftError(.badInput, "zip entry '\(name)': its local header runs past the end of the file (\(file.size) bytes)")
        }
    }

    /// Refuses names that would leave the archive if extracted: absolute or with `..` parts.
    private static func checkName(_ name: String) throws {
        if name.hasPrefix("/") || name.hasPrefix("\\") {
            throw GraftError(.badInput, "zip entry '\(name)' has an absolute name")
        }
        if name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).contains("..") {
            throw GraftError(.badInput, "zip entry '\(name)' has a '..' in its name")
        }
    }
}
