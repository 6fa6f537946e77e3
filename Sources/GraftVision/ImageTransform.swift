import GraftCore

/// torchvision's ImageNet evaluation transform, exactly:
/// `Compose([Resize(resize), CenterCrop(crop), ToTensor(), Normalize(mean, std)])` on an RGB image.
///
/// The shorter side is resized to `resize` (the longer to `⌊resize · long / short⌋`) with PIL's
/// antialiased bilinear filter, the centre `crop`×`crop` is cut at
/// `round((side - crop) / 2)` (Python's `round`, halves to even), and each channel becomes
/// `(v / 255 - mean[c]) / std[c]`: a float32 `[3, crop, crop]` tensor.
public struct ImageTransform: Sendable, Equatable {
    /// The length the shorter side is resized to.
    public let resize: Int
    /// The side of the square cut from the centre (and of the random crop when augmenting).
    public let crop: Int
    /// The per-channel (R, G, B) mean subtracted after scaling to [0, 1].
    public let mean: [Float]
    /// The per-channel (R, G, B) standard deviation divided by.
    public let std: [Float]

    /// The ImageNet statistics torchvision's pretrained models were trained with.
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    public init(resize: Int = 256, crop: Int = 224, mean: [Float] = imageNetMean, std: [Float] = imageNetStd) {
        precondition(resize > 0 && crop > 0, "resize (\(resize)) and crop (\(crop)) must be positive")
        precondition(crop <= resize, "a \(crop)-pixel crop does not fit in a \(resize)-pixel shorter side")
        precondition(mean.count == 3 && std.count == 3, "mean and std need three values (R, G, B)")
        precondition(std.allSatisfy { $0 > 0 }, "std must be positive")
        self.resize = resize
        self.crop = crop
        self.mean = mean
        self.std = std
    }

    /// The evaluation transform of one image: a `[3, crop, crop]` tensor.
    public func callAsFunction(_ image: RGBImage) -> Tensor {
        var out = Tensor(uninitialized: [3, crop, crop])
        out.withUnsafeMutableBufferPointer(as: Float.self) { write(image, to: $0.baseAddress!) }
        return out
    }

    /// The evaluation transform of several images, stacked: a `[N, 3, crop, crop]` tensor.
    public func callAsFunction(_ images: [RGBImage]) -> Tensor {
        let size = 3 * crop * crop
        var out = Tensor(uninitialized: [images.count, 3, crop, crop])
        out.withUnsafeMutableBufferPointer(as: Float.self) { buffer in
            let base = buffer.baseAddress!
            Parallel.forEach(images.count) { write(images[$0], to: base + $0 * size) }
        }
        return out
    }

    /// torchvision's `Resize(resize)` output size for a `width`×`height` image.
    func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let short = min(width, height), long = max(width, height)
        // Python's int(resize * long / short): a float division, truncated.
        let newLong = Int(Double(resize * long) / Double(short))
        return width <= height ? (resize, newLong) : (newLong, resize)
    }

    /// Writes the evaluation transform of `image` as `[3, crop, crop]` floats.
    func write(_ image: RGBImage, to out: UnsafeMutablePointer<Float>) {
        let (w, h) = resizedSize(width: image.width, height: image.height)
        let top = Int((Double(h - crop) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(w - crop) / 2).rounded(.toNearestOrEven))
        let pixels = Resampler.resize(image, region: (0, 0, image.width, image.height), to: w, h,
                                      window: (left, top, crop, crop))
        normalize(pixels, to: out)
    }

    /// `ToTensor` and `Normalize`: interleaved `crop`×`crop` RGB bytes to planar floats, in
    /// float32 arithmetic as torch does it.
    func normalize(_ pixels: [UInt8], flipped: Bool = false, to out: UnsafeMutablePointer<Float>) {
        let plane = crop * crop
        for c in 0..<3 {
            let m = mean[c], s = std[c]
            for y in 0..<crop {
                for x in 0..<crop {
                    let sx = flipped ? crop - 1 - x : x
                    out[c * plane + y * crop + x] = (Float(pixels[(y * crop + sx) * 3 + c]) / 255 - m) / s
                }
            }
        }
    }
}
