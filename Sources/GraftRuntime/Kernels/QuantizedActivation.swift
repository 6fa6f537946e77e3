import CKernels
import GraftCore

/// A quantized activation in channels-last layout: `ChannelsLast`'s pixels as u8, each the
/// integer of its value on the grid of `quantization` (an s8 grid shifted by 128, so the bytes
/// the int8 kernels multiply are unsigned either way). The border holds the zero point's byte:
/// the value 0, as padding must be.
final class QuantizedActivation {
    let n, h, w, c, border: Int
    let quantization: Plan.Quantization
    let data: UnsafeMutablePointer<UInt8>
    /// Bytes from one row of pixels to the next, and from one image to the next.
    let rowPitch, imagePitch: Int
    /// Whether `data` is this value's own heap memory (else a slot of a session's arena).
    private let owned: Bool

    /// The bytes a value of this size takes, with 64 of slack as `ChannelsLast` has.
    static func byteCount(n: Int, h: Int, w: Int, c: Int, border: Int) throws -> Int {
        let count = try Reference.checkedElementCount([n, h + 2 * border, w + 2 * border, c], .uint8, op: "Conv")
        return max(count, 1) + 64
    }

    /// An uninitialized interior with its border at the zero point, in `memory` (at least
    /// `byteCount` bytes, owned by the caller and outliving the value) or on the heap.
    init(n: Int, h: Int, w: Int, c: Int, border: Int, quantization: Plan.Quantization, memory: UnsafeMutableRawPointer? = nil) throws {
        (self.n, self.h, self.w, self.c, self.border, self.quantization) = (n, h, w, c, border, quantization)
        rowPitch = (w + 2 * border) * c
        imagePitch = (h + 2 * border) * rowPitch
        let bytes = try Self.byteCount(n: n, h: h, w: w, c: c, border: border)
        owned = memory == nil
        let raw = memory ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        data = raw.bindMemory(to: UInt8.self, capacity: bytes)
        ChannelsLast.fillBorder(data, with: quantization.zeroByte, n: n, h: h, w: w, c: c, border: border, rowPitch: rowPitch, imagePitch: imagePitch)
    }

    /// `x` quantized, border and all (its zeros become the zero point), in the same layout.
    init(quantizing x: ChannelsLast, _ quantization: Plan.Quantization) throws {
        (n, h, w, c, border, self.quantization) = (x.n, x.h, x.w, x.c, x.border, quantization)
        (rowPitch, imagePitch) = (x.rowPitch, x.imagePitch)
        owned = true
        data = .allocate(capacity: try Self.byteCount(n: n, h: h, w: w, c: c, border: border))
        let (lines, line) = (x.n * x.imagePitch / x.rowPitch, x.rowPitch)
        let (source, target) = (UnsafePointer(x.data), data)
        let (scale, zero) = (quantization.scale, Int32(quantization.zeroByte))
        Parallel.forEachRun(lines, minimumRun: max(1, (32 << 10) / max(line, 1))) { run in
            graft_avx512vnni_quantize(source + run.lowerBound * line, run.count * line, target + run.lowerBound * line, scale, zero)
        }
    }

    deinit {
        if owned { data.deallocate() }
    }

    /// The values as floats, channels-last with a border of `border`.
    func floats(border: Int) throws -> ChannelsLast {
        let y = try ChannelsLast(n: n, h: h, w: w, c: c, border: border)
        let (scale, zero) = (quantization.scale, Int32(quantization.zeroByte))
        Parallel.forEach(n * h) { row in
            let (b, r) = (row / h, row % h)
            graft_avx512vnni_dequantize(data + b * imagePitch + (r + self.border) * rowPitch + self.border * c, w * c, y.pixel(b, r, 0), scale, zero)
        }
        return y
    }

    var pixels: RawPixels { RawPixels(data: UnsafeMutableRawPointer(data), imagePitch: imagePitch, rowPitch: rowPitch, c: c, border: border, elementSize: 1) }
}

extension QuantizedActivation: ChannelsLastImage {}

extension Plan.Quantization {
    /// The byte of the value 0: the zero point, shifted by 128 for s8.
    var zeroByte: UInt8 { UInt8(zeroPoint + (signed ? 128 : 0)) }
}
