import GraftCore

/// Floats owned by a kernel (packed weights, a bias padded to whole strips), zero-filled.
final class FloatBuffer {
    let base: UnsafeMutablePointer<Float>

    /// Aligned to cache lines: the kernels' vector loads of packed weights never straddle two.
    init(zeros count: Int) {
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: count)
    }

    /// A float tensor's values followed by zeros up to `count`.
    convenience init(_ tensor: Tensor, paddedTo count: Int) {
        self.init(zeros: count)
        tensor.withUnsafeBufferPointer(as: Float.self) { base.update(from: $0.baseAddress!, count: min($0.count, count)) }
    }

    deinit { base.deallocate() }
}
