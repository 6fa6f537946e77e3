import GraftCore
@_exported import struct GraftCore.SeededGenerator

extension SeededGenerator {
    /// A float32 tensor of uniform values in [-1, 1).
    public mutating func tensor(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, floats: (0..<shape.elementCount).map { _ in Float(uniform(in: -1...1)) })
    }
}
