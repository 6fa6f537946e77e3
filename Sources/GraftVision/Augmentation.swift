import Foundation

/// torchvision's training augmentation, `RandomResizedCrop(crop, scale, ratio)` then
/// `RandomHorizontalFlip(flipProbability)`, drawn from a generator the caller seeds.
///
/// A box covering a fraction `scale` of the image area, of aspect ratio `ratio` (drawn
/// log-uniformly), is tried up to `attempts` times until it fits; failing that, the largest
/// centred box whose ratio is within `ratio`. The box is resized to the transform's `crop`
/// square with the same antialiased bilinear filter as ``ImageTransform``, then normalized.
/// The draws are torchvision's, the random numbers are not: a seed gives the same crops here on
/// every machine, not the crops torch would draw.
public struct Augmentation: Sendable, Equatable {
    /// The range of the box's area as a fraction of the image's.
    public let scale: ClosedRange<Double>
    /// The range of the box's width / height.
    public let ratio: ClosedRange<Double>
    /// How likely the crop is mirrored left to right.
    public let flipProbability: Double
    /// How many random boxes are drawn before falling back to the centred one.
    public let attempts: Int

    public init(scale: ClosedRange<Double> = 0.08...1, ratio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3),
                flipProbability: Double = 0.5, attempts: Int = 10) {
        precondition(scale.lowerBound > 0 && scale.upperBound <= 1, "scale \(scale) must lie in (0, 1]")
        precondition(ratio.lowerBound > 0, "ratio \(ratio) must be positive")
        precondition((0...1).contains(flipProbability), "flipProbability \(flipProbability) must lie in [0, 1]")
        self.scale = scale
        self.ratio = ratio
        self.flipProbability = flipProbability
        self.attempts = attempts
    }

    /// The box `(x, y, width, height)` torchvision's `RandomResizedCrop.get_params` would take
    /// from a `width`×`height` image for these draws.
    func box<G: RandomNumberGenerator>(width: Int, height: Int, using generator: inout G)
        -> (x: Int, y: Int, width: Int, height: Int) {
        let area = Double(width * height)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<attempts {
            let target = area * generator.uniform(in: scale)
            let aspect = exp(generator.uniform(in: logRatio))
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let y = generator.integer(below: height - h + 1)
                let x = generator.integer(below: width - w + 1)
                return (x, y, w, h)
            }
        }
        var w = width, h = height
        let inRatio = Double(width) / Double(height)
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return ((width - w) / 2, (height - h) / 2, w, h)
    }
}
