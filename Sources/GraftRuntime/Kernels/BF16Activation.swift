import CKernels
import GraftCore

/// An activation in channels-last layout stored in bfloat16: `ChannelsLast`'s pixels, each value
/// rounded to bfloat16 (to nearest even), as bf16 steps pass them to one another. A bf16 product
/// rounds its operands to bfloat16 anyway, so a reader of these gets the same products at half
/// the bytes; what a reader adds them to (a residual) is rounded where f32 would not be. The
/// border is zeros, as padding must be.
final class BF16Activation {
    let n, h, w, c, border: Int
    let data: UnsafeMutablePointer<UInt16>
    /// Elements from one row of pixels to the next, and from one image to the next.
    let rowPitch, imagePitch: Int
    /// Whether `data` is this value's own heap memory (else a slot of a session's arena).
    private let owned: Bool

    /// The bytes a value of this size takes, with 64 of slack as `ChannelsLast` has.
    static func byteCount(n: Int, h: Int, w: Int, c: Int, border: Int) throws -> Int {
        let count = try Reference.checkedElementCount([n, h + 2 * border, w + 2 * border, c], .float16, op: "Conv")
        return max(count, 1) * 2 + 64
    }

    /// An uninitialized interior with a zeroed border, in `memory` (at least `byteCount` bytes,
    /// owned by the caller and outliving the value) or on the heap.
    init(n: Int, h: Int, w: Int, c: Int, border: Int, memory: UnsafeMutableRawPointer? = nil) throws {
        (self.n, self.h, self.w, self.c, self.border) = (n, h, w, c, border)
        rowPitch = (w + 2 * border) * c
        imagePitch = (h + 2 * border) * rowPitch
        let bytes = try Self.byteCount(n: n, h: h, w: w, c: c, border: border)
        owned = memory == nil
        let raw = memory ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        data = raw.bindMemory(to: UInt16.self, capacity: bytes / 2)
        ChannelsLast.fillBorder(data, with: 0, n: n, h: h, w: w, c: c, border: border, rowPitch: rowPitch, imagePitch: imagePitch)
    }

    deinit {
        if owned { UnsafeMutableRawPointer(data).deallocate() }
    }

    /// An NCHW float tensor in channels-last layout with a border, each value rounded to
    /// bfloat16 (AVX512_BF16's rounding, as a bf16 product rounds the floats it reads).
    convenience init(_ t: Tensor, border: Int) throws {
        let (n, h, w, c) = try ChannelsLast.imageSize(of: t)
        try self.init(n: n, h: h, w: w, c: c, border: border)
        t.withUnsafeBufferPointer(as: Float.self) { src in
            let s = src.baseAddress!
            Parallel.forEach(n * h) { row in
                let (b, y) = (row / h, row % h)
                graft_avx512bf16_interleave(s + (b * c * h + y) * w, h * w, c, w, self.pixel(b, y, 0))
            }
        }
    }

    /// The values as floats (exactly), channels-last with a border of `border`.
    func floats(border: Int) throws -> ChannelsLast {
        let y = try ChannelsLast(n: n, h: h, w: w, c: c, border: border)
        Parallel.forEach(n * h) { row in
            let (b, r) = (row / h, row % h)
            let source = pixel(b, r, 0), target = y.pixel(b, r, 0)
            for i in 0..<w * c { target[i] = Float(bitPattern: UInt32(source[i]) << 16) }
        }
        return y
    }

    var pixels: RawPixels { RawPixels(data: UnsafeMutableRawPointer(data), imagePitch: imagePitch, rowPitch: rowPitch, c: c, border: border, elementSize: 2) }

    /// Pixel (y, x) of image b; y and x may reach `border` pixels outside the image.
    func pixel(_ b: Int, _ y: Int, _ x: Int) -> UnsafeMutablePointer<UInt16> {
        pixels.pixel(b, y, x).assumingMemoryBound(to: UInt16.self)
    }
}

extension BF16Activation: ChannelsLastImage {}
