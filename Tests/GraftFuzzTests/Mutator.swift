import GraftTestSupport

/// Seeded mutations of a file's bytes: the blind ones (bit flips, insertions, deletions,
/// truncations, overwrites) and, for protobuf, ones that keep the wire format valid while
/// smashing a value (a varint set to 2^63, a location set to `../../etc/passwd`, a field
/// dropped or repeated).
struct Mutator {
    var random: SeededGenerator

    init(seed: UInt64) {
        random = SeededGenerator(seed: seed)
    }

    mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }
    mutating func pick<T>(_ items: [T]) -> T { items[int(0..<items.count)] }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }

    /// Varint values that sit on the edges of the checks: signs, 2^31, 2^32, 2^63.
    static let interestingVarints: [UInt64] = [
        0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 64, 127, 128, 255, 256, 1000, 65535, 65536,
        1 << 20, 1 << 24, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 40, 1 << 48, 1 << 62,
        UInt64(Int64.max), 1 << 63, UInt64.max, UInt64.max - 1, UInt64.max - 3, UInt64(bitPattern: -(1 << 31)),
    ]

    /// Strings for names, locations, offsets and lengths.
    static let interestingStrings: [String] = [
        "", "x", "input", "output", "../../etc/passwd", "/etc/passwd", "..", ".", "a/../../b", "/", "%s%n",
        "-1", "0", "18446744073709551615", "9223372036854775807", "99999999999999999999", "1e9", "location", "offset",
        "length", "Conv", "Reshape", "ConstantOfShape", "Pad", "Slice", "Gather", "MaxPool", "Einsum", "ai.onnx", "com.microsoft",
    ]

    /// One to three blind mutations of `data`; with `sameSize`, only those that keep its size
    /// (HDF5 refuses a file whose size is not the one its superblock records).
    mutating func blind(_ data: [UInt8], sameSize: Bool = false) -> (bytes: [UInt8], what: String) {
        var d = data
        var what: [String] = []
        for _ in 0..<int(1..<4) {
            guard !d.isEmpty else { break }
            switch sameSize ? pick([0, 4, 6]) : int(0..<6) {
            case 0:
                let flips = int(1..<9)
                for _ in 0..<flips { d[int(0..<d.count)] ^= UInt8(1) << UInt8(int(0..<8)) }
                what.append("\(flips) bit flips")
            case 1:
                let at = int(0..<(d.count + 1)), n = pick([1, 2, 4, 8, 64, 1024])
                d.insert(contentsOf: bytes(n), at: at)
                what.append("insert \(n) at \(at)")
            case 2:
                let at = int(0..<d.count), n = min(pick([1, 2, 4, 8, 64, 1024]), d.count - at)
                d.removeSubrange(at..<(at + n))
                what.append("delete \(n) at \(at)")
            case 3:
                let at = int(0..<d.count)
                d.removeSubrange(at...)
                what.append("truncate at \(at)")
            case 4:
                let at = int(0..<d.count), n = min(pick([1, 4, 8, 16]), d.count - at)
                let value: [UInt8] = pick([[UInt8](repeating: 0xFF, count: n), [UInt8](repeating: 0, count: n), bytes(n)])
                d.replaceSubrange(at..<(at + n), with: value)
                what.append("overwrite \(n) at \(at)")
            case 5:
                let at = int(0..<d.count), n = min(int(1..<256), d.count - at)
                let chunk = Array(d[at..<(at + n)])
                d.insert(contentsOf: chunk, at: int(0..<(d.count + 1)))
                what.append("repeat \(n) bytes from \(at)")
            default:
                let from = int(0..<d.count), to = int(0..<d.count), n = min(int(1..<64), d.count - from, d.count - to)
                d.replaceSubrange(to..<(to + n), with: Array(d[from..<(from + n)]))
                what.append("copy \(n) bytes from \(from) to \(to)")
            }
        }
        return (d, what.joined(separator: ", "))
    }

    /// One to three mutations of fields of a parsed protobuf, written back with valid lengths.
    mutating func structured(_ message: WireMessage) -> (bytes: [UInt8], what: String) {
        var m = message
        var what: [String] = []
        for _ in 0..<int(1..<4) {
            let paths = m.paths()
            guard !paths.isEmpty else { break }
            let path = pick(paths)
            let field = m[path[...]]
            let at = path.map(String.init).joined(separator: ".")
            switch (field.payload, int(0..<10)) {
            case (_, 0):
                m.remove(at: path[...])
                what.append("drop field \(at)")
            case (_, 1):
                m.duplicate(at: path[...])
                what.append("repeat field \(at)")
            case (.varint(let old), _):
                let value: UInt64 = chance(0.7) ? pick(Self.interestingVarints) : old &+ UInt64(bitPattern: Int64(int(-3..<4)))
                var f = field
                f.payload = .varint(value)
                m[path[...]] = f
                what.append("varint \(at) = \(Int64(bitPattern: value))")
            case (.fixed32, _):
                var f = field
                f.payload = .fixed32(pick([Float.nan, .infinity, -.infinity, 0, -0.0, 1e38, -1e-38, 1]).bitPattern)
                m[path[...]] = f
                what.append("float \(at)")
            case (.bytes(let old), _):
                var f = field
                if chance(0.6) {
                    let s = pick(Self.interestingStrings)
                    f.payload = .bytes(Array(s.utf8))
                    what.append("bytes \(at) = '\(s)'")
                } else if !old.isEmpty {
                    var b = old
                    switch int(0..<3) {
                    case 0: b[int(0..<b.count)] ^= UInt8(1) << UInt8(int(0..<8))
                    case 1: b.removeSubrange(int(0..<b.count)...)
                    default: b += bytes(int(1..<9))
                    }
                    f.payload = .bytes(b)
                    what.append("bytes \(at) changed")
                }
                m[path[...]] = f
            default:
                break
            }
        }
        return (m.serialized(), what.joined(separator: ", "))
    }
}
