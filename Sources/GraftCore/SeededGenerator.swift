/// A small seeded generator (SeededGenerator): the same numbers from the same seed, everywhere.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for item `index` of a stream seeded with `seed`, independent of the others.
    public init(seed: UInt64, stream index: Int) {
        var mixer = SeededGenerator(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD2B7_4407_B1CE_6E93))
        state = mixer.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    /// A uniform draw from `range`, from 53 random bits: defined here rather than by the standard
    /// library, whose algorithm may change, so seeded runs repeat across toolchains.
    public mutating func uniform(in range: ClosedRange<Double>) -> Double {
        let unit = Double(next() >> 11) * 0x1p-53
        return range.lowerBound + (range.upperBound - range.lowerBound) * unit
    }

    /// A uniform integer in `0..<bound` (Lemire's multiply-shift; its bias, at most `bound` / 2⁶⁴, is negligible).
    public mutating func integer(below bound: Int) -> Int {
        precondition(bound > 0, "no integer below \(bound)")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}
