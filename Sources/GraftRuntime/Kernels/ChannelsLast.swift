import GraftCore

/// An activation in channels-last layout (NHWC): `n` images of `h`×`w` pixels with `c`
/// consecutive channels each, surrounded by a border of `border` zero pixels so that the
/// convolutions reading it need no bounds checks for their padding.
final class ChannelsLast {
    let n, h, w, c, border: Int
    let data: UnsafeMutablePointer<Float>
    /// Floats from one row of pixels to the next, and from one image to the next.
    let rowPitch, imagePitch: Int
    /// Whether `data` is this value's own heap memory (else a slot of a session's arena).
    private let owned: Bool

    /// The bytes a value of this size takes: the bordered pixels and 64 bytes of slack for the
    /// kernels' full-vector reads past the last channel.
    static func byteCount(n: Int, h: Int, w: Int, c: Int, border: Int) throws -> Int {
        let count = try Reference.checkedElementCount([n, h + 2 * border, w + 2 * border, c], .float32, op: "Conv")
        return max(count, 1) * 4 + 64
    }

    /// An uninitialized interior with a zeroed border, in `memory` (at least `byteCount` bytes,
    /// 64-byte aligned, owned by the caller and outliving the value) or on the heap.
    init(n: Int, h: Int, w: Int, c: Int, border: Int, memory: UnsafeMutableRawPointer? = nil) throws {
        (self.n, self.h, self.w, self.c, self.border) = (n, h, w, c, border)
        rowPitch = (w + 2 * border) * c
        imagePitch = (h + 2 * border) * rowPitch
        let bytes = try Self.byteCount(n: n, h: h, w: w, c: c, border: border)
        owned = memory == nil
        let raw = memory ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        data = raw.bindMemory(to: Float.self, capacity: bytes / 4)
        Self.fillBorder(data, with: 0, n: n, h: h, w: w, c: c, border: border, rowPitch: rowPitch, imagePitch: imagePitch)
    }

    /// Sets the border of `n` bordered images of `h`×`w` pixels of `c` elements (rows
    /// `rowPitch`, images `imagePitch` elements apart) to `value`, the interior untouched.
    static func fillBorder<T>(_ data: UnsafeMutablePointer<T>, with value: T, n: Int, h: Int, w: Int, c: Int, border: Int,
                              rowPitch: Int, imagePitch: Int) {
        guard border > 0 else { return }
        for b in 0..<n {
            let image = data + b * imagePitch
            image.update(repeating: value, count: border * rowPitch)
            (image + (border + h) * rowPitch).update(repeating: value, count: border * rowPitch)
            for y in 0..<h {
                let row = image + (border + y) * rowPitch
                row.update(repeating: value, count: border * c)
                (row + (border + w) * c).update(repeating: value, count: border * c)
            }
        }
    }

    deinit {
        if owned { UnsafeMutableRawPointer(data).deallocate() }
    }

    /// Pixel (y, x) of image b; y and x may reach `border` pixels outside the image.
    @inline(__always)
    func pixel(_ b: Int, _ y: Int, _ x: Int) -> UnsafeMutablePointer<Float> {
        data + b * imagePitch + (y + border) * rowPitch + (x + border) * c
    }

    /// Where the pixels are, as a plain value for the kernels' inner loops.
    struct Geometry {
        let data: UnsafeMutablePointer<Float>
        let imagePitch, rowPitch, c, border: Int

        @inline(__always)
        func pixel(_ b: Int, _ y: Int, _ x: Int) -> UnsafeMutablePointer<Float> {
            data + b * imagePitch + (y + border) * rowPitch + (x + border) * c
        }
    }

    var geometry: Geometry { Geometry(data: data, imagePitch: imagePitch, rowPitch: rowPitch, c: c, border: border) }

    var pixels: RawPixels { RawPixels(data: UnsafeMutableRawPointer(data), imagePitch: imagePitch, rowPitch: rowPitch, c: c, border: border, elementSize: 4) }

    /// The images, height, width and channels of an NCHW float tensor.
    /// - Throws: `GraftError` unless `t` is a 4-D float tensor.
    static func imageSize(of t: Tensor) throws -> (n: Int, h: Int, w: Int, c: Int) {
        guard t.dtype == .float32, t.rank == 4 else {
            throw GraftError(.badInput, "expected a 4-D float tensor, got \(t.dtype) \(t.shape)")
        }
        return (t.shape[0], t.shape[2], t.shape[3], t.shape[1])
    }

    /// An NCHW float tensor in channels-last layout with a border.
    convenience init(_ t: Tensor, border: Int) throws {
        let (n, h, w, c) = try Self.imageSize(of: t)
        try self.init(n: n, h: h, w: w, c: c, border: border)
        t.withUnsafeBufferPointer(as: Float.self) { src in
            let s = src.baseAddress!
            Parallel.forEach(n * h) { row in
                let b = row / h, y = row % h
                let dst = self.pixel(b, y, 0)
                for ch in 0..<c {
                    let line = s + ((b * c + ch) * h + y) * w
                    for x in 0..<w { dst[x * c + ch] = line[x] }
                }
            }
        }
    }

    /// The same values with another border.
    func withBorder(_ border: Int) throws -> ChannelsLast {
        let y = try ChannelsLast(n: n, h: h, w: w, c: c, border: border)
        for b in 0..<n {
            for r in 0..<h { y.pixel(b, r, 0).update(from: pixel(b, r, 0), count: w * c) }
        }
        return y
    }

    /// The values as an NCHW tensor.
    func tensor() -> Tensor {
        var t = Tensor(uninitialized: [n, c, h, w])
        t.withUnsafeMutableBufferPointer(as: Float.self) { dst in
            let d = dst.baseAddress!
            Parallel.forEach(n * h) { row in
                let b = row / h, y = row % h
                let src = self.pixel(b, y, 0)
                for ch in 0..<self.c {
                    let line = d + ((b * self.c + ch) * self.h + y) * self.w
                    for x in 0..<self.w { line[x] = src[x * self.c + ch] }
                }
            }
        }
        return t
    }
}

/// A channels-last value of any element type: floats (`ChannelsLast`) or quantized bytes
/// (`QuantizedActivation`), for the kernels that read or write either.
protocol ChannelsLastImage: AnyObject {
    var n: Int { get }
    var h: Int { get }
    var w: Int { get }
    var c: Int { get }
    var border: Int { get }
    var pixels: RawPixels { get }
}

extension ChannelsLast: ChannelsLastImage {}

/// Where a channels-last value's pixels are, whatever their element: pitches in elements of
/// `elementSize` bytes.
struct RawPixels {
    let data: UnsafeMutableRawPointer
    let imagePitch, rowPitch, c, border, elementSize: Int

    /// Pixel (y, x) of image b; y and x may reach `border` pixels outside the image.
    @inline(__always)
    func pixel(_ b: Int, _ y: Int, _ x: Int) -> UnsafeMutableRawPointer {
        data + (b * imagePitch + (y + border) * rowPitch + (x + border) * c) * elementSize
    }
}
