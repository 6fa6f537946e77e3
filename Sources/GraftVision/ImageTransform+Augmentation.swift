import GraftCore

extension ImageTransform {
    /// The training transform of one image: a random box resized to `crop`×`crop`, perhaps
    /// mirrored, normalized as in evaluation: a `[3, crop, crop]` tensor.
    public func callAsFunction<G: RandomNumberGenerator>(_ image: RGBImage, augmentation: Augmentation,
                                                         using generator: inout G) -> Tensor {
        var out = Tensor(uninitialized: [3, crop, crop])
        out.withUnsafeMutableBufferPointer(as: Float.self) {
            write(image, augmentation: augmentation, using: &generator, to: $0.baseAddress!)
        }
        return out
    }

    func write<G: RandomNumberGenerator>(_ image: RGBImage, augmentation: Augmentation, using generator: inout G,
                                         to out: UnsafeMutablePointer<Float>) {
        let box = augmentation.box(width: image.width, height: image.height, using: &generator)
        let flipped = generator.uniform(in: 0...1) < augmentation.flipProbability
        let pixels = Resampler.resize(image, region: box, to: crop, crop, window: (0, 0, crop, crop))
        normalize(pixels, flipped: flipped, to: out)
    }
}
