import GraftCore

/// An image that could not be used, and why.
public struct SkippedImage: Sendable, Equatable {
    public var path: String
    public var error: GraftError
}

/// Images decoded and transformed together into one tensor, on all cores.
public struct ImageBatch: Sendable {
    /// `[n, 3, crop, crop]`: the samples that decoded, in the order they were asked for.
    public var images: Tensor
    /// The samples in `images`, row by row.
    public var samples: [ImageSample]
    /// The samples that could not be decoded, in the order they were asked for; never fatal.
    public var skipped: [SkippedImage]

    /// The labels of the rows of `images`.
    public var labels: [Int] { samples.map(\.label) }

    /// Decodes and transforms `samples` in parallel, leaving out (and listing) those that fail.
    ///
    /// - Parameters:
    ///   - transform: the evaluation transform, or with `augmentation` the normalization and crop size.
    ///   - augmentation: when given, each image gets a random crop and flip instead of the
    ///     evaluation transform, drawn from a generator for `seed` and the sample's position in
    ///     `samples`: the same call gives the same tensor; vary `seed` per batch and epoch.
    public static func load(_ samples: [ImageSample], transform: ImageTransform = ImageTransform(),
                            augmentation: Augmentation? = nil, seed: UInt64 = 0) -> ImageBatch {
        let size = 3 * transform.crop * transform.crop
        var images = Tensor(uninitialized: [samples.count, 3, transform.crop, transform.crop])
        var failures = [GraftError?](repeating: nil, count: samples.count)
        images.withUnsafeMutableBufferPointer(as: Float.self) { out in
            failures.withUnsafeMutableBufferPointer { failed in
                let base = out.baseAddress!, errors = failed.baseAddress!
                Parallel.forEach(samples.count) { i in
                    do {
                        let image = try ImageDecoder.decode(at: samples[i].path)
                        if let augmentation {
                            var generator = SeededGenerator(seed: seed, stream: i)
                            transform.write(image, augmentation: augmentation, using: &generator, to: base + i * size)
                        } else {
                            transform.write(image, to: base + i * size)
                        }
                    } catch let error as GraftError {
                        errors[i] = error
                    } catch {
                        errors[i] = GraftError(.internal, "\(error)", file: samples[i].path)
                    }
                }
            }
        }
        let kept = samples.indices.filter { failures[$0] == nil }
        let skipped = samples.indices.compactMap { i in failures[i].map { SkippedImage(path: samples[i].path, error: $0) } }
        if kept.count < samples.count {
            var compact = Tensor(uninitialized: [kept.count, 3, transform.crop, transform.crop])
            images.withUnsafeBufferPointer(as: Float.self) { source in
                compact.withUnsafeMutableBufferPointer(as: Float.self) { out in
                    for (row, i) in kept.enumerated() {
                        (out.baseAddress! + row * size).update(from: source.baseAddress! + i * size, count: size)
                    }
                }
            }
            images = compact
        }
        return ImageBatch(images: images, samples: kept.map { samples[$0] }, skipped: skipped)
    }
}
