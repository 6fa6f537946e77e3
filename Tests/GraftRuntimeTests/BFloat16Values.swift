import GraftCore
@testable import GraftRuntime
import XCTest

/// Values on bfloat16's grid, for the bf16 kernels' tests.
extension XCTestCase {
    /// `f` rounded to bfloat16 as `vcvtne2ps2bf16` rounds: to the nearest of the values with 8
    /// significant bits, ties to the even one; a denormal input counts as zero (its sign kept).
    func bfloat16(_ f: Float) -> Float {
        if f.isNaN { return f }
        if f.isSubnormal { return Float(bitPattern: f.bitPattern & 0x8000_0000) }
        let bits = f.bitPattern
        return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
    }

    /// A tensor of the same shape with `f` applied to each value.
    func mapped(_ t: Tensor, _ f: (Float) -> Float) -> Tensor { Tensor(shape: t.shape, floats: t.floats.map(f)) }

    /// `x`'s values (already bfloat16) as a `BF16Activation` with `x`'s border.
    func halves(_ x: ChannelsLast) throws -> BF16Activation {
        let y = try BF16Activation(n: x.n, h: x.h, w: x.w, c: x.c, border: x.border)
        for b in 0..<x.n {
            for r in 0..<x.h {
                let (source, target) = (x.pixel(b, r, 0), y.data + b * y.imagePitch + (r + y.border) * y.rowPitch + y.border * y.c)
                for i in 0..<x.w * x.c { target[i] = UInt16(source[i].bitPattern >> 16) }
            }
        }
        return y
    }
}
