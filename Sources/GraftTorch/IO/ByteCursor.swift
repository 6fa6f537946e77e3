import GraftCore

/// Reads little-endian integers and byte runs from a range of a mapped file, every read checked
/// to stay inside the range.
struct ByteCursor {
    let file: MappedFile
    /// The bytes this cursor may read, as offsets into the file.
    let range: Range<Int>
    /// The offset of the next byte to read.
    private(set) var position: Int

    init(file: MappedFile, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= file.size, "range \(range) outside the file")
        self.file = file
        self.range = range
        self.position = range.lowerBound
    }

    var remaining: Int { range.upperBound - position }

    /// The next `count` bytes, skipped over.
    mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else { throw EndOfData() }
        defer { position += count }
        return UnsafeRawBufferPointer(start: file.bytes + position, count: count)
    }

    mutating func uint8() throws -> UInt8 { try bytes(1)[0] }
    mutating func uint16() throws -> UInt16 { UInt16(try littleEndian(2)) }
    mutating func uint32() throws -> UInt32 { UInt32(try littleEndian(4)) }
    mutating func uint64() throws -> UInt64 { try littleEndian(8) }

    /// The bytes up to the next newline (not included), which must come within `limit` bytes.
    mutating func line(limit: Int = 256) throws -> UnsafeRawBufferPointer {
        let window = UnsafeRawBufferPointer(start: file.bytes + position, count: min(remaining, limit + 1))
        guard let end = window.firstIndex(of: UInt8(ascii: "\n")) else { throw EndOfData() }
        let text = try bytes(end)
        position += 1
        return text
    }

    private mutating func littleEndian(_ count: Int) throws -> UInt64 {
        let raw = try bytes(count)
        var value: UInt64 = 0
        for i in (0..<count).reversed() { value = value << 8 | UInt64(raw[i]) }
        return value
    }

    /// Thrown when a read would pass the end of the range; callers say what was being read.
    struct EndOfData: Error {}
}
