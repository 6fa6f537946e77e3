/// Offsets of activations in one buffer, planned from their lifetimes: two values share bytes
/// only when one dies before the other is made.
public struct ActivationArena: Sendable, Equatable {
    /// A value, its size, and the steps it lives through (made at `first`, last read at `last`).
    public struct Lifetime: Sendable, Equatable {
        public var value: String
        public var bytes: Int
        public var first: Int
        public var last: Int
    }

    /// Each value's offset in bytes, 64-byte aligned.
    public let offsets: [String: Int]
    /// The bytes of each value placed.
    public let sizes: [String: Int]
    /// The buffer's size: the most bytes alive at once, as placed.
    public let byteCount: Int

    /// Places the largest values first, each at the lowest offset where it overlaps no value
    /// whose lifetime overlaps its own (a greedy best fit, as memory planners of inference
    /// runtimes do).
    init(_ lifetimes: [Lifetime]) {
        let ordered = lifetimes.sorted { ($0.bytes, $1.first) > ($1.bytes, $0.first) }
        var placed: [(lifetime: Lifetime, offset: Int)] = []
        var offsets: [String: Int] = [:], sizes: [String: Int] = [:]
        var end = 0
        for value in ordered {
            let size = (value.bytes + 63) / 64 * 64
            let busy = placed.filter { $0.lifetime.first <= value.last && value.first <= $0.lifetime.last }
                .map { (start: $0.offset, end: $0.offset + ($0.lifetime.bytes + 63) / 64 * 64) }
                .sorted { $0.start < $1.start }
            var offset = 0
            for range in busy {
                if offset + size <= range.start { break }
                offset = max(offset, range.end)
            }
            placed.append((value, offset))
            offsets[value.value] = offset
            sizes[value.value] = value.bytes
            end = max(end, offset + size)
        }
        self.offsets = offsets
        self.sizes = sizes
        byteCount = end
    }
}
