/// Antialiased bilinear resizing, the arithmetic of PIL's `Image.resize(size, BILINEAR)`, which
/// torchvision's `Resize` runs on PIL images.
///
/// Per axis, output pixel `o` of `n` taken from an input range of length `L` is centred at
/// `c = (o + 0.5) · s` with `s = L / n`; when shrinking, the triangle filter is widened by
/// `f = max(s, 1)`, so the inputs `i` within `c ± f` weigh `max(0, 1 - |i + 0.5 - c| / f)`,
/// normalized to sum to 1 and rounded to 22-bit fixed point. One pass per axis, each rounding to
/// 8 bits, in the order Pillow 13 takes them: the same roundings as PIL, so the bytes agree.
enum Resampler {
    /// Fixed-point weights for one axis, for a window of output positions.
    struct Axis {
        /// Per output position in the window: the first input it reads and how many.
        var first: [Int] = []
        var count: [Int] = []
        /// `window.count` rows of `stride` weights each, `count[o]` of them used.
        var weights: [Int32] = []
        var stride = 0

        static let precisionBits = 22

        /// The inputs any output of the window reads: `start..<end`.
        var span: (start: Int, end: Int) {
            (first.min()!, zip(first, count).map { $0 + $1 }.max()!)
        }

        /// The weights of outputs `window` of `outputSize` drawn from inputs `0..<inputSize`.
        init(inputSize: Int, outputSize: Int, window: Range<Int>) {
            let scale = Double(inputSize) / Double(outputSize)
            let filterScale = max(scale, 1.0)
            let support = filterScale  // the triangle's support, 1, widened
            stride = Int(support.rounded(.up)) * 2 + 1
            let inverse = 1.0 / filterScale
            var row = [Double](repeating: 0, count: stride)
            for o in window {
                let center = (Double(o) + 0.5) * scale
                // C's truncating conversions, as PIL computes the bounds.
                let lo = max(Int(center - support + 0.5), 0)
                let hi = min(Int(center + support + 0.5), inputSize)
                var total = 0.0
                for k in 0..<(hi - lo) {
                    let w = max(0, 1 - abs((Double(k + lo) - center + 0.5) * inverse))
                    row[k] = w
                    total += w
                }
                first.append(lo)
                count.append(hi - lo)
                for k in 0..<stride {
                    let w = k < hi - lo && total != 0 ? row[k] / total : 0
                    let scaled = w * Double(1 << Self.precisionBits)
                    weights.append(Int32(scaled < 0 ? scaled - 0.5 : scaled + 0.5))
                }
            }
        }
    }

    /// The pixels of `window` of `source` resized to `outputWidth`×`outputHeight` (resizing only
    /// the part `region` of the source, which is how a crop before a resize is done).
    ///
    /// - Parameters:
    ///   - region: the source rectangle to resize, `(x, y, width, height)` in source pixels.
    ///   - window: the part of the resized picture wanted, `(x, y, width, height)`.
    static func resize(_ source: RGBImage, region: (x: Int, y: Int, width: Int, height: Int),
                       to outputWidth: Int, _ outputHeight: Int,
                       window: (x: Int, y: Int, width: Int, height: Int)) -> [UInt8] {
        precondition(region.x >= 0 && region.y >= 0 && region.width > 0 && region.height > 0
                     && region.x + region.width <= source.width && region.y + region.height <= source.height,
                     "region \(region) outside a \(source.width)x\(source.height) image")
        precondition(window.x >= 0 && window.y >= 0 && window.width > 0 && window.height > 0
                     && window.x + window.width <= outputWidth && window.y + window.height <= outputHeight,
                     "window \(window) outside \(outputWidth)x\(outputHeight)")
        let horizontal = Axis(inputSize: region.width, outputSize: outputWidth, window: window.x..<(window.x + window.width))
        let vertical = Axis(inputSize: region.height, outputSize: outputHeight, window: window.y..<(window.y + window.height))
        // Pillow 13 runs the vertical pass first when the height loses more than twice as many
        // pixels as the width (python-pillow/Pillow#9549; this rule is the one its output follows
        // at the boundaries we measured), and the intermediate rounding then differs.
        let verticalFirst = outputHeight < region.height && region.height - outputHeight > 2 * (region.width - outputWidth)
        return source.pixels.withUnsafeBufferPointer { src in
            if verticalFirst {
                let columns = horizontal.span
                let middle = verticalPass(src, stride: source.width, origin: (region.x + columns.start, region.y),
                                          columns: columns.end - columns.start, axis: vertical)
                return middle.withUnsafeBufferPointer {
                    horizontalPass($0, stride: columns.end - columns.start, origin: (-columns.start, 0),
                                   rows: window.height, axis: horizontal)
                }
            }
            let rows = vertical.span
            let middle = horizontalPass(src, stride: source.width, origin: (region.x, region.y + rows.start),
                                        rows: rows.end - rows.start, axis: horizontal)
            return middle.withUnsafeBufferPointer {
                verticalPass($0, stride: window.width, origin: (0, -rows.start), columns: window.width, axis: vertical)
            }
        }
    }

