/// A fast 64-bit non-cryptographic hash of bytes, strings and numbers: the key of a feature
/// cache and the checksum of Graft's training files.
///
/// Each 8-byte word `w` updates the state as `h ← (h ⊕ (w ⊕ w≫32)·k₁)·k₂` with odd `k₁, k₂`: for a
/// fixed state that is a bijection of the word, so changing any one word (a flipped bit, a
/// truncated float) always changes the result.
struct ContentHash {
    private var state: UInt64 = 0x243F_6A88_85A3_08D3
    private var length: UInt64 = 0

    private static let k1: UInt64 = 0xD6E8_FEB8_6659_FD93
    private static let k2: UInt64 = 0x9E37_79B9_7F4A_7C15

    private mutating func word(_ w: UInt64) {
        state = (state ^ ((w ^ (w >> 32)) &* Self.k1)) &* Self.k2
        state ^= state >> 29
    }

    mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        length &+= UInt64(count)
        var i = 0
        while i + 8 <= count {
            word(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < count {
            tail |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        // The tail is tagged with its length so that trailing zero bytes still count.
        word(tail ^ (UInt64(count % 8) << 56))
    }

    mutating func combine(_ string: String) {
        var s = string
        s.withUTF8 { combine(UnsafeRawBufferPointer($0)) }
    }

    mutating func combine(_ value: Int) {
        withUnsafeBytes(of: Int64(value).littleEndian) { combine($0) }
    }

    mutating func combine(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { combine($0) }
    }

    /// The hash of everything combined so far.
    var value: UInt64 {
        var h = state ^ length &* Self.k1
        h = (h ^ (h >> 31)) &* Self.k2
        return h ^ (h >> 33)
    }

    /// `value` as 16 lowercase hex digits.
    var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = ContentHash()
        h.combine(bytes)
        return h.value
    }
}
