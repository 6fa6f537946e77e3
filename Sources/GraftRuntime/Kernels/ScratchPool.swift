import Synchronization

/// Memory a kernel borrows for one call (Winograd's transformed tiles and products, a product's
/// gathered windows and partial sums) and gives back for the next call, instead of to the system.
///
/// Freed, a block of a few MiB allocated on a worker thread went back to the system in some
/// processes and not in others (glibc trims a thread's heap), and every call then faulted its pages
/// in again, zeroed: f32 ResNet-50 at batch 1 on two threads ran 16 or 24 ms depending on the
/// process (215,000 page faults in 60 runs against 59,000), layer1's and layer2's Winograd steps
/// 0.3 ms or 0.65. Kept here, a buffer is faulted in once.
final class ScratchPool: @unchecked Sendable {
    static let shared = ScratchPool()

    /// Bytes kept for later calls at most; the rest goes back to the system.
    let keep: Int
    private let free = Mutex<[Buffer]>([])

    struct Buffer {
        let base: UnsafeMutableRawPointer
        let capacity: Int
    }

    init(keep: Int = 96 << 20) { self.keep = keep }

    /// At least `bytes` bytes, 64-byte aligned: the smallest kept buffer that holds them, or new.
    func borrow(_ bytes: Int) -> Buffer {
        let kept = free.withLock { free -> Buffer? in
            guard let i = free.indices.filter({ free[$0].capacity >= bytes }).min(by: { free[$0].capacity < free[$1].capacity }) else { return nil }
            return free.remove(at: i)
        }
        if let kept { return kept }
        // Whole 64 KiB, so that slightly different sizes share buffers.
        let rounded = (max(bytes, 1) + (64 << 10) - 1) / (64 << 10) * (64 << 10)
        return Buffer(base: .allocate(byteCount: rounded, alignment: 64), capacity: rounded)
    }

    /// Takes `buffer` back; the largest kept ones go back to the system while more than `keep`
    /// bytes are kept.
    func giveBack(_ buffer: Buffer) {
        let released = free.withLock { free -> [Buffer] in
            free.append(buffer)
            var released: [Buffer] = []
            free.sort { $0.capacity < $1.capacity }
            while free.reduce(0, { $0 + $1.capacity }) > keep, let last = free.popLast() { released.append(last) }
            return released
        }
        for b in released { b.base.deallocate() }
    }
}

/// Arrays in one buffer borrowed from `ScratchPool.shared` for as long as this object lives.
final class ScratchMemory {
    private let buffer: ScratchPool.Buffer
    private let offsets: [Int]
    private let arrays: [(stride: Int, count: Int)]

    /// Room for `arrays` (`count` elements of `stride` bytes each), one after another, each
    /// 64-byte aligned.
    init(_ arrays: [(stride: Int, count: Int)]) {
        var offsets: [Int] = [], bytes = 0
        for a in arrays {
            offsets.append(bytes)
            bytes += (a.count * a.stride + 63) / 64 * 64
        }
        (self.offsets, self.arrays) = (offsets, arrays)
        buffer = ScratchPool.shared.borrow(bytes)
    }

    deinit { ScratchPool.shared.giveBack(buffer) }

    /// Array `i`, of elements of `T` (its stride the one given for it).
    func array<T>(_ i: Int, of _: T.Type) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.stride == arrays[i].stride)
        return (buffer.base + offsets[i]).bindMemory(to: T.self, capacity: arrays[i].count)
    }
}