    /// Output `(r, o)` = Σₖ `src[origin.y + r][origin.x + first[o] + k]` · weight, for `rows` rows:
    /// `rows` × `axis.first.count` pixels.
    private static func horizontalPass(_ src: UnsafeBufferPointer<UInt8>, stride: Int, origin: (x: Int, y: Int),
                                       rows: Int, axis: Axis) -> [UInt8] {
        let width = axis.first.count
        var out = [UInt8](repeating: 0, count: rows * width * 3)
        out.withUnsafeMutableBufferPointer { dst in
            axis.weights.withUnsafeBufferPointer { w in
                for r in 0..<rows {
                    let row = ((origin.y + r) * stride + origin.x) * 3
                    for o in 0..<width {
                        var red = half, green = half, blue = half
                        let base = row + axis.first[o] * 3, wBase = o * axis.stride
                        for k in 0..<axis.count[o] {
                            let weight = w[wBase + k], at = base + 3 * k
                            red &+= Int32(src[at]) &* weight
                            green &+= Int32(src[at + 1]) &* weight
                            blue &+= Int32(src[at + 2]) &* weight
                        }
                        let to = (r * width + o) * 3
                        dst[to] = clip8(red)
                        dst[to + 1] = clip8(green)
                        dst[to + 2] = clip8(blue)
                    }
                }
            }
        }
        return out
    }

    /// Output `(o, c)` = Σₖ `src[origin.y + first[o] + k][origin.x + c]` · weight, for `columns`
    /// columns: `axis.first.count` × `columns` pixels.
    private static func verticalPass(_ src: UnsafeBufferPointer<UInt8>, stride: Int, origin: (x: Int, y: Int),
                                     columns: Int, axis: Axis) -> [UInt8] {
        let height = axis.first.count, samples = columns * 3
        var out = [UInt8](repeating: 0, count: height * samples)
        var sums = [Int32](repeating: 0, count: samples)
        out.withUnsafeMutableBufferPointer { dst in
            sums.withUnsafeMutableBufferPointer { sum in
                axis.weights.withUnsafeBufferPointer { w in
                    for o in 0..<height {
                        for i in 0..<samples { sum[i] = half }
                        for k in 0..<axis.count[o] {
                            let weight = w[o * axis.stride + k]
                            let row = ((origin.y + axis.first[o] + k) * stride + origin.x) * 3
                            for i in 0..<samples { sum[i] &+= Int32(src[row + i]) &* weight }
                        }
                        for i in 0..<samples { dst[o * samples + i] = clip8(sum[i]) }
                    }
                }
            }
        }
        return out
    }

    /// Rounding offset of the fixed-point sums: one half.
    private static let half = Int32(1 << (Axis.precisionBits - 1))

    @inline(__always)
    private static func clip8(_ value: Int32) -> UInt8 {
        UInt8(clamping: value >> Int32(Axis.precisionBits))
    }
}
