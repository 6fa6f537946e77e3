import GraftCore

/// What a training run draws random numbers for; with the seed and an epoch it picks the stream.
enum RandomPurpose: Int {
    case initialization = 1
    case shuffle = 2
    case dropout = 3
}

extension SeededGenerator {
    /// The stream for `purpose` in `epoch` of a run seeded with `seed`, so that the head's
    /// initialization, each epoch's shuffle and each epoch's dropout masks are independent and
    /// a resumed run draws exactly what the uninterrupted run would have drawn.
    init(seed: UInt64, purpose: RandomPurpose, epoch: Int = 0) {
        self.init(seed: seed, stream: purpose.rawValue << 32 | Int(UInt32(truncatingIfNeeded: epoch)))
    }

    /// A float uniform in [low, high].
    mutating func uniform(_ low: Float, _ high: Float) -> Float {
        Float(uniform(in: Double(low)...Double(high)))
    }

    /// `0..<count` in a uniformly random order (Fisher–Yates).
    mutating func permutation(_ count: Int) -> [Int] {
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, integer(below: i + 1)) }
        return order
    }
}
